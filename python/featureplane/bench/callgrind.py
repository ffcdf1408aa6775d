"""Instruction counts of the Rust kernel under callgrind: the perf gate's measuring instrument.

The workload is the core's `perf_gate` binary (crates/featureplane-core/src/bin/perf_gate.rs):
a fixed synthetic feed (the core's seeded `SyntheticFeed`) through a book-only engine (`books`)
or book + lob_shared_v1 (`features`). Callgrind counts the instructions executed (`Ir`) inside
the measured call only (`--collect-atstart=no --toggle-collect=<function>`), so neither the
feed's generation nor the engine's construction is counted. The count depends on the compiled
code and its input, not on the machine's load or speed.

`build()` compiles the binary with cargo (release; the slowed `perf-canary` variant in a profile
of its own, so it never replaces the release artifacts); `build_info()` refuses a debug build.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from featureplane.errors import FeatureplaneError

BIN = "perf_gate"
MODES = ("books", "features")
MEASURED = {mode: f"perf_gate::measure_{mode}" for mode in MODES}
"""The function whose calls callgrind counts, per mode (never inlined: see perf_gate.rs)."""
CANARY_PROFILE = "perf-canary"
CANARY_FEATURE = "perf-canary"
_CORE = Path("crates") / "featureplane-core" / "Cargo.toml"


@dataclass(frozen=True)
class Workload:
    """The binary's input: the synthetic feed's shape, diffs after the snapshots, and seed."""

    symbols: int
    depth: int
    changes: int
    trades: int
    diffs: int
    seed: int

    def args(self) -> list[str]:
        fields = (self.symbols, self.depth, self.changes, self.trades, self.diffs, self.seed)
        return [str(x) for x in fields]

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class BuildInfo:
    profile: str
    """`release` or `debug` (the binary's `debug_assertions`)."""
    canary: bool
    """Built with `--features perf-canary` (deliberately slowed)."""


@dataclass(frozen=True)
class Count:
    instructions: int
    """Callgrind's `Ir` inside the measured call."""
    events: int
    """Rows through the measured call (the diffs; the snapshots are applied before it)."""
    outputs: int
    """L1 entries or frames out of it: one per applied message."""

    @property
    def per_event(self) -> float:
        return self.instructions / self.events


def _tool(name: str, why: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FeatureplaneError(f"{name} is not installed (or not on PATH): {why}")
    return path


def valgrind() -> str:
    return _tool("valgrind", "the perf gate counts instructions with callgrind")


def workspace() -> Path:
    """The repository holding crates/featureplane-core: from the working directory up, then
    from this package's source (an editable install lives in the repository)."""
    here = Path.cwd().resolve()
    for root in (here, *here.parents, *Path(__file__).resolve().parents):
        if (root / _CORE).is_file():
            return root
    raise FeatureplaneError(
        f"no {_CORE} above {here}: run the perf gate from the repository, or pass --binary"
    )


def build(canary: bool = False, debug: bool = False) -> Path:
    """Build the `perf_gate` binary with cargo (a no-op when it is up to date); its path.

    The normal build uses the release profile (the extension's: fat LTO, one codegen unit); the
    canary uses the `perf-canary` profile (inherits release) and feature. `debug`: the dev
    profile, only to show that `build_info` refuses it.
    """
    cargo = _tool("cargo", "the perf gate builds crates/featureplane-core's perf_gate binary")
    root = workspace()
    cmd = [cargo, "build", "--manifest-path", str(root / "Cargo.toml"), "-p", "featureplane-core",
           "--bin", BIN, "--message-format=json-render-diagnostics"]  # fmt: skip
    profile = "dev" if debug else CANARY_PROFILE if canary else "release"
    cmd += ["--profile", profile] + (["--features", CANARY_FEATURE] if canary else [])
    # cargo's progress and diagnostics go to our stderr; its JSON messages come back here.
    proc = subprocess.run(cmd, cwd=root, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise FeatureplaneError(f"building the perf gate's binary failed: {' '.join(cmd)}")
    for line in proc.stdout.splitlines():
        msg = json.loads(line) if line.startswith("{") else {}
        artifact = msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == BIN
        if artifact and msg.get("executable"):
            return Path(msg["executable"])
    raise FeatureplaneError(f"cargo built no {BIN} executable: {' '.join(cmd)}")


def _key_values(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def build_info(binary: Path) -> BuildInfo:
    """What `binary info` reports; a debug build is refused (its counts say nothing about the
    kernel that ships)."""
    try:
        proc = subprocess.run([str(binary), "info"], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise FeatureplaneError(f"cannot run {binary}: {exc.strerror}") from None
    info = _key_values(proc.stdout)
    if proc.returncode != 0 or "profile" not in info:
        raise FeatureplaneError(f"{binary} is not the perf gate's binary ({BIN} info failed)")
    if info["profile"] != "release":
        raise FeatureplaneError(
            f"{binary} is a {info['profile']} build: the perf gate counts release builds only "
            "(cargo build --release -p featureplane-core --bin perf_gate)"
        )
    return BuildInfo(info["profile"], info.get("canary") == "true")


class Run:
    """Callgrind counting one mode of the binary, started in the background."""

    def __init__(self, binary: Path, mode: str, workload: Workload, out_dir: Path) -> None:
        self.mode = mode
        self.out = out_dir / f"callgrind.{mode}.out"
        self.cmd = [valgrind(), "--tool=callgrind", f"--callgrind-out-file={self.out}",
                    "--collect-atstart=no", f"--toggle-collect={MEASURED[mode]}",
                    "--dump-line=no", str(binary), mode, *workload.args()]  # fmt: skip
        self.proc = subprocess.Popen(
            self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def wait(self) -> Count:
        stdout, stderr = self.proc.communicate()
        if self.proc.returncode != 0:
            tail = " | ".join(stderr.strip().splitlines()[-3:])
            raise FeatureplaneError(f"callgrind on {BIN} {self.mode} failed: {tail}")
        out = _key_values(stdout)
        try:
            count = Count(_total_ir(self.out), int(out["events"]), int(out["outputs"]))
        except (KeyError, ValueError) as exc:
            raise FeatureplaneError(f"{BIN} {self.mode}: no {exc} in its output") from None
        if count.instructions == 0:
            raise FeatureplaneError(
                f"callgrind counted no instructions in {MEASURED[self.mode]}: was it inlined, "
                "or the binary stripped of symbols?"
            )
        return count


def _total_ir(path: Path) -> int:
    """The `Ir` total of a callgrind output file (its `totals:` line, `summary:` in older
    versions)."""
    text = path.read_text()
    events = re.search(r"^events: (.*)$", text, re.M)
    total = re.search(r"^(?:totals|summary): (.*)$", text, re.M)
    if not events or not total or events.group(1).split()[0] != "Ir":
        raise FeatureplaneError(f"{path}: no Ir total in callgrind's output")
    return int(total.group(1).split()[0])


class Counting:
    """Callgrind on each mode of the binary, side by side (one process each), started in the
    background so other work can run meanwhile; `wait()` for the counts."""

    def __init__(self, binary: Path, workload: Workload, modes: tuple[str, ...] = MODES) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="featureplane-callgrind-"))
        self._runs: list[Run] = []
        try:
            self._runs = [Run(binary, mode, workload, self._dir) for mode in modes]
        except BaseException:
            self.close()
            raise

    def wait(self) -> dict[str, Count]:
        try:
            return {run.mode: run.wait() for run in self._runs}
        finally:
            self.close()

    def close(self) -> None:
        """Stop what still runs (after an error elsewhere) and remove the output files."""
        for run in self._runs:
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.communicate()
        shutil.rmtree(self._dir, ignore_errors=True)


def toolchain() -> dict[str, str]:
    """The compiler and valgrind versions: either moves instruction counts legitimately."""
    try:
        cwd: Path | None = workspace()  # where a rust-toolchain file would take effect
    except FeatureplaneError:
        cwd = None
    out = {}
    rustc = os.environ.get("RUSTC", "rustc")
    for key, cmd in (("rustc", [rustc, "--version"]), ("valgrind", [valgrind(), "--version"])):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=cwd)
            out[key] = proc.stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            out[key] = "unknown"
    return out
