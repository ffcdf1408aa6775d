"""Live benchmark: wire-to-frame latency per stage and sustained throughput on the loopback
venue, beside research replay of the same captures; and the soak run.

The venue runs in its own process (`featureplane venue serve`), so its Python does not share
the client's interpreter: on two cores the venue and the live process each have one. The live
process records five stamps per applied message (`featureplane.live.latency`) with the example
feature market maker attached, so "deliver" includes a real strategy's hooks. Every run is
checked: the live frames equal research replay's (`featureplane.live.parity`), or the
benchmark reports `correct = false`.

    featureplane bench --live [--capture FILE ...] [--json OUT]
    featureplane bench --live --soak [--speed 15] [--faults SPEC] [--rounds N]

The soak replays every capture `--rounds` times at `--speed` x real time with faults, through
one live process that stays up (the venue restarts between rounds, the live side reconnects),
and samples the live process's resident memory once a second: flat memory means the slope of
the second half is within noise of zero.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featureplane.frames.parquet import read_feature_file
from featureplane.live import loop
from featureplane.live.bootstrap import SystemBootstrapper
from featureplane.live.config import FeedConfig, InstrumentConfig, LiveConfig, StrategyConfig
from featureplane.live.latency import LatencyRecorder, StageSummary, format_summary
from featureplane.live.parity import compare_batches, research_batch
from featureplane.live.venue.capture import Capture
from featureplane.live.wire import Market

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
DEFAULT_CAPTURES = [
    SHARED / "binance-usdm-btcusdt-20240808" / "btcusdt_20240808.gz",
    SHARED / "binance-usdm-ethusdt-20240808" / "ethusdt_20240808.gz",
]
ALL_CAPTURES = [
    *DEFAULT_CAPTURES,
    SHARED / "binance-spot-btcusdt-20240808-09" / "btcusdt_20240808.gz",
    SHARED / "binance-spot-btcusdt-20240808-09" / "btcusdt_20240809.gz",
]
SOAK_FAULTS = "drop@3000,dup@6000,reorder@9000,stall@12000:1,disconnect@15000:50,shutdown@20000"
MM = StrategyConfig(
    "mm", "featureplane.strategy.examples.imbalance_mm:FeatureImbalanceMM", ("BTCUSDT",)
)


@dataclass
class LiveBench:
    captures: list[str]
    messages: int
    seconds: float
    live_msgs_per_s: float
    research_msgs_per_s: float
    stages: list[StageSummary]
    correct: bool
    mismatches: int
    extra: dict[str, Any] = field(default_factory=dict)

    def format(self) -> str:
        ratio = self.research_msgs_per_s / self.live_msgs_per_s if self.live_msgs_per_s else 0
        lines = [
            f"live on the loopback venue ({', '.join(Path(c).name for c in self.captures)}), "
            "venue in its own process, FeatureImbalanceMM attached, event loop "
            f"{self.extra.get('event_loop')}",
            "",
            f"per-stage latency at {self.extra.get('latency_speed')}x real time "
            "(wire = the websocket message in hand):",
            format_summary(self.stages),
            "",
            f"{'path':<44}{'messages/s':>14}{'ratio':>8}",
            "sustained throughput, venue at max speed:",
            f"{'live: venue -> websocket -> frames -> strategy':<44}"
            f"{self.live_msgs_per_s:>14,.0f}{1.0:>8.2f}",
            f"{'research replay (read + engine batch)':<44}"
            f"{self.research_msgs_per_s:>14,.0f}{ratio:>8.2f}",
            "",
            f"{self.messages:,} messages in {self.seconds:.2f} s; live frames vs research: "
            f"{self.mismatches} mismatches (correct = {str(self.correct).lower()})",
        ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class VenueProcess:
    """`featureplane venue serve` in a child process; `port` once it listens."""

    def __init__(self, captures: Sequence[str | Path], *args: str) -> None:
        cmd = [sys.executable, "-m", "featureplane.cli", "venue", "serve",
               *map(str, captures), "--wait-for-client-s", "120", *args]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("venue listening on"):
                self.port = int(line.rsplit(":", 1)[1])
                return
            if not line and self.proc.poll() is not None:
                break
        self.close()
        raise RuntimeError("the venue process did not start")

    def close(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        out, _ = self.proc.communicate(timeout=60)
        return out


def _config(
    markets: Mapping[str, Market], port: int, strategies: tuple[StrategyConfig, ...]
) -> LiveConfig:
    feed = FeedConfig(
        ws_url=f"ws://127.0.0.1:{port}", rest_url=f"http://127.0.0.1:{port}",
        exit_on_end_of_stream=True, rotate_after_s=0.0, max_reconnects=5,
        connection_stale_s=30.0, symbol_stale_s=30.0,
    )  # fmt: skip
    symbols = tuple(InstrumentConfig(s, m) for s, m in markets.items())
    wanted = tuple(s for s in strategies if s.symbols[0] in markets)
    return LiveConfig(symbols=symbols, feed=feed, strategies=wanted)


def _live_run(
    paths: list[Path], speed: float | None, latency: LatencyRecorder, tmp: Path
) -> tuple[Any, Any]:
    venue = VenueProcess(paths, *(("--speed", str(speed)) if speed else ()))
    out = tmp / f"live-{speed or 'max'}.parquet"
    try:
        config = _config(Capture(paths).markets, venue.port, (MM,))
        boot = SystemBootstrapper(config, out=out, latency=latency)
        summary = loop.run(boot.run(duration_s=1800))
    finally:
        venue.close()
    return summary, read_feature_file(out).to_batch()


def run(
    captures: Sequence[str | Path] | None = None,
    progress: Callable[[str], None] | None = None,
    latency_speed: float = 10.0,
) -> LiveBench:
    """One benchmark run (see the module doc): throughput at max speed, then the per-stage
    latency at `latency_speed` x real time (at max speed the venue outruns the client by
    design, and the queue stage measures the backlog, not the path)."""
    paths = [Path(c) for c in (captures or DEFAULT_CAPTURES)]
    say = progress or (lambda text: None)
    with tempfile.TemporaryDirectory() as tmp:
        flood = LatencyRecorder()
        summary, live = _live_run(paths, None, flood, Path(tmp))
        say(summary.format())
        paced = LatencyRecorder()
        paced_summary, paced_live = _live_run(paths, latency_speed, paced, Path(tmp))
        say(paced_summary.format())
    t0 = time.perf_counter()
    research = research_batch(paths)
    research_s = time.perf_counter() - t0
    reports = [compare_batches("bench", b, research) for b in (live, paced_live)]
    messages = summary.service["messages_applied"]
    return LiveBench(
        captures=[str(p) for p in paths],
        messages=messages,
        seconds=summary.seconds,
        live_msgs_per_s=messages / summary.seconds if summary.seconds else 0.0,
        research_msgs_per_s=len(research) / research_s if research_s else 0.0,
        stages=paced.summary(),
        correct=all(r.ok for r in reports)
        and summary.ended_by == paced_summary.ended_by == "end of stream",
        mismatches=sum(r.mismatches for r in reports),
        extra={
            "latency_speed": latency_speed,
            "event_loop": loop.loop_name(),
            "max_speed_stages": [dataclasses.asdict(x) for x in flood.summary()],
            "latency_overflow": paced.overflow,
            "strategy": summary.strategies,
        },
    )


# ----- soak -----------------------------------------------------------------------------------


@dataclass
class Soak:
    rounds: int
    speed: float
    faults: str
    seconds: float
    recorded_seconds: float
    messages: int
    rss_mb: list[float]
    resyncs: int
    reconnects: int
    overflow: int

    @property
    def x_real_time(self) -> float:
        return self.recorded_seconds / self.seconds if self.seconds else 0.0

    @property
    def rss_slope_mb_per_min(self) -> float:
        """Least-squares slope of the second half of the samples (after warm-up)."""
        half = self.rss_mb[len(self.rss_mb) // 2 :]
        if len(half) < 2:
            return 0.0
        n = len(half)
        mean_x, mean_y = (n - 1) / 2, sum(half) / n
        num = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(half))
        den = sum((i - mean_x) ** 2 for i in range(n))
        return num / den * 60.0

    def format(self) -> str:
        rss = self.rss_mb
        return "\n".join(
            [
                f"soak: {self.rounds} rounds of every capture at {self.speed:g}x with faults "
                f"'{self.faults}': {self.recorded_seconds:.0f} s of market in "
                f"{self.seconds:.0f} s ({self.x_real_time:.1f}x real time)",
                f"{self.messages:,} messages applied, {self.resyncs} resyncs, "
                f"{self.reconnects} reconnects, {self.overflow} messages lost to overflow",
                f"resident memory: start {rss[0]:.0f} MB, max {max(rss):.0f} MB, end "
                f"{rss[-1]:.0f} MB; slope of the second half "
                f"{self.rss_slope_mb_per_min:+.2f} MB/min",
            ]
        )


def soak(
    rounds: int = 3,
    speed: float = 10.0,
    faults: str = SOAK_FAULTS,
    captures: Sequence[str | Path] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Soak:
    """The soak (see the module doc): every capture group, `rounds` times, faults each time."""
    say = progress or (lambda text: None)
    groups: list[list[Path]] = [[Path(p)] for p in (captures or [])] or [
        DEFAULT_CAPTURES,
        ALL_CAPTURES[2:],
    ]
    rss: list[float] = []
    start = time.perf_counter()
    recorded = 0.0
    messages = resyncs = reconnects = overflow = 0
    for r in range(rounds):
        for group in groups:
            cap = Capture(group)
            first = last = None
            for line in cap.lines():
                first = line.local_ts if first is None else first
                last = line.local_ts
            recorded += ((last or 0) - (first or 0)) / 1e9
            venue = VenueProcess(group, "--speed", str(speed), "--faults", faults)
            config = _config(Capture(group).markets, venue.port, (MM,))
            config = dataclasses.replace(
                config,
                feed=dataclasses.replace(
                    config.feed, symbol_stale_s=0.5, connection_stale_s=0.8,
                    reconnect_initial_s=0.05, reconnect_max_s=0.5, max_reconnects=20,
                ),
            )  # fmt: skip
            try:
                summary = loop.run(_run_sampling(config, rss))
            finally:
                venue.close()
            messages += summary.service["messages_applied"]
            resyncs += sum(c["resyncs"] for c in summary.symbols.values())
            reconnects += summary.feed["reconnects"]
            overflow += summary.service["overflow_messages"]
            say(f"round {r + 1}, {', '.join(Path(p).name for p in group)}: {summary.format()}")
    return Soak(rounds, speed, faults, time.perf_counter() - start, recorded, messages, rss,
                resyncs, reconnects, overflow)  # fmt: skip


async def _run_sampling(config: LiveConfig, rss: list[float]) -> Any:
    boot = SystemBootstrapper(config)

    async def sample() -> None:
        while True:
            rss.append(_rss_mb())
            await asyncio.sleep(1.0)

    task = asyncio.create_task(sample())
    try:
        return await boot.run(duration_s=3600)
    finally:
        task.cancel()


def _rss_mb() -> float:
    """Current resident set size (Linux /proc), else the peak."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_json(result: LiveBench | Soak, path: Path) -> None:
    data = result.to_json() if isinstance(result, LiveBench) else dataclasses.asdict(result)
    path.write_text(json.dumps(data, indent=2, default=str))
