"""What runtime metrics cost on the live per-message path: metrics off and on, side by side in
one run.

The path is the live one without the network: research replay of the captures (read and
parsed once, outside the timing) handed message by message to the same `MarketDataService`,
strategy runner (the example feature market maker), risk gate and paper adapter a live run
builds (`featureplane.live.replay`'s wiring). "on" adds what `[metrics] enabled` adds: the
stage ring written per message, the per-symbol counters, the risk and order timers, and a
scrape (the collector bucketing the ring and building every family) every `scrape_every`
messages, timed inside the run since on one core its time is taken from the hot path. Rounds
alternate (off, on, on, off, ...), each timed in CPU time of the thread (a shared machine's run
queue is not the path's cost), and the per-message medians are compared. A second measurement
runs the captures once per round with metrics switched on and off every `BLOCK` messages in
the same process (`_interleaved`): the same state and the same minute of the machine, only the
switch differs; on a loaded machine this is the steadier ratio. Correct when both
ways give the same frames and the "on" scrape counts every frame.

    featureplane bench --live --metrics [--live-captures FILE...] [--runs N]
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featureplane.events import END_OF_MESSAGE
from featureplane.instruments import SymbolTable
from featureplane.live.bootstrap import ServiceRegistry
from featureplane.live.config import InstrumentConfig, LiveConfig, StrategyConfig
from featureplane.live.feed.client import FeedData
from featureplane.live.feed.sync import Released
from featureplane.live.metrics import RuntimeMetrics
from featureplane.live.runner import build_runners
from featureplane.live.service import MarketDataService, MarketUpdate
from featureplane.live.venue.capture import Capture
from featureplane.sources import read_binance

MM = StrategyConfig(
    "mm", "featureplane.strategy.examples.imbalance_mm:FeatureImbalanceMM", ("BTCUSDT",)
)
BLOCK = 500
"""Messages per block of the interleaved run."""
SCRAPE_EVERY = 13_000
"""Messages between two scrapes: a 5 s scrape interval at the live path's measured 2,600
messages/s (docs/live.md)."""


@dataclass
class MetricsCost:
    captures: list[str]
    messages: int
    rounds: int
    off_ns: list[float]
    """Per-message time of each "off" round (ns)."""
    on_ns: list[float]
    scrapes: int
    scrape_ms: float
    """Median time of one scrape (ms), included in the "on" rounds."""
    correct: bool
    record_ns: float = 0.0
    """One `StageRing.record` call alone (ns, median of batches): the hot path's floor."""
    block_off_ns: list[float] = field(default_factory=list)
    """Per-message time of each "off" block of the interleaved run (ns)."""
    block_on_ns: list[float] = field(default_factory=list)
    block_ratios: list[float] = field(default_factory=list)
    """Per interleaved run: median on block / median off block."""
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Median on / median off."""
        return statistics.median(self.on_ns) / statistics.median(self.off_ns)

    @property
    def block_ratio(self) -> float:
        """The median over interleaved runs of each run's on/off ratio (a run's blocks share
        the machine's state; runs do not, so they are not pooled)."""
        return _median(self.block_ratios)

    @property
    def best_ratio(self) -> float:
        """Fastest on / fastest off: on a shared machine the least disturbed rounds."""
        return min(self.on_ns) / min(self.off_ns)

    def format(self) -> str:
        off, on = statistics.median(self.off_ns), statistics.median(self.on_ns)
        names = ", ".join(Path(c).name for c in self.captures)
        lines = [
            f"runtime metrics on the live per-message path ({names}; service + "
            f"FeatureImbalanceMM + risk + paper; {self.messages:,} messages, {self.rounds} "
            "rounds each way, alternating; CPU time of the thread)",
            "",
            f"{'path':<40}{'median ns/msg':>14}{'ratio':>8}{'best ns/msg':>13}{'ratio':>8}",
            f"{'metrics off':<40}{off:>14,.0f}{1.0:>8.3f}{min(self.off_ns):>13,.0f}{1.0:>8.3f}",
            f"{'metrics on (ring, counters, scrapes)':<40}{on:>14,.0f}{self.ratio:>8.3f}"
            f"{min(self.on_ns):>13,.0f}{self.best_ratio:>8.3f}",
            "",
            f"interleaved in one run, blocks of {BLOCK} messages switched on and off "
            f"({len(self.block_on_ns)} on, {len(self.block_off_ns)} off):",
            f"{'metrics off':<40}{_median(self.block_off_ns):>14,.0f}{1.0:>8.3f}",
            f"{'metrics on (ring, counters, scrapes)':<40}{_median(self.block_on_ns):>14,.0f}"
            f"{self.block_ratio:>8.3f}  (median of the runs' ratios: "
            f"{', '.join(f'{r:.3f}' for r in self.block_ratios)})",
            "",
            f"metrics cost {100 * (self.ratio - 1):+.1f}% (medians of rounds), "
            f"{100 * (self.best_ratio - 1):+.1f}% (best rounds), "
            f"{100 * (self.block_ratio - 1):+.1f}% (interleaved blocks) of the per-message path; "
            f"{self.scrapes} scrapes of {self.scrape_ms:.2f} ms (median) included",
            f"the ring write alone: {self.record_ns:,.0f} ns/message "
            f"({100 * self.record_ns / min(self.off_ns):.2f}% of the best off round); scrapes "
            f"amortized: {self.scrape_ms * 1e6 / SCRAPE_EVERY:,.0f} ns/message",
            f"same frames both ways, every frame counted: correct = {str(self.correct).lower()}",
            *self.notes,
        ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ratio": self.ratio, "best_ratio": self.best_ratio,
                "block_ratio": self.block_ratio}  # fmt: skip


def _messages(paths: Sequence[Path], table: SymbolTable) -> list[np.ndarray]:
    replay = read_binance([str(p) for p in paths], instruments=table)
    events = replay.events
    remap = np.array([table.id_of(s.symbol) for s in replay.symbols.specs], dtype=np.uint32)
    events["symbol_id"] = remap[events["symbol_id"]]
    ends = np.flatnonzero(events["flags"] & END_OF_MESSAGE) + 1
    starts = np.concatenate([[0], ends[:-1]])
    return [events[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _build(
    config: LiveConfig, table: SymbolTable, metrics: bool
) -> tuple[MarketDataService, ServiceRegistry, list[Any], RuntimeMetrics | None]:
    """The live services of `config` (no feed), a listener keeping the frames, metrics."""
    service = MarketDataService(table, queue_max_messages=1 << 30)
    registry = ServiceRegistry()
    registry.register("config", config)
    registry.register("symbols", table)
    registry.register("service", service)
    build_runners(config, registry)
    frames: list[Any] = []

    def keep(update: MarketUpdate) -> None:
        frames.append(update.frame)

    service.listen(keep)
    rm = RuntimeMetrics(registry) if metrics else None
    if rm is not None:
        rm.attach()
    for runner in registry.runners():
        runner.start()
    return service, registry, frames, rm


def _switch(registry: ServiceRegistry, rm: RuntimeMetrics, on: bool) -> None:
    """Metrics recording on or off, as `RuntimeMetrics.attach` wires it."""
    service = registry.get("service")
    service.stages = rm.ring if on else None
    times = service.stage_times if on else None
    for runner in registry.runners():
        for gate in runner.gates.values():
            gate.times = times
        for paper in runner.adapters.values():
            paper.times = times


def _interleaved(
    config: LiveConfig, table: SymbolTable, messages: list[np.ndarray], scrape_every: int
) -> tuple[list[float], list[float]]:
    """One run switching metrics on and off every `BLOCK` messages: (on, off) ns/message per
    block. The same process state, the same machine minute: only the switch differs."""
    service, registry, _, rm = _build(config, table, True)
    assert rm is not None
    offer, step = service.offer, service.step
    on_ns: list[float] = []
    off_ns: list[float] = []
    since_scrape = 0
    for b, start in enumerate(range(0, len(messages) - BLOCK + 1, BLOCK)):
        on = b % 4 in (1, 2)  # off on on off: drift within a block pair cancels
        _switch(registry, rm, on)
        t0 = time.thread_time_ns()
        for message in messages[start : start + BLOCK]:
            now = time.perf_counter_ns()
            offer(FeedData(int(message["symbol_id"][0]), 0, Released(message, []), now, now))
            step()
            if on:
                since_scrape += 1
                if since_scrape == scrape_every:
                    rm.text()
                    since_scrape = 0
        (on_ns if on else off_ns).append((time.thread_time_ns() - t0) / BLOCK)
    service.drain()
    for runner in registry.runners():
        runner.stop()
    return on_ns, off_ns


def _one_round(
    config: LiveConfig, table: SymbolTable, messages: list[np.ndarray], metrics: bool,
    scrape_every: int,
) -> tuple[float, list[str], list[float], int]:  # fmt: skip
    """(seconds, frames as text, scrape seconds, frames counted by the last scrape)."""
    service, registry, frames, rm = _build(config, table, metrics)
    scrapes: list[float] = []
    offer, step = service.offer, service.step
    # CPU time of this thread: on a shared machine wall time also counts the run queue.
    t0 = time.thread_time()
    for i, message in enumerate(messages):
        # The feed's stamps are taken where the feed takes them; here both ways take them.
        now = time.perf_counter_ns()
        offer(FeedData(int(message["symbol_id"][0]), 0, Released(message, []), now, now))
        step()
        if rm is not None and i % scrape_every == scrape_every - 1:
            s0 = time.thread_time()
            rm.text()
            scrapes.append(time.thread_time() - s0)
    service.drain()
    seconds = time.thread_time() - t0
    for runner in registry.runners():
        runner.stop()
    counted = 0
    if rm is not None:
        text = rm.text()
        counted = sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in text.splitlines()
            if line.startswith("featureplane_frames_total{")
        )
    return seconds, [repr(f) for f in frames], scrapes, counted


def run(
    captures: Sequence[str | Path] | None = None,
    rounds: int = 3,
    scrape_every: int = SCRAPE_EVERY,
    progress: Callable[[str], None] | None = None,
) -> MetricsCost:
    """Metrics off vs on, `rounds` alternating rounds each (see the module doc)."""
    from featureplane.bench.live import DEFAULT_CAPTURES

    paths = [Path(c) for c in (captures or DEFAULT_CAPTURES)]
    say = progress or (lambda text: None)
    markets = Capture(paths).markets
    config = LiveConfig(
        symbols=tuple(InstrumentConfig(s, m) for s, m in markets.items()),
        strategies=(MM,) if "BTCUSDT" in markets else (),
    )
    table = SymbolTable([s.spec() for s in config.symbols])
    messages = _messages(paths, table)
    off_ns: list[float] = []
    on_ns: list[float] = []
    scrape_s: list[float] = []
    reference: list[str] | None = None
    correct = True
    for r in range(rounds):
        for metrics in (False, True) if r % 2 == 0 else (True, False):  # ABBA: drift cancels
            seconds, frames, scrapes, counted = _one_round(
                config, table, messages, metrics, scrape_every
            )
            (on_ns if metrics else off_ns).append(seconds / len(messages) * 1e9)
            scrape_s.extend(scrapes)
            if reference is None:
                reference = frames
            correct &= frames == reference
            if metrics:
                correct &= counted == len(frames)
            say(f"round {r + 1} metrics {'on' if metrics else 'off'}: "
                f"{seconds / len(messages) * 1e9:,.0f} ns/message")  # fmt: skip
    block_on: list[float] = []
    block_off: list[float] = []
    block_ratios: list[float] = []
    for r in range(rounds):
        on_b, off_b = _interleaved(config, table, messages, scrape_every)
        block_on += on_b
        block_off += off_b
        block_ratios.append(_median(on_b) / _median(off_b))
        say(f"interleaved run {r + 1}: on {_median(on_b):,.0f}, off {_median(off_b):,.0f} "
            "ns/message (median block)")  # fmt: skip
    return MetricsCost(
        block_on_ns=block_on,
        block_ratios=block_ratios,
        block_off_ns=block_off,
        record_ns=_record_ns(),
        captures=[str(p) for p in paths],
        messages=len(messages),
        rounds=rounds,
        off_ns=off_ns,
        on_ns=on_ns,
        scrapes=len(scrape_s),
        scrape_ms=statistics.median(scrape_s) * 1e3 if scrape_s else 0.0,
        correct=correct,
    )


def _record_ns(n: int = 100_000, batches: int = 5) -> float:
    """The median over `batches` of one `StageRing.record` call (ns)."""
    from featureplane.live.metrics import StageRing

    ring = StageRing()
    record = ring.record
    times = []
    for _ in range(batches):
        t0 = time.thread_time_ns()
        for i in range(n):
            record(i, 2, 0, 4, 5, 0, 0)
        times.append((time.thread_time_ns() - t0) / n)
    return statistics.median(times)
