"""Start-up: what a command loads before its first byte of work.

Speed is measured by `featureplane bench` (the start-up rows), not here; these tests pin what
makes it: which modules are loaded, in a fresh interpreter, when the command line is built and
when `featureplane replay` opens its capture. A module imported at the top of the wrong file
brings them back, and these tests name it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.datapaths import shared_data
from tests.support.rust import require_rust

# Loaded by nothing a command line needs to parse its arguments.
NOT_FOR_THE_PARSER = (
    "numpy",
    "pyarrow",
    "asyncio",
    "featureplane.engine.facade",
    "featureplane.engine.python",
    "featureplane.replay.run",
    "featureplane.rollout.shadow",
    "featureplane.sources.lobster.reader",
    "featureplane.sources.tardis.parse",
)

# Loaded by a replay only once its inputs are planned (their heads read): numpy, the engine,
# the reference kernel (never, on Rust), the Parquet writer, and the readers and file rules of
# other venues; the process pool only by a replay on several processes; the feature-set
# compiler only for a declared set (the default set is a lookup).
NOT_BEFORE_THE_FIRST_READ = (
    "numpy",
    "pyarrow",
    "asyncio",
    "multiprocessing",
    "concurrent.futures",
    "featureplane.sources.lobster.files",
    "featureplane.engine.facade",
    "featureplane.engine.python",
    "featureplane.frames.parquet",
    "featureplane.sources.lobster.reader",
    "featureplane.sources.tardis.parse",
    "featureplane.features.plan",
    "featureplane.features.declare",
)


def _fresh(code: str, *args: str) -> dict[str, list[str]]:
    """Run `code` in a fresh interpreter; it prints a JSON object on its last line."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def test_building_the_command_line_loads_no_kernel_numpy_or_pyarrow() -> None:
    got = _fresh(
        """
        import json, sys
        from featureplane.cli import build_parser
        build_parser().format_help()
        print(json.dumps({"modules": sorted(sys.modules)}))
        """
    )
    loaded = [m for m in NOT_FOR_THE_PARSER if m in got["modules"]]
    assert loaded == [], f"building the CLI parser imports {loaded}"


def test_replay_reads_its_capture_before_loading_the_engine_and_writer(tmp_path: Path) -> None:
    require_rust("engine")
    capture = shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"
    # An audit hook sees the capture opened (format detection reads its head) and records what
    # was loaded by then; the process stops there.
    got = _fresh(
        """
        import json, os, sys
        capture, out = sys.argv[1], sys.argv[2]

        def hook(event, args):
            if event == "open" and isinstance(args[0], (str, os.PathLike)) and (
                os.fspath(args[0]) == capture
            ):
                print(json.dumps({"modules": sorted(sys.modules)}), flush=True)
                os._exit(0)

        sys.addaudithook(hook)
        from featureplane.cli import main
        main(["replay", capture, "--out", out, "--no-progress", "--backend", "rust"])
        print(json.dumps({"modules": []}))
        """,
        str(capture),
        str(tmp_path / "features.parquet"),
    )
    assert got["modules"], "the replay never opened its capture"
    loaded = [m for m in NOT_BEFORE_THE_FIRST_READ if m in got["modules"]]
    assert loaded == [], f"loaded before the capture is read: {loaded}"


def test_a_whole_replay_never_imports_pandas(tmp_path: Path) -> None:
    """The Parquet writer builds its Arrow arrays from buffers: `pa.array` would import
    pandas (where installed) to ask whether its input is a pandas object."""
    require_rust("engine")
    capture = shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"
    out = tmp_path / "features.parquet"
    got = _fresh(
        """
        import json, sys
        from featureplane.cli import main
        code = main(["replay", sys.argv[1], "--out", sys.argv[2], "--no-progress"])
        print(json.dumps({"modules": sorted(sys.modules), "code": [code]}))
        """,
        str(capture),
        str(out),
    )
    assert got["code"] == [0] and out.stat().st_size > 0
    assert "pyarrow" in got["modules"] and "pandas" not in got["modules"]
