"""The live configuration: one TOML file -> typed, frozen config objects.

Every section is a frozen dataclass; a key the dataclass does not have is refused, a value of
the wrong type or out of range is refused, and every problem of the file is reported at once
(`ConfigError.problems`, each with its key path), not the first one only. `examples/live/`
holds a complete file; docs/live.md lists every key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from os import PathLike
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from featureplane.errors import ConfigError
from featureplane.instruments import InstrumentSpec
from featureplane.live.wire import MARKETS, SNAPSHOT_LIMITS, Market


def _positive(obj: object, names: tuple[str, ...], problems: list[str], path: str) -> None:
    problems.extend(f"{path}.{n}: must be positive" for n in names if not getattr(obj, n) > 0)


def _not_negative(obj: object, names: tuple[str, ...], problems: list[str], path: str) -> None:
    problems.extend(f"{path}.{n}: must not be negative" for n in names if getattr(obj, n) < 0)


_BUILTIN: dict[tuple[str, str], tuple[str, str]] = {
    ("usdm", "BTCUSDT"): ("0.1", "0.001"),
    ("usdm", "ETHUSDT"): ("0.01", "0.001"),
    ("spot", "BTCUSDT"): ("0.01", "0.00000001"),
}
"""Tick and lot of the captured instruments, as the research reader's built-in table."""


@dataclass(frozen=True)
class InstrumentConfig:
    """A symbol traded live: `[[symbols]]`."""

    symbol: str
    market: Market = "usdm"
    tick: str = ""
    """Price step; empty: the built-in table (the captured instruments)."""
    lot: str = ""

    def spec(self) -> InstrumentSpec:
        tick, lot = self.tick, self.lot
        if not (tick and lot):
            tick, lot = _BUILTIN[self.market, self.symbol]
        return InstrumentSpec(self.symbol, tick, lot, f"binance-{self.market}")

    def _check(self, problems: list[str], path: str) -> None:
        if self.symbol != self.symbol.upper() or not self.symbol.isalnum():
            problems.append(f"{path}.symbol: {self.symbol!r} is not an upper-case symbol")
        if bool(self.tick) != bool(self.lot):
            problems.append(f"{path}: give both tick and lot, or neither")
        elif not self.tick and (self.market, self.symbol) not in _BUILTIN:
            problems.append(f"{path}: no built-in tick/lot for {self.market} {self.symbol}")
        else:
            try:
                self.spec()
            except (ValueError, ArithmeticError) as exc:
                problems.append(f"{path}: {exc}")


@dataclass(frozen=True)
class FeedConfig:
    """`[feed]`: the venue's URLs and the client's timings and limits."""

    ws_url: str = "wss://fstream.binance.com"
    rest_url: str = "https://fapi.binance.com"
    parser: Literal["auto", "rust", "python"] = "auto"
    snapshot_limit: int = 1000
    trades: bool = True
    book_ticker: bool = False
    max_held_diffs: int = 10_000
    receive_queue: int = 64
    """Messages websockets buffers per connection (beyond it: TCP backpressure)."""
    max_message_bytes: int = 1 << 23
    receive_buffer_bytes: int = 0
    """The socket's kernel receive buffer (SO_RCVBUF); 0: the OS default (autotuned). A
    small one makes a slow client visible to the venue sooner instead of hiding seconds of
    backlog in the kernel."""
    connect_timeout_s: float = 10.0
    ping_interval_s: float = 20.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 5.0
    reconnect_factor: float = 2.0
    reconnect_jitter_s: float = 0.25
    reconnect_reset_s: float = 60.0
    max_reconnects: int = 0
    """Consecutive failed attempts before giving up (0: never give up)."""
    rotate_after_s: float = 82_800.0
    """Proactive rotation (23 h, before the 24 h cut); 0: never."""
    rotation_overlap_s: float = 1.0
    connection_stale_s: float = 30.0
    symbol_stale_s: float = 10.0
    snapshot_timeout_s: float = 10.0
    snapshot_retries: int = 5
    snapshot_retry_initial_s: float = 0.25
    snapshot_retry_max_s: float = 3.0
    max_snapshots_per_minute: int = 60
    exit_on_end_of_stream: bool = False
    """End the run when the venue closes with "end of stream" (the loopback venue)."""

    def _check(self, problems: list[str], path: str) -> None:
        if not self.ws_url.startswith(("ws://", "wss://")):
            problems.append(f"{path}.ws_url: {self.ws_url!r} is not a ws:// or wss:// URL")
        if not self.rest_url.startswith(("http://", "https://")):
            problems.append(f"{path}.rest_url: {self.rest_url!r} is not an http(s) URL")
        if self.snapshot_limit not in SNAPSHOT_LIMITS:
            problems.append(f"{path}.snapshot_limit: one of {SNAPSHOT_LIMITS}")
        _positive(self, (
            "max_held_diffs", "receive_queue", "max_message_bytes", "snapshot_retries",
            "max_snapshots_per_minute", "connect_timeout_s", "reconnect_initial_s",
            "reconnect_max_s", "connection_stale_s", "symbol_stale_s", "snapshot_timeout_s",
            "snapshot_retry_initial_s", "snapshot_retry_max_s",
        ), problems, path)  # fmt: skip
        _not_negative(self, (
            "ping_interval_s", "reconnect_jitter_s", "rotate_after_s", "max_reconnects",
            "receive_buffer_bytes",
        ), problems, path)  # fmt: skip
        if self.reconnect_factor < 1:
            problems.append(f"{path}.reconnect_factor: must be >= 1")
        if self.rotate_after_s and self.rotation_overlap_s >= self.rotate_after_s:
            problems.append(f"{path}.rotation_overlap_s: must be below rotate_after_s")


@dataclass(frozen=True)
class FeatureEngineConfig:
    """`[feature_engine]`: the shared kernel, behind its flag."""

    enabled: bool = True
    """False: the legacy path (books and trades to strategies, no feature engine)."""
    feature_set: str = "lob_shared_v1"
    """A registered set id or a declaration file (TOML; a relative path is taken from the
    working directory), checked when the config is loaded."""
    backend: Literal["auto", "rust", "python"] = "auto"
    stale_after_ms: float = 0.0
    """The engine's STALE_INPUT rule (exchange-to-receive lag); 0: off."""

    def _check(self, problems: list[str], path: str) -> None:
        from featureplane.errors import (
            FeatureSetDeclarationError,
            ResearchOnlyError,
            SchemaMismatchError,
        )
        from featureplane.features.plan import refuse_research_only
        from featureplane.features.resolve import resolve_feature_set

        try:
            fs = resolve_feature_set(self.feature_set)
            if self.enabled:
                refuse_research_only(fs)
        except (FeatureSetDeclarationError, SchemaMismatchError, ResearchOnlyError) as exc:
            problems.append(f"{path}.feature_set: {exc}")


@dataclass(frozen=True)
class ServiceConfig:
    """`[service]`: the MarketDataService's queue."""

    queue_max_messages: int = 16_384
    """Bound of the inbox between the feed and the engine; beyond it an arrival is a gap."""
    batch_max: int = 256
    """Messages processed before the loop is given back to the network."""

    def _check(self, problems: list[str], path: str) -> None:
        _positive(self, ("queue_max_messages", "batch_max"), problems, path)


@dataclass(frozen=True)
class RecordingConfig:
    """`[recording]`: every applied message as recorder lines, one gzip file per symbol."""

    enabled: bool = False
    dir: str = "recordings"


@dataclass(frozen=True)
class MetricsConfig:
    """`[metrics]`: the Prometheus endpoint of the run (docs/metrics.md)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    """Where `/metrics` listens: loopback unless an operator opens it on purpose."""
    port: int = 0
    """0: any free port (logged, and `SystemBootstrapper.metrics.port`)."""
    latency_samples: int = 1 << 17
    """Messages of stage times kept between two scrapes (beyond: overwritten, counted)."""

    def _check(self, problems: list[str], path: str) -> None:
        if not 0 <= self.port <= 65535:
            problems.append(f"{path}.port: {self.port} is not a TCP port (0: any free port)")
        if not self.host:
            problems.append(f"{path}.host: empty (127.0.0.1 serves this machine only)")
        _positive(self, ("latency_samples",), problems, path)


@dataclass(frozen=True)
class RingConfig:
    """`[ring]`: publish every frame to a shared-memory frame ring of this name (docs/
    transport.md); strategy processes attach by name. An empty name: no ring."""

    name: str = ""
    capacity: int = 1 << 16
    """Slots, a power of two: how far a reader may fall behind before it loses frames."""
    max_readers: int = 16
    replace_stale: bool = True
    """Replace a segment of this name left by a writer that died (else refuse to start)."""
    unlink_on_close: bool = True
    heartbeat_s: float = 0.5
    cpus: tuple[int, ...] = ()
    """Cores the publishing thread (the run's event loop) is pinned to; empty: as the OS
    places it. A spinning reader needs another core (docs/transport.md, "Tail latency")."""
    fifo_priority: int = 0
    """SCHED_FIFO priority of the publishing thread, 1 to 99 (0: the ordinary scheduler);
    refused by the kernel, the run does not start."""
    lock_memory: bool = False
    """mlock the ring's segment in the writer (needs CAP_IPC_LOCK or RLIMIT_MEMLOCK)."""

    def _check(self, problems: list[str], path: str) -> None:
        if self.name and not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", self.name):
            problems.append(f"{path}.name: letters, digits, '.', '_', '-' only")
        if self.capacity < 2 or self.capacity & (self.capacity - 1):
            problems.append(f"{path}.capacity: a power of two, at least 2")
        _positive(self, ("max_readers", "heartbeat_s"), problems, path)
        if any(c < 0 for c in self.cpus):
            problems.append(f"{path}.cpus: core numbers, 0 or more")
        if not 0 <= self.fifo_priority <= 99:
            problems.append(f"{path}.fifo_priority: 0 (off) to 99")


@dataclass(frozen=True)
class RiskConfig:
    """`[risk]`: pre-trade limits, per symbol."""

    max_position_lots: int = 10
    max_notional: float = 1_000_000.0
    """Quote currency: |position + order| x price x lot, per symbol."""
    max_orders_per_s: float = 20.0
    price_band_bps: float = 100.0
    """An order priced further than this from the mid is refused."""
    max_open_orders: int = 4
    audit_log: str = ""
    """A JSON-lines file of every refusal and state change ("" keeps them in memory only)."""
    kill_switch_file: str = ""
    """Where `featureplane live kill` leaves its order for the running process ("": no
    file switch; the API `RiskEngine.kill` always works)."""

    def _check(self, problems: list[str], path: str) -> None:
        _positive(self, (
            "max_position_lots", "max_open_orders", "max_notional", "max_orders_per_s",
            "price_band_bps",
        ), problems, path)  # fmt: skip


@dataclass(frozen=True)
class PaperConfig:
    """`[paper]`: the paper order adapter's fill model."""

    latency_ms: float = 0.0
    """Event time between an order call and its arrival at the paper book."""
    queue_model: Literal["conservative"] = "conservative"

    def _check(self, problems: list[str], path: str) -> None:
        if self.latency_ms < 0:
            problems.append(f"{path}.latency_ms: must not be negative")


@dataclass(frozen=True)
class StrategyConfig:
    """`[[strategies]]`: a strategy class, its symbols and parameters."""

    name: str
    cls: str
    """`module:Class` (the TOML key is `class`)."""
    symbols: tuple[str, ...]
    decision_interval_ms: float = 100.0
    callback_budget_us: float = 1000.0
    """A hook that runs longer is counted and reported as an overrun."""
    params: Mapping[str, Any] = field(default_factory=dict)

    def _check(self, problems: list[str], path: str) -> None:
        if not self.symbols:
            problems.append(f"{path}.symbols: at least one symbol")
        if not self.decision_interval_ms > 0:
            problems.append(f"{path}.decision_interval_ms: must be positive")
        if not self.callback_budget_us > 0:
            problems.append(f"{path}.callback_budget_us: must be positive")
        module, sep, name = self.cls.partition(":")
        if not sep or not module or not name:
            problems.append(f"{path}.class: {self.cls!r} is not 'module:Class'")


@dataclass(frozen=True)
class RunnerConfig:
    """`[runner]`: the strategies' clock."""

    clock: Literal["event", "wall"] = "event"
    """"event": the decision clock is the venue's event time (deterministic on a replayed
    capture); "wall": the host clock."""


@dataclass(frozen=True)
class ShadowConfig:
    """`[shadow]`: shadow parity of the serving backend against the reference
    (docs/rollout.md)."""

    enabled: bool = False
    sample: float = 0.01
    """Fraction of messages compared (1: every message)."""
    window: int = 1024
    """Messages compared from each checkpoint of the serving engine."""
    queue_max: int = 4096
    """Bound of the queue to the shadow thread; when full the shadow drops and counts."""
    slice_dir: str = "parity-slices"
    """Where mismatch slices are saved ("": not saved)."""
    max_slices: int = 10
    seed: int = 0

    def _check(self, problems: list[str], path: str) -> None:
        _positive(self, ("sample", "window", "queue_max"), problems, path)
        _not_negative(self, ("max_slices",), problems, path)


@dataclass(frozen=True)
class DecisionParityConfig:
    """`[[decision_parity]]`: a legacy strategy and its feature twin (two `[[strategies]]`),
    their decisions compared live."""

    legacy: str
    feature: str


@dataclass(frozen=True)
class CanaryConfig:
    """`[canary]`: the canary gate, enforced by the runtime (docs/rollout.md)."""

    enabled: bool = False
    criteria: str = ""
    """The criteria TOML file (`deploy/canary/criteria.toml` is an example)."""
    interval_s: float = 5.0
    on_rollback: Literal["reference", "legacy"] = "reference"
    """"reference": move the engine to the Python reference, keeping its state; "legacy":
    turn the feature path off."""

    def _check(self, problems: list[str], path: str) -> None:
        _positive(self, ("interval_s",), problems, path)
        if self.enabled and not self.criteria:
            problems.append(f"{path}.criteria: a criteria file is needed when enabled")


@dataclass(frozen=True)
class LiveConfig:
    """A whole live run."""

    symbols: tuple[InstrumentConfig, ...]
    feed: FeedConfig = FeedConfig()
    feature_engine: FeatureEngineConfig = FeatureEngineConfig()
    service: ServiceConfig = ServiceConfig()
    recording: RecordingConfig = RecordingConfig()
    metrics: MetricsConfig = MetricsConfig()
    ring: RingConfig = RingConfig()
    risk: RiskConfig = RiskConfig()
    paper: PaperConfig = PaperConfig()
    runner: RunnerConfig = RunnerConfig()
    strategies: tuple[StrategyConfig, ...] = ()
    shadow: ShadowConfig = ShadowConfig()
    canary: CanaryConfig = CanaryConfig()
    decision_parity: tuple[DecisionParityConfig, ...] = ()

    def _check(self, problems: list[str], path: str) -> None:
        names = [s.symbol for s in self.symbols]
        if not names:
            problems.append("symbols: at least one [[symbols]] table")
        dups = sorted({n for n in names if names.count(n) > 1})
        problems.extend(f"symbols: {dup} listed twice" for dup in dups)
        known = set(names)
        seen: set[str] = set()
        for i, s in enumerate(self.strategies):
            if s.name in seen:
                problems.append(f"strategies[{i}].name: {s.name!r} used twice")
            seen.add(s.name)
            problems.extend(
                f"strategies[{i}].symbols: {sym} is not in [[symbols]]"
                for sym in s.symbols
                if sym not in known
            )
        for i, d in enumerate(self.decision_parity):
            problems.extend(
                f"decision_parity[{i}].{key}: no strategy named {name!r}"
                for key, name in (("legacy", d.legacy), ("feature", d.feature))
                if name not in seen
            )
        if (self.shadow.enabled or self.canary.enabled) and not self.feature_engine.enabled:
            problems.append("shadow, canary: need feature_engine.enabled")

    @property
    def config_hash(self) -> str:
        """sha256 of the canonical JSON of the whole config (what ran, for the records)."""
        text = json.dumps(to_dict(self), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


_RENAMED = {"cls": "class"}


def load_config(path: str | PathLike[str]) -> LiveConfig:
    """Read and check a TOML config file.

    Raises
    ------
    ConfigError
        Every problem of the file at once (unknown keys, wrong types, bad values).
    FileNotFoundError
        No such file.
    """
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), [f"not valid TOML: {exc}"]) from None
    return parse_config(data, str(p))


def parse_config(data: Mapping[str, Any], source: str = "<config>") -> LiveConfig:
    """Build a `LiveConfig` from parsed TOML; see `load_config`."""
    problems: list[str] = []
    config = _build(LiveConfig, data, "", problems)
    if problems or config is None:
        raise ConfigError(source, problems or ["empty configuration"])
    return typing.cast(LiveConfig, config)


def import_object(spec: str) -> Any:
    """`module:Name` -> the object."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def to_dict(config: Any) -> Any:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {
            _RENAMED.get(f.name, f.name): to_dict(getattr(config, f.name)) for f in fields(config)
        }
    if isinstance(config, tuple | list):
        return [to_dict(v) for v in config]
    if isinstance(config, Mapping):
        return {k: to_dict(v) for k, v in config.items()}
    return config


# ----- the checker ----------------------------------------------------------------------------


def _build(cls: type, data: Any, path: str, problems: list[str]) -> Any:
    where = path or "top level"
    if not isinstance(data, Mapping):
        problems.append(f"{where}: expected a table, got {type(data).__name__}")
        return None
    hints = typing.get_type_hints(cls)
    by_key = {_RENAMED.get(f.name, f.name): f for f in fields(cls)}
    known = ", ".join(by_key)
    problems.extend(
        f"{_join(path, k)}: unknown key (known: {known})" for k in data if k not in by_key
    )
    values: dict[str, Any] = {}
    failed = False  # a value that could not be built (a range problem still builds)
    for key, f in by_key.items():
        if key not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append(f"{_join(path, key)}: missing")
                failed = True
            continue
        value = _value(hints[f.name], data[key], _join(path, key), problems)
        if value is _BAD:
            failed = True
        else:
            values[f.name] = value
    if failed:
        return None
    try:
        obj = cls(**values)
    except (TypeError, ValueError) as exc:
        problems.append(f"{where}: {exc}")
        return None
    check = getattr(obj, "_check", None)
    if check is not None:
        check(problems, path or "config")
    return obj


_BAD = object()


def _value(hint: Any, value: Any, path: str, problems: list[str]) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        built = _build(typing.cast(type, hint), value, path, problems)
        return _BAD if built is None else built
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            problems.append(f"{path}: {value!r} is not one of {', '.join(map(repr, allowed))}")
            return _BAD
        return value
    if origin is tuple:
        if not isinstance(value, list):
            problems.append(f"{path}: expected an array, got {type(value).__name__}")
            return _BAD
        item = get_args(hint)[0]
        out = [_value(item, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return _BAD if any(v is _BAD for v in out) else tuple(out)
    if origin in (Mapping, dict) or hint is Mapping:
        if not isinstance(value, Mapping):
            problems.append(f"{path}: expected a table, got {type(value).__name__}")
            return _BAD
        return types.MappingProxyType(dict(value))
    if hint is Market:
        hint = Literal[MARKETS]
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        name = getattr(hint, "__name__", str(hint))
        problems.append(f"{path}: expected {name}, got {type(value).__name__} {value!r}")
        return _BAD
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
