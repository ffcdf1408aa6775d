"""Assembly of a session: per-symbol streams, injected faults, receive latency, merged delivery."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from featureplane.events import END_OF_MESSAGE, NO_SEQ, empty
from featureplane.instruments import SymbolTable
from featureplane.sources.sim.config import FaultKind, FaultSpec, SimConfig
from featureplane.sources.sim.flow import SymbolFlow, simulate_symbol

GENERATOR = "featureplane.sim/zi-queue-v1"
"""Name and version of the generating model; bump the version when the bytes of a config change."""


@dataclass(frozen=True)
class InjectedFault:
    """Where an injected fault ended up in `SimSession.events`.

    Attributes
    ----------
    kind, symbol
        As in the `FaultSpec`.
    seq
        Gap: the first missing sequence number. Duplicate and out-of-order: the `seq` of the
        delivered copy.
    message_index
        Index, counted in messages of `events`, of the message that shows the fault: the first
        message after the hole (gap) or the copy (duplicate, out-of-order).
    n_missing
        Gap: messages lost.
    resync_message_index
        Gap: message index of the resync snapshot.
    """

    kind: FaultKind
    symbol: str
    seq: int
    message_index: int
    n_missing: int = 0
    resync_message_index: int = -1


@dataclass(frozen=True, eq=False)
class SimSession:
    """A simulated multi-symbol session.

    Attributes
    ----------
    events
        `EVENT_DTYPE` rows, messages in delivery (receive) order across symbols.
    symbols
        The instruments; ids follow `SimConfig.instruments`.
    config
        The config that produced the session.
    faults
        The injected faults, in the order of `config.faults`.
    info
        JSON-ready description: generator, seed, model parameters, per-symbol counts.
    elapsed_s
        Wall time of the generation.
    """

    events: npt.NDArray[np.void]
    symbols: SymbolTable
    config: SimConfig
    faults: tuple[InjectedFault, ...]
    info: dict[str, Any]
    elapsed_s: float = field(default=0.0)

    @property
    def n_messages(self) -> int:
        """Messages in `events` (rows ending a message)."""
        return int(np.count_nonzero(self.events["flags"] & END_OF_MESSAGE))


@dataclass
class _Delivery:
    """One symbol's delivered stream: message indices of its `SymbolFlow`, copies included."""

    order: list[int]
    # (fault number, "at" | "resync") -> position in `order`
    marks: dict[tuple[int, str], int]
    # gap fault number -> message index of its first lost message
    first_lost: dict[int, int]


def _plan(
    config: SimConfig, sym: str, n_flow: int
) -> tuple[list[tuple[int, FaultSpec]], frozenset[int]]:
    """This symbol's faults with their flow index, and the flow indices followed by a resync."""
    planned: list[tuple[int, FaultSpec]] = []
    resync: set[int] = set()
    for fault in config.faults:
        if fault.symbol != sym:
            continue
        k = max(int(fault.at * n_flow), 1)
        # The last flow message the fault needs: the one after the hole, the copied one, or the
        # one the late copy follows.
        if fault.kind == "gap":
            last = k + fault.missing
        elif fault.kind == "duplicate":
            last = k
        else:
            last = k + fault.lag
        if last >= n_flow:
            raise ValueError(
                f"{fault.kind} fault on {sym} at {fault.at} does not fit in its {n_flow} messages"
            )
        planned.append((k, fault))
        if fault.kind == "gap":
            resync.add(min(k + fault.missing + fault.resync_after - 1, n_flow - 1))
    return planned, frozenset(resync)


def _deliver(
    flow: SymbolFlow, planned: list[tuple[int, FaultSpec]], fault_ids: list[int], sym: str
) -> _Delivery:
    """Apply the faults to the true stream: drop lost messages, insert copies, mark positions."""
    drop: set[int] = set()
    inserts: dict[int, list[tuple[int, int]]] = {}
    mark_at: dict[int, list[tuple[int, str]]] = {}
    first_lost: dict[int, int] = {}
    fm = flow.flow_msg
    for (k, fault), fid in zip(planned, fault_ids, strict=True):
        if fault.kind == "gap":
            drop.update(int(m) for m in fm[k : k + fault.missing])
            first_lost[fid] = int(fm[k])
            mark_at.setdefault(int(fm[k + fault.missing]), []).append((fid, "at"))
            resync_after = min(k + fault.missing + fault.resync_after - 1, len(fm) - 1)
            mark_at.setdefault(int(fm[resync_after]) + 1, []).append((fid, "resync"))
        else:
            after = k if fault.kind == "duplicate" else k + fault.lag
            inserts.setdefault(int(fm[after]), []).append((int(fm[k]), fid))
    for (k, fault), _fid in zip(planned, fault_ids, strict=True):
        if fault.kind != "gap":
            after = k if fault.kind == "duplicate" else k + fault.lag
            if int(fm[k]) in drop or int(fm[after]) in drop:
                raise ValueError(f"{fault.kind} fault on {sym} falls inside a gap")
    order: list[int] = []
    marks: dict[tuple[int, str], int] = {}
    for m in range(flow.n_messages):
        if m not in drop:
            for fid, what in mark_at.get(m, ()):
                marks[(fid, what)] = len(order)
            order.append(m)
        for copy, fid in inserts.get(m, ()):
            marks[(fid, "at")] = len(order)
            order.append(copy)
    for fid in fault_ids:
        if (fid, "at") not in marks:
            raise ValueError(f"fault {fid} on {sym} overlaps the hole of another gap")
    return _Delivery(order, marks, first_lost)


def simulate(config: SimConfig | None = None) -> SimSession:
    """Simulate a multi-symbol L2 + trades session.

    Each symbol runs the queue model on its own child of `SeedSequence(config.seed)` (PCG64), so
    the same config gives byte-identical events on the same platform and numpy version. Messages
    are delivered through one FIFO channel per symbol with a random receive latency and merged
    across symbols in receive-time order.

    Parameters
    ----------
    config
        The session to simulate; `SimConfig()` when omitted.

    Returns
    -------
    SimSession
        The events, the symbol table, where the injected faults landed, and generator info.
    """
    config = config or SimConfig()
    t0 = time.perf_counter()
    seeds = np.random.SeedSequence(config.seed).spawn(len(config.instruments) + 1)
    lat_rng = np.random.Generator(np.random.PCG64(seeds[-1]))
    model = config.model
    symbols = SymbolTable([inst.spec for inst in config.instruments])
    fault_ids_of: dict[str, list[int]] = {}
    for fid, fault in enumerate(config.faults):
        fault_ids_of.setdefault(fault.symbol, []).append(fid)

    flows: list[SymbolFlow] = []
    deliveries: list[_Delivery] = []
    local_ts: list[npt.NDArray[np.int64]] = []
    per_symbol: dict[str, dict[str, int]] = {}
    for sid, (inst, n_flow) in enumerate(
        zip(config.instruments, config.messages_per_symbol(), strict=True)
    ):
        sym = inst.spec.symbol
        planned, resync = _plan(config, sym, n_flow)
        rng = np.random.Generator(np.random.PCG64(seeds[sid]))
        flow = simulate_symbol(inst, model, n_flow, rng, config.start_ts_ns, resync)
        delivery = _deliver(flow, planned, fault_ids_of.get(sym, []), sym)
        order = np.asarray(delivery.order, dtype=np.int64)
        jitter = lat_rng.standard_exponential(len(order)) * model.latency_jitter_ns
        recv = flow.src_ts_ns[order] + model.latency_base_ns + jitter.astype(np.int64)
        # One FIFO channel per symbol: a message is never received before its predecessor.
        local_ts.append(np.maximum.accumulate(recv))
        flows.append(flow)
        deliveries.append(delivery)
        per_symbol[sym] = {
            **flow.stats,
            "simulated": n_flow,
            "messages": len(order),
            "duration_ns": int(flow.src_ts_ns[-1] - flow.src_ts_ns[0]),
        }

    events, global_index = _merge(flows, deliveries, local_ts, config.start_seq)
    faults = _locate_faults(config, deliveries, global_index)
    info: dict[str, Any] = {
        "generator": GENERATOR,
        "seed": config.seed,
        "n_messages": config.n_messages,
        "start_ts_ns": config.start_ts_ns,
        "start_seq": config.start_seq,
        "model": asdict(model),
        "instruments": [
            {
                **inst.spec.to_json(),
                "start_px": inst.start_px,
                "order_lots": inst.order_lots,
                "distance_mean_ticks": inst.distance_mean_ticks,
                "activity": inst.activity,
            }
            for inst in config.instruments
        ],
        "faults": [asdict(f) for f in faults],
        "per_symbol": per_symbol,
    }
    return SimSession(events, symbols, config, faults, info, time.perf_counter() - t0)


def _merge(
    flows: list[SymbolFlow],
    deliveries: list[_Delivery],
    local_ts: list[npt.NDArray[np.int64]],
    start_seq: int,
) -> tuple[npt.NDArray[np.void], list[npt.NDArray[np.intp]]]:
    """Interleave the symbols' delivered messages by receive time and lay out the rows.

    Returns the events and, per symbol, the global message index of each delivered position.
    """
    row_base = np.cumsum([0] + [len(f.kind) for f in flows])
    msg_start = [np.concatenate(([0], f.msg_end[:-1])) + row_base[i] for i, f in enumerate(flows)]
    kind = np.concatenate([f.kind for f in flows])
    side = np.concatenate([f.side for f in flows])
    px = np.concatenate([f.px for f in flows])
    qty = np.concatenate([f.qty for f in flows])

    orders = [np.asarray(d.order, dtype=np.int64) for d in deliveries]
    sym = np.concatenate([np.full(len(o), i, dtype=np.uint32) for i, o in enumerate(orders)])
    pos = np.concatenate([np.arange(len(o)) for o in orders])
    msg = np.concatenate(orders)
    recv = np.concatenate(local_ts)
    src = np.concatenate([f.src_ts_ns[o] for f, o in zip(flows, orders, strict=True)])
    starts = np.concatenate([ms[o] for ms, o in zip(msg_start, orders, strict=True)])
    lens = np.concatenate(
        [np.diff(np.concatenate(([0], f.msg_end)))[o] for f, o in zip(flows, orders, strict=True)]
    )
    # Receive order; ties broken by symbol id, then by position in the symbol's own stream.
    g = np.lexsort((pos, sym, recv))
    lens = lens[g]
    out_end = np.cumsum(lens)
    total = int(out_end[-1]) if len(out_end) else 0
    row_idx = np.repeat(starts[g] - (out_end - lens), lens) + np.arange(total)

    events = empty(total)
    events["kind"] = kind[row_idx]
    events["side"] = side[row_idx]
    events["px"] = px[row_idx]
    events["qty"] = qty[row_idx]
    seq = start_seq + msg[g]
    events["symbol_id"] = np.repeat(sym[g], lens)
    events["seq"] = np.repeat(seq, lens)
    events["first_seq"] = np.repeat(seq, lens)
    events["prev_seq"] = np.repeat(np.where(msg[g] == 0, NO_SEQ, seq - 1), lens)
    events["source_ts_ns"] = np.repeat(src[g], lens)
    events["local_ts_ns"] = np.repeat(recv[g], lens)
    if total:
        events["flags"][out_end - 1] = END_OF_MESSAGE

    inverse = np.empty_like(g)
    inverse[g] = np.arange(len(g))
    bounds = np.cumsum([0] + [len(o) for o in orders])
    global_index = [inverse[bounds[i] : bounds[i + 1]] for i in range(len(orders))]
    return events, global_index


def _locate_faults(
    config: SimConfig, deliveries: list[_Delivery], global_index: list[npt.NDArray[np.intp]]
) -> tuple[InjectedFault, ...]:
    """Translate the per-symbol fault marks into message indices of the merged events."""
    sid_of = {inst.spec.symbol: i for i, inst in enumerate(config.instruments)}
    found: list[InjectedFault] = []
    for fid, fault in enumerate(config.faults):
        sid = sid_of[fault.symbol]
        delivery = deliveries[sid]
        at = delivery.marks[(fid, "at")]
        where = int(global_index[sid][at])
        if fault.kind == "gap":
            found.append(
                InjectedFault(
                    fault.kind,
                    fault.symbol,
                    config.start_seq + delivery.first_lost[fid],
                    where,
                    n_missing=fault.missing,
                    resync_message_index=int(global_index[sid][delivery.marks[(fid, "resync")]]),
                )
            )
        else:
            seq = config.start_seq + delivery.order[at]
            found.append(InjectedFault(fault.kind, fault.symbol, seq, where))
    return tuple(found)
