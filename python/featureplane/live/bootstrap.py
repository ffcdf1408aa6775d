"""`SystemBootstrapper`: one `LiveConfig` -> the running services, held in a `ServiceRegistry`.

The build makes everything and connects nothing (so `featureplane live --check` is a build);
`run` starts the feed and the service on the running event loop, waits for the end (a signal,
`--duration`, the venue's end of stream), and shuts down in order: the feed stops reading, the
service drains what was queued, the strategies' open orders are cancelled, files are flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from featureplane.engine.config import EngineConfig
from featureplane.errors import UnknownSymbolError
from featureplane.frames.frame import QualityFlag
from featureplane.instruments import SymbolTable
from featureplane.live.config import LiveConfig
from featureplane.live.feed.client import BinanceFeed
from featureplane.live.feed.record import Recorder
from featureplane.live.latency import LatencyRecorder
from featureplane.live.risk import watch_kill_file
from featureplane.live.service import MarketDataService, MarketUpdate
from featureplane.live.sink import FrameFileSink


class ServiceRegistry:
    """The services of a live run, by name (`config`, `symbols`, `service`, `feed`, `risk`,
    `paper`, `runner:<name>`, `sink`, `recorder`, `ring`)."""

    def __init__(self) -> None:
        self._services: dict[str, Any] = {}

    def register(self, name: str, service: Any) -> None:
        if name in self._services:
            raise ValueError(f"a service named {name!r} is already registered")
        self._services[name] = service

    def get(self, name: str) -> Any:
        try:
            return self._services[name]
        except KeyError:
            raise UnknownSymbolError(f"no service {name!r} (have {', '.join(self)})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._services

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._services)

    def runners(self) -> list[Any]:
        return [v for k, v in self._services.items() if k.startswith("runner:")]


@dataclass
class LiveSummary:
    """What a live run did."""

    seconds: float
    ended_by: str
    frames: int
    flag_counts: dict[str, int]
    service: dict[str, Any]
    feed: dict[str, Any]
    symbols: dict[str, dict[str, Any]]
    engine: dict[str, int]
    recorded: list[str] = field(default_factory=list)
    strategies: dict[str, Any] = field(default_factory=dict)
    rollout: dict[str, Any] = field(default_factory=dict)
    """Shadow parity, decision parity and canary counters (when configured)."""

    def format(self) -> str:
        flags = ", ".join(f"{k} {v}" for k, v in self.flag_counts.items())
        s = self.service
        lines = [
            f"live run ended by {self.ended_by} after {self.seconds:.2f} s: {self.frames} frames "
            f"({flags})",
            f"service: {s['messages_applied']} messages applied, {s['overflow_messages']} lost "
            f"to queue overflow, queue high water {s['queue_high_water']}",
            f"feed: {self.feed['connections']} connections, {self.feed['reconnects']} "
            f"reconnects, {self.feed['rotations']} rotations, {self.feed['snapshot_requests']} "
            "snapshot requests",
        ]
        for sym, c in self.symbols.items():
            lines.append(
                f"  {sym}: received {c['received']}, duplicates {c['duplicates']}, late "
                f"{c['late']}, gaps {c['gaps']}, resyncs {c['resyncs']}, snapshots "
                f"{c['snapshots_applied']} applied / {c['snapshots_discarded']} discarded"
            )
        lines.append("engine: " + ", ".join(f"{k} {v}" for k, v in sorted(self.engine.items())))
        for name, st in self.strategies.items():
            lines.append(f"strategy {name}: {st}")
        for name, st in self.rollout.items():
            lines.append(f"{name}: {st}")
        if self.recorded:
            lines.append("recorded: " + ", ".join(self.recorded))
        return "\n".join(lines)


class SystemBootstrapper:
    """Builds and runs a live configuration (see the module doc).

    Parameters
    ----------
    config
        The checked configuration.
    out
        Write every frame to this feature file.
    record_dir
        Record the run here (overrides `[recording]`).
    latency
        Record per-stage times (the benchmark).
    metrics
        Record runtime metrics (`featureplane.live.metrics`) even without `[metrics]
        enabled`; the endpoint is served only when the config enables it.
    announce
        Called with a line when the metrics endpoint listens (the CLI prints it).
    """

    def __init__(
        self,
        config: LiveConfig,
        *,
        out: str | PathLike[str] | None = None,
        record_dir: str | PathLike[str] | None = None,
        latency: LatencyRecorder | None = None,
        metrics: bool = False,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.record_metrics = metrics or config.metrics.enabled
        self.announce = announce
        self.metrics: Any = None
        """The run's `RuntimeMetrics` once built (None: metrics off)."""
        self.out = Path(out) if out is not None else None
        rec = config.recording
        self.record_dir = (
            Path(record_dir) if record_dir is not None else Path(rec.dir) if rec.enabled else None
        )
        self.latency = latency
        self.registry: ServiceRegistry | None = None
        self._flag_counts = dict.fromkeys((str(f.name) for f in QualityFlag), 0)

    def build(self) -> ServiceRegistry:
        """Make every service from the config; nothing connects."""
        from featureplane.live.runner import build_runners

        cfg = self.config
        reg = ServiceRegistry()
        specs = [s.spec() for s in cfg.symbols]
        table = SymbolTable(specs)
        fe = cfg.feature_engine
        stale = int(fe.stale_after_ms * 1e6) if fe.stale_after_ms > 0 else None
        service = MarketDataService(
            table,
            feature_set=fe.feature_set,
            backend=None if fe.backend == "auto" else fe.backend,
            engine_config=EngineConfig(stale_after_ns=stale),
            features=fe.enabled,
            queue_max_messages=cfg.service.queue_max_messages,
            batch_max=cfg.service.batch_max,
            latency=self.latency,
        )
        instruments = [
            (spec, table.id_of(spec.symbol), s.market)
            for spec, s in zip(specs, cfg.symbols, strict=True)
        ]
        feed = BinanceFeed(cfg.feed, instruments, service.offer_data)
        service.feed = feed
        service.listen(self._count_flags)
        reg.register("config", cfg)
        reg.register("symbols", table)
        reg.register("service", service)
        reg.register("feed", feed)
        if self.out is not None:
            if service.engine is None:
                raise ValueError("--out writes feature frames: feature_engine.enabled is false")
            sink = FrameFileSink(self.out, service.engine.feature_set, table)
            service.listen(sink)
            reg.register("sink", sink)
        if cfg.ring.name:
            if service.engine is None:
                raise ValueError("[ring] publishes feature frames: feature_engine.enabled is false")
            from featureplane.live.publish import RingPublisher  # the extension, only when asked

            ring = RingPublisher(cfg.ring, service.engine.feature_set, table)
            service.listen(ring)
            reg.register("ring", ring)
        if self.record_dir is not None:
            recorder = Recorder(self.record_dir, {s.symbol: s.market for s in cfg.symbols})
            service.recorder = recorder
            reg.register("recorder", recorder)
        build_runners(cfg, reg)
        _build_rollout(cfg, reg, service)
        if self.record_metrics:
            from featureplane.live.metrics import RuntimeMetrics

            self.metrics = RuntimeMetrics(reg, cfg.metrics.latency_samples)
            self.metrics.attach()
        self.registry = reg
        return reg

    def _count_flags(self, update: MarketUpdate) -> None:
        frame = update.frame
        if frame is not None and frame.quality_flags:
            for flag in QualityFlag:
                if frame.quality_flags & flag:
                    self._flag_counts[str(flag.name)] += 1

    async def run(
        self, *, duration_s: float | None = None, stop: asyncio.Event | None = None
    ) -> LiveSummary:
        """Run until `stop`, `duration_s`, SIGINT/SIGTERM or the venue's end of stream."""
        reg = self.registry or self.build()
        service: MarketDataService = reg.get("service")
        feed: BinanceFeed = reg.get("feed")
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        if self.metrics is not None and self.config.metrics.enabled:
            m = self.config.metrics
            port = self.metrics.start(m.host, m.port)
            if self.announce is not None:
                self.announce(f"metrics on http://{m.host}:{port}/metrics")
        if self.metrics is not None:
            self.metrics.mark_start()
        signals = _install_signals(loop, stop)
        if self.announce is not None:
            # From here on a signal stops the run cleanly (a supervisor can wait for this line).
            stoppers = " or ".join(signal.Signals(s).name for s in signals) or "stop"
            self.announce(f"running {len(self.config.symbols)} symbols; {stoppers} ends the run")
        start = time.perf_counter()
        feed_stop, service_stop = asyncio.Event(), asyncio.Event()
        feed_task = asyncio.create_task(feed.run(feed_stop), name="feed")
        service_task = asyncio.create_task(service.run(service_stop), name="service")
        for runner in reg.runners():
            runner.start()
        if "shadow" in reg:
            reg.get("shadow").start()
        canary_stop = asyncio.Event()
        canary = (
            asyncio.create_task(reg.get("canary").run(canary_stop), name="canary")
            if "canary" in reg
            else None
        )
        kill_file = self.config.risk.kill_switch_file
        watcher = (
            asyncio.create_task(watch_kill_file(kill_file, reg.get("risk"), service.post_control))
            if kill_file and "risk" in reg
            else None
        )
        heartbeat = (
            asyncio.create_task(_beat(reg.get("ring"), self.config.ring.heartbeat_s))
            if "ring" in reg
            else None
        )
        stopping = asyncio.create_task(stop.wait())
        ended_by = "stop"
        try:
            done, _ = await asyncio.wait(
                {stopping, feed_task, service_task},
                timeout=duration_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                ended_by = "duration"
            elif feed_task in done:
                ended_by = "end of stream" if feed.ended else "feed"
                feed_task.result()  # a FeedError surfaces here
            elif service_task in done:
                ended_by = "service"
                service_task.result()
            else:
                ended_by = "signal or stop"
        finally:
            stopping.cancel()
            for task in (watcher, heartbeat):
                if task is not None:
                    task.cancel()
            if canary is not None:
                canary_stop.set()
                with contextlib.suppress(Exception):
                    await canary
            feed_stop.set()
            with contextlib.suppress(Exception):
                await feed_task
            service_stop.set()
            with contextlib.suppress(Exception):
                await service_task
            service.drain()
            for runner in reg.runners():
                runner.stop()
            service.drain()
            if "shadow" in reg:
                reg.get("shadow").close()
            for name in ("sink",):
                if name in reg:
                    reg.get(name).close(self._info(service))
            if "recorder" in reg:
                reg.get("recorder").close()
            if "ring" in reg:
                reg.get("ring").close()  # after the drain: readers get every frame, then the end
            for sig in signals:
                loop.remove_signal_handler(sig)
            if self.metrics is not None:
                self.metrics.stop()
        return self.summary(time.perf_counter() - start, ended_by)

    def _info(self, service: MarketDataService) -> dict[str, Any]:
        return {
            "source": "live",
            "config_hash": self.config.config_hash,
            "frames": service.counters.frames,
            "quality_flag_counts": self._flag_counts,
            "engine_counters": service.engine.counters if service.engine is not None else {},
        }

    def summary(self, seconds: float, ended_by: str) -> LiveSummary:
        reg = self.registry
        assert reg is not None
        service: MarketDataService = reg.get("service")
        feed: BinanceFeed = reg.get("feed")
        sc = asdict(service.counters)
        sc["overflow_by_symbol"] = dict(service.counters.overflow_by_symbol)
        recorded = [str(p) for p in reg.get("recorder").paths] if "recorder" in reg else []
        return LiveSummary(
            seconds=seconds,
            ended_by=ended_by,
            frames=service.counters.frames,
            flag_counts=dict(self._flag_counts),
            service=sc,
            feed=asdict(feed.counters),
            symbols={s: asdict(live.counters) for s, live in feed.symbols.items()},
            engine=service.engine.counters if service.engine is not None else {},
            recorded=recorded,
            strategies={r.name: r.report() for r in reg.runners()},
            rollout=_rollout_summary(reg),
        )


async def _beat(ring: Any, period_s: float) -> None:
    """The ring's heartbeat while the run lasts: a quiet market is not a dead writer."""
    while True:
        ring.heartbeat()
        await asyncio.sleep(period_s)


def _build_rollout(cfg: LiveConfig, reg: ServiceRegistry, service: MarketDataService) -> None:
    """Shadow parity, decision parity and the canary gate, as the config asks."""
    from featureplane.rollout.canary import load_criteria
    from featureplane.rollout.decisions import DecisionParity
    from featureplane.rollout.enforce import CanaryEnforcer
    from featureplane.rollout.shadow import ShadowOptions, ShadowParity

    # Both move state between kernels (the shadow loads the serving engine's checkpoint, a
    # fallback switches the backend): every kernel of every set exports and imports its state
    # (docs/backends.md#checkpoints), the Rust plan evaluator of a declared set included.
    engine = service.engine
    sh = cfg.shadow
    if sh.enabled and engine is not None:
        options = ShadowOptions(
            sample=sh.sample, window=sh.window, queue_max=sh.queue_max,
            slice_dir=sh.slice_dir or None, max_slices=sh.max_slices, seed=sh.seed,
        )  # fmt: skip
        shadow = ShadowParity(engine.symbols, engine.feature_set, engine.config, options)
        service.shadow = shadow
        reg.register("shadow", shadow)
    for pair in cfg.decision_parity:
        legacy = reg.get(f"runner:{pair.legacy}").strategy
        feature = reg.get(f"runner:{pair.feature}").strategy
        parity = DecisionParity(
            pair.feature, legacy, feature, features_on=lambda: service.engine is not None
        )
        service.listen(parity)  # after the runners: it sees the rows they appended
        reg.register(f"decision_parity:{pair.feature}", parity)
    ca = cfg.canary
    if ca.enabled:
        enforcer = CanaryEnforcer(
            load_criteria(ca.criteria),
            lambda: [reg.get(name) for name in reg],
            service,
            on_rollback=ca.on_rollback,
            interval_s=ca.interval_s,
        )
        reg.register("canary", enforcer)


def _rollout_summary(reg: ServiceRegistry) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "shadow" in reg:
        shadow = reg.get("shadow")
        out["shadow parity"] = {**asdict(shadow.counters), "by_column": dict(shadow.mismatches)}
    for name in reg:
        if name.startswith("decision_parity:"):
            p = reg.get(name)
            out[name] = {"compared": p.compared, "mismatches": p.mismatches}
    if "canary" in reg:
        c = reg.get("canary")
        out["canary"] = {"decision": c.decision, "rollbacks": c.rollbacks,
                         "rolled_back_at_frame": c.rolled_back_at_frame}  # fmt: skip
    return out


def _install_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> list[int]:
    """SIGINT and SIGTERM set `stop` (the main thread only: elsewhere signals are not ours)."""
    if threading.current_thread() is not threading.main_thread():
        return []
    installed: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    return installed
