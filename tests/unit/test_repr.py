"""The reprs of the common objects: a summary a user can read at a prompt, never an array."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from featureplane import FeatureEngine, FrameBatch, InstrumentSpec, SymbolTable, get_feature_set
from featureplane.frames.frame import QualityFlag
from featureplane.replay import replay_events, replay_files
from featureplane.sources.sim import FaultSpec, SimConfig, SimSession, simulate
from tests.unit.sources.test_formats import binance

MAX_REPR = 600
"""Longest repr accepted: a few lines of a terminal whatever the batch size."""


@pytest.fixture(scope="module")
def session() -> SimSession:
    # Gaps, duplicates and late copies: frames with flags, engines with non-zero counters.
    faults = (
        FaultSpec("gap", "SIMBTC", at=0.3, resync_after=20),
        FaultSpec("duplicate", "SIMETH", at=0.5),
        FaultSpec("out_of_order", "SIMSOL", at=0.6, lag=3),
    )
    return simulate(SimConfig(seed=7, n_messages=3_000, faults=faults))


def utc_ns(text: str) -> int:
    """ns since the epoch of an ISO 8601 UTC datetime ending in Z."""
    assert text.endswith("Z"), text
    return int(np.datetime64(text[:-1], "ns").astype(np.int64))


def test_frame_batch_repr(session: SimSession) -> None:
    batch = FeatureEngine(session.symbols, backend="python").process_batch(session.events)
    text = repr(batch)
    assert text.startswith(f"<FrameBatch {batch.feature_set.feature_set_id}: {len(batch):,} frames")
    assert len(text) < MAX_REPR and "\n" not in text and "array" not in text
    for spec in session.symbols:
        assert f"{spec.symbol} {len(batch.for_symbol(spec.symbol)):,}" in text
    # The time range: the earliest and latest exchange times, as UTC datetimes to the ns.
    found = re.search(r"source_ts (\S+) \.\. (\S+),", text)
    assert found is not None, text
    ts = batch.columns["source_ts_ns"]
    assert utc_ns(found[1]) == int(ts.min()) and utc_ns(found[2]) == int(ts.max())
    # Flags: each carried flag with its count, and only those.
    counts = batch.flag_counts()
    assert counts["GAP_DETECTED"] > 0 and counts["OUT_OF_ORDER_INPUT"] > 0
    flags = text.split("flags: ", 1)[1].rstrip(">")
    assert flags == ", ".join(f"{k} {v:,}" for k, v in counts.items() if v)


def test_frame_batch_repr_bounded() -> None:
    empty = FrameBatch.allocate(get_feature_set(), SymbolTable(), 0)
    assert repr(empty) == "<FrameBatch lob_shared_v1: 0 frames>"
    symbols = SymbolTable([InstrumentSpec(f"SYM{i:02d}", "0.01", "1") for i in range(12)])
    batch = FrameBatch.allocate(get_feature_set(), symbols, 120_000)
    batch.columns["symbol_id"][:] = np.arange(120_000) % 12
    batch.columns["quality_flags"][::2] = int(QualityFlag.STALE_INPUT)
    text = repr(batch)
    assert "12 symbols (SYM00 10,000, " in text and "SYM07 10,000, +4 more)" in text
    assert "SYM08" not in text
    assert text.endswith("flags: STALE_INPUT 60,000>")
    assert len(text) < MAX_REPR


def test_engine_repr(session: SimSession, backend: str) -> None:
    engine = FeatureEngine(session.symbols, backend=backend)
    fresh = repr(engine)
    assert fresh.startswith(f"<FeatureEngine backend={backend} feature_set=lob_shared_v1 ")
    assert "symbols=3 (SIMBTC, SIMETH, SIMSOL)" in fresh
    assert fresh.endswith("messages 0, applied 0>")
    engine.process_batch(session.events)
    text = repr(engine)
    counters = engine.counters
    assert counters["gaps"] > 0 and counters["duplicates"] > 0 and counters["out_of_order"] > 0
    shown = {k: v for k, v in counters.items() if v or k in ("messages", "applied")}
    assert text.endswith(", ".join(f"{k} {v:,}" for k, v in shown.items()) + ">")
    assert "stale" not in text  # a zero counter is left out
    assert len(text) < MAX_REPR


def test_symbol_table_repr() -> None:
    specs = [
        InstrumentSpec("BTCUSDT", "0.10", "0.001"),
        InstrumentSpec("ETHUSDT", Decimal("0.01"), "0.001"),
        InstrumentSpec("GOOG", "0.0001", "1"),
    ]
    text = repr(SymbolTable(specs))
    assert text == (
        "<SymbolTable 3 symbols: BTCUSDT (tick 0.10, lot 0.001), ETHUSDT (tick 0.01, lot 0.001), "
        "GOOG (tick 0.0001, lot 1)>"
    )
    assert repr(SymbolTable(specs[:1])).startswith("<SymbolTable 1 symbol: BTCUSDT ")
    assert repr(SymbolTable()) == "<SymbolTable 0 symbols: none>"
    many = SymbolTable([InstrumentSpec(f"S{i}", "1", "1") for i in range(25)])
    assert repr(many).endswith("S19 (tick 1, lot 1), +5 more>")


def test_replay_summary_repr(session: SimSession, tmp_path: Path) -> None:
    out = tmp_path / "sim.parquet"
    summary = replay_events([session.events], session.symbols, out, progress=False)
    text = repr(summary)
    assert text.startswith(
        f"<ReplaySummary {out}: {summary.frames:,} frames from {summary.messages:,} messages "
        f"({summary.events:,} events), backend {summary.backend}, "
    )
    flags = ", ".join(f"{k} {v:,}" for k, v in summary.flag_counts.items() if v)
    assert "GAP_DETECTED" in flags and text.endswith(f"flags: {flags}>")
    assert len(text) < MAX_REPR


def test_parallel_summary_repr(tmp_path: Path) -> None:
    binance(tmp_path / "btcusdt.gz", n=6)
    binance(tmp_path / "ethusdt.gz", "ETHUSDT", n=4)
    summary = replay_files(
        [tmp_path / "btcusdt.gz", tmp_path / "ethusdt.gz"],
        tmp_path / "out",
        jobs=1,
        backend="python",
        progress=False,
    )
    text = repr(summary)
    assert text.startswith(
        f"<ParallelSummary 2 chains, 2 files: {summary.total('frames'):,} frames from "
        f"{summary.total('messages'):,} messages, 1 worker(s) (local), "
    )
    assert "btcusdt" not in text  # no file lists: they grow with the run
    flags = ", ".join(f"{k} {v:,}" for k, v in summary.flag_counts().items() if v) or "none"
    assert text.endswith(f"flags: {flags}>")
