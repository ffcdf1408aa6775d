"""The source depth in the contract: a feature reading more levels than the source carries is
never ready on it, on both backends, across resets, backend switches and checkpoints."""

from __future__ import annotations

import pytest

from featureplane import InstrumentSpec
from featureplane.engine.facade import FeatureEngine
from featureplane.errors import InvalidMessageError
from featureplane.events import ASK, BID, BUY, make_message
from featureplane.features.lob_shared_v1 import (
    ALL_BITS,
    IMBALANCE_L5,
    LOB_SHARED_V1,
    NEEDED_DEPTH,
    OFI_L5,
    ready_limit,
)
from featureplane.instruments import SymbolTable

DEEP = (1 << IMBALANCE_L5) | (1 << OFI_L5)
TRADE_BITS = sum(1 << i for i, f in enumerate(LOB_SHARED_V1.features) if f.source_kind == "trade")


def stream(n: int = 80) -> list[object]:
    """A snapshot of five levels a side, then level changes and a trade now and then."""
    snapshot = [(BID, 100 - i, 5 + i) for i in range(5)] + [(ASK, 101 + i, 4 + i) for i in range(5)]
    out: list[object] = [make_message(0, source_ts_ns=0, seq=1, snapshot=snapshot)]
    for k in range(2, n):
        side, px = (BID, 100 - k % 5) if k % 2 else (ASK, 101 + k % 5)
        out.append(
            make_message(0, source_ts_ns=k, seq=k, prev_seq=k - 1, levels=[(side, px, k % 7 + 1)])
        )
        if k % 10 == 0:
            out.append(make_message(0, source_ts_ns=k, seq=k, trades=[(BUY, 101, 1)]))
    return out


def masks(backend: str, depth: int | None) -> list[int]:
    spec = InstrumentSpec("TEST", "0.5", "0.01", depth=depth)
    engine = FeatureEngine([spec], backend=backend)
    return [f.warmup_ready_mask for m in stream() if (f := engine.process(m)) is not None]  # type: ignore[arg-type]


def test_the_limit_follows_the_levels_each_feature_reads() -> None:
    assert NEEDED_DEPTH[IMBALANCE_L5] == NEEDED_DEPTH[OFI_L5] == 5
    assert ready_limit(None) == ready_limit(5) == ready_limit(10) == ALL_BITS
    assert ready_limit(1) == ready_limit(4) == ALL_BITS & ~DEEP
    assert ready_limit(0) == TRADE_BITS


@pytest.mark.parametrize("depth", [None, 10, 5, 4, 1, 0])
def test_features_deeper_than_the_source_are_never_ready(backend: str, depth: int | None) -> None:
    got = masks(backend, depth)
    full = masks(backend, None)
    assert got == [m & ready_limit(depth) for m in full]
    assert full[-1] == ALL_BITS  # warm everywhere on a full-depth source
    if depth is not None and depth < 5:
        assert not any(m & DEEP for m in got)
    if depth == 0:
        assert all(m & ~TRADE_BITS == 0 for m in got) and got[-1] == TRADE_BITS


def test_the_limit_survives_resets_switches_and_checkpoints(backend: str) -> None:
    other = "python" if backend == "rust" else "rust"
    table = SymbolTable([InstrumentSpec("TEST", "0.5", "0.01", depth=1)])
    engine = FeatureEngine(table, backend=backend)
    messages = stream()
    for m in messages[:40]:
        engine.process(m)  # type: ignore[arg-type]
    state = engine.export_state()
    engine.reset_symbol("TEST")
    try:
        engine.set_backend(other)
    except ImportError:
        pytest.skip(f"the {other} backend is not built")
    seen = [f.warmup_ready_mask for m in messages if (f := engine.process(m)) is not None]  # type: ignore[arg-type]
    restored = FeatureEngine(table, backend=backend)
    restored.import_state(state)
    seen += [f.warmup_ready_mask for m in messages[40:] if (f := restored.process(m)) is not None]  # type: ignore[arg-type]
    assert seen[-1] == ALL_BITS & ~DEEP
    assert not any(m & DEEP for m in seen)


def test_depth_is_recorded_with_the_instrument() -> None:
    spec = InstrumentSpec("TEST", "0.5", "0.01", "NASDAQ", depth=1)
    assert spec.to_json()["depth"] == 1
    assert InstrumentSpec.from_json(spec.to_json()) == spec
    assert "depth" not in InstrumentSpec("TEST", "0.5", "0.01").to_json()  # full depth: as before
    with pytest.raises(InvalidMessageError, match="depth"):
        InstrumentSpec("TEST", "0.5", "0.01", depth=-1)
