"""Coverage-guided fuzzing of one source's reader with atheris (libFuzzer for Python).

    .venv/bin/python fuzz/python/run.py SOURCE [libFuzzer flags] [CORPUS_DIR ...]
    .venv/bin/python fuzz/python/run.py lobster -runs=1000000 -max_len=4096 -timeout=10 \
        fuzz/target/py-corpus-lobster fuzz/python/corpus/lobster

SOURCE is one of binance, lobster, databento, tardis, hftbacktest (`targets/<source>.py`
says what its input bytes mean). The reader's modules are imported under
`atheris.instrument_imports()`, so the fuzzer follows their branches; the engine runs
uninstrumented. Any exception other than a `featureplane.errors` class leaving a reader, any
broken invariant (`targets/common.py`), any warning (turned into an error, as in the test
suite) is a crash; an input that runs longer than `-timeout` seconds is a hang. libFuzzer keeps
either as `crash-<sha1>` / `timeout-<sha1>` in the working directory (or `-artifact_prefix`);
`run.py SOURCE FILE` replays one.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pkgutil
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import atheris  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent))

from targets import SOURCES

# Coverage follows what a reader runs: the sources, the grids, the event checks.
INSTRUMENTED = ["featureplane.sources", "featureplane.instruments", "featureplane.events"]


def _import_tree(name: str) -> None:
    module = importlib.import_module(name)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
        importlib.import_module(info.name)


def _workdir(source: str) -> Path:
    """A directory in tmpfs for the input files, `fp-fuzz-<source>-<pid>`. libFuzzer ends the
    process without Python's exit handlers, so the directories of runs that are gone are
    removed here instead."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() else Path(tempfile.gettempdir())
    for old in base.glob("fp-fuzz-*-*"):
        pid = old.name.rsplit("-", 1)[1]
        if pid.isdecimal() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    workdir = base / f"fp-fuzz-{source}-{os.getpid()}"
    workdir.mkdir(exist_ok=True)
    return workdir


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _keeping_crashes(one_input: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """`one_input`, writing the input of any exception to `-artifact_prefix` before it goes
    on to atheris: with some extension modules loaded (numba, databento_dbn) the process can
    end on the next timeout alarm before libFuzzer writes its own `crash-<sha1>`."""
    prefix = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("-artifact_prefix=")), "./")

    def guarded(data: bytes) -> None:
        try:
            one_input(data)
        except KeyboardInterrupt:  # the run stopped with Ctrl-C: not the input's doing
            raise
        except BaseException:  # a PanicException too
            Path(f"{prefix}crash-{hashlib.sha1(data).hexdigest()}").write_bytes(data)
            raise

    return guarded


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in SOURCES:
        sys.exit(f"usage: run.py {{{','.join(SOURCES)}}} [libFuzzer flags] [corpus dirs]")
    source = sys.argv.pop(1)
    with atheris.instrument_imports(include=INSTRUMENTED):
        import featureplane.events
        import featureplane.instruments
        import featureplane.sources._common  # noqa: F401

        target = importlib.import_module(f"targets.{source}")
        for name in target.MODULES:
            _import_tree(name)
    target.setup(_workdir(source))
    warnings.simplefilter("error")
    atheris.Setup(sys.argv, _keeping_crashes(target.one_input))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
