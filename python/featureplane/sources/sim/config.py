"""Configuration of the built-in order-flow simulator: instruments, model rates and faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from featureplane.instruments import InstrumentSpec

FaultKind = Literal["gap", "duplicate", "out_of_order"]
FAULT_KINDS: tuple[FaultKind, ...] = ("gap", "duplicate", "out_of_order")


@dataclass(frozen=True)
class SimInstrument:
    """One simulated instrument and the scale of its order flow.

    Parameters
    ----------
    spec
        Symbol with its tick and lot grids; the simulator works in integer ticks and lots.
    start_px
        Decimal price of the initial best bid; must lie on the tick grid.
    order_lots
        Mean size of a limit order (and of a cancellation) in lots.
    distance_mean_ticks
        Mean distance, in ticks, of a new limit order from the opposite best price. Fine-tick
        instruments spread their orders over more ticks, which gives them sparser books.
    activity
        Multiplies every event rate of the model: a busier instrument sends more messages per
        second, and gets a proportionally larger share of `SimConfig.n_messages`.
    """

    spec: InstrumentSpec
    start_px: str
    order_lots: int
    distance_mean_ticks: float = 3.0
    activity: float = 1.0

    def __post_init__(self) -> None:
        if self.order_lots < 1:
            raise ValueError(f"{self.spec.symbol}: order_lots must be >= 1")
        if self.distance_mean_ticks < 1.0:
            raise ValueError(f"{self.spec.symbol}: distance_mean_ticks must be >= 1")
        if not self.activity > 0.0:
            raise ValueError(f"{self.spec.symbol}: activity must be > 0")
        if self.start_ticks < 1:
            raise ValueError(f"{self.spec.symbol}: start_px must be positive")

    @property
    def start_ticks(self) -> int:
        """`start_px` in ticks (exact; raises `OffGridError` when off the grid)."""
        return self.spec.px_to_ticks(self.start_px)


DEFAULT_INSTRUMENTS: tuple[SimInstrument, ...] = (
    SimInstrument(
        InstrumentSpec("SIMBTC", "0.1", "0.001", venue="SIM"),
        start_px="65000.0",
        order_lots=40,
        distance_mean_ticks=2.5,
        activity=1.0,
    ),
    SimInstrument(
        InstrumentSpec("SIMETH", "0.01", "0.001", venue="SIM"),
        start_px="3400.00",
        order_lots=600,
        distance_mean_ticks=4.0,
        activity=0.7,
    ),
    SimInstrument(
        InstrumentSpec("SIMSOL", "0.001", "0.1", venue="SIM"),
        start_px="150.000",
        order_lots=80,
        distance_mean_ticks=8.0,
        activity=0.4,
    ),
)
"""Three instruments on different tick/lot grids: a tight book, a medium one, a sparse one."""


@dataclass(frozen=True)
class SimModel:
    """Event rates and shape parameters of the zero-intelligence queue model.

    Rates are per second for an instrument of `activity` 1 and scale linearly with it. The
    stationary number of resting orders per side is about
    `(limit_rate_hz - market_rate_hz * market_size_factor) / cancel_rate_hz`.

    Parameters
    ----------
    limit_rate_hz
        Limit-order arrivals per side.
    market_rate_hz
        Market-order arrivals per side.
    cancel_rate_hz
        Cancellation rate of each resting order (so the side's cancel rate is proportional to its
        depth, as in Cont, Stoikov and Talreja 2010).
    market_size_factor
        Mean market-order size as a multiple of the instrument's `order_lots`.
    marketable_prob
        Share of limit orders priced at or through the opposite best: they trade first, then rest.
    far_prob, far_ticks_factor
        Share of limit orders placed uniformly over `far_ticks_factor * distance_mean_ticks` ticks
        from the opposite touch instead of at a geometric distance: the background depth that
        keeps the deeper book populated.
    max_sweep_levels
        Most levels one market order may consume.
    pull_rate_hz
        Liquidity pulls: the top 1-3 levels of one side are cancelled in one message.
    wipe_rate_hz
        One-sided moments: every level of one side is cancelled in one message.
    refill_prob
        While a side is empty, chance that an event is a limit order re-opening that side.
    refill_offset_ticks
        Extra distance of those re-opening orders: the book comes back with a wide spread.
    snapshot_levels
        Levels per side in the initial snapshot.
    snapshot_growth
        Relative growth of the mean snapshot size per level away from the touch.
    latency_base_ns, latency_jitter_ns
        Receive latency: the base plus an exponential jitter of this mean. Each symbol's stream
        is delivered in order (a FIFO channel), so a late message also delays the next ones.
    """

    limit_rate_hz: float = 60.0
    market_rate_hz: float = 10.0
    cancel_rate_hz: float = 4.0
    market_size_factor: float = 1.5
    marketable_prob: float = 0.02
    far_prob: float = 0.3
    far_ticks_factor: float = 12.0
    max_sweep_levels: int = 5
    pull_rate_hz: float = 0.2
    wipe_rate_hz: float = 0.02
    refill_prob: float = 0.5
    refill_offset_ticks: int = 6
    snapshot_levels: int = 20
    snapshot_growth: float = 0.1
    latency_base_ns: int = 150_000
    latency_jitter_ns: float = 250_000.0

    def __post_init__(self) -> None:
        for name in ("limit_rate_hz", "cancel_rate_hz", "market_size_factor"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} must be > 0")
        for name in ("market_rate_hz", "pull_rate_hz", "wipe_rate_hz", "latency_jitter_ns"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} must be >= 0")
        probs = (self.marketable_prob, self.far_prob, self.refill_prob)
        if not all(0.0 <= p <= 1.0 for p in probs) or self.marketable_prob + self.far_prob > 1.0:
            raise ValueError("marketable_prob, far_prob and refill_prob are probabilities")
        if not self.far_ticks_factor >= 1.0:
            raise ValueError("far_ticks_factor must be >= 1")
        if self.max_sweep_levels < 1 or self.snapshot_levels < 1:
            raise ValueError("max_sweep_levels and snapshot_levels must be >= 1")
        if self.refill_offset_ticks < 0 or self.latency_base_ns < 0:
            raise ValueError("refill_offset_ticks and latency_base_ns must be >= 0")


@dataclass(frozen=True)
class FaultSpec:
    """A feed fault to inject into one symbol's stream.

    Parameters
    ----------
    kind
        `"gap"`: `missing` messages are lost (the next one's `prev_seq` points at a sequence never
        delivered); after `resync_after` more messages the venue sends a resync snapshot (at the
        end of the session if the stream ends first).
        `"duplicate"`: a message is delivered twice in a row.
        `"out_of_order"`: a copy of a message arrives `lag` messages late (its `seq` is older than
        the last applied one, its source time goes backwards).
    symbol
        The instrument whose stream is affected.
    at
        Where, as a fraction in (0, 1) of the symbol's simulated messages.
    """

    kind: FaultKind
    symbol: str
    at: float
    missing: int = 3
    resync_after: int = 200
    lag: int = 3

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if not 0.0 < self.at < 1.0:
            raise ValueError(f"fault position `at` must be in (0, 1), got {self.at}")
        if self.missing < 1 or self.resync_after < 1 or self.lag < 1:
            # resync_after >= 1: at least one diff must show the hole before the snapshot heals it
            raise ValueError("need missing >= 1, resync_after >= 1, lag >= 1")


@dataclass(frozen=True)
class SimConfig:
    """Everything that determines a simulated session; equal configs give identical bytes.

    Parameters
    ----------
    seed
        Seed of the `numpy.random.SeedSequence` whose children drive each symbol and the latency.
    n_messages
        Simulated book messages over all symbols, split by `activity`. Initial and resync
        snapshots and injected copies come on top; messages lost in a gap are part of it.
    instruments
        The instruments; their order fixes the symbol ids.
    model
        Rates and shapes of the order flow.
    start_ts_ns
        Source time of the initial snapshots (ns since the epoch).
    start_seq
        Sequence number of each symbol's initial snapshot; later messages count up by one.
    faults
        Feed faults to inject.
    """

    seed: int = 7
    n_messages: int = 100_000
    instruments: tuple[SimInstrument, ...] = DEFAULT_INSTRUMENTS
    model: SimModel = field(default_factory=SimModel)
    start_ts_ns: int = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
    start_seq: int = 1
    faults: tuple[FaultSpec, ...] = ()

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError("seed must be >= 0")
        if self.n_messages < 0:
            raise ValueError("n_messages must be >= 0")
        if not self.instruments:
            raise ValueError("at least one instrument is needed")
        names = [inst.spec.symbol for inst in self.instruments]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate instrument symbols in {names}")
        for fault in self.faults:
            if fault.symbol not in names:
                raise ValueError(f"fault on unknown symbol {fault.symbol!r}")
        if self.start_ts_ns < 0 or self.start_seq < 0:
            raise ValueError("start_ts_ns and start_seq must be >= 0")

    def messages_per_symbol(self) -> tuple[int, ...]:
        """Simulated book messages of each instrument: `n_messages` split by `activity`."""
        total = sum(inst.activity for inst in self.instruments)
        shares = [int(self.n_messages * inst.activity / total) for inst in self.instruments]
        # Hand the rounding remainder to the first instruments so the shares add up exactly.
        for i in range(self.n_messages - sum(shares)):
            shares[i % len(shares)] += 1
        return tuple(shares)
