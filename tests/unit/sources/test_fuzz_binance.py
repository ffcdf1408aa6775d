"""Property test of the Binance source on generated chains of files: holes between files, later
snapshots before or after the first diffs, gaps inside files, microsecond recorders, grids too
coarse, both error modes. The two parsers must agree on every input (chunks, stats, errors),
and what they read must hold the source's invariants. The line-level fuzzing of the parsers is
in tests/parity/test_binance_parser_parity.py."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from featureplane.events import CLEAR, LEVEL, message_bounds, validate
from featureplane.instruments import InstrumentSpec
from tests.parity.test_binance_parser_parity import assert_same
from tests.support.fuzz import FUZZ
from tests.support.rust import require_rust
from tests.unit.sources.test_binance_source import (
    T0,
    spot_diff,
    spot_snapshot,
    spot_trade,
    um_diff,
    um_snapshot,
    um_trade,
)

BIDS = [["61800.20", "1.000"], ["61800.10", "0.500"], ["61800.20", "0.000"], ["61799.90", "2.5"]]
COARSE = InstrumentSpec("BTCUSDT", "0.1", "0.01")

Capture = tuple[bool, list[list[str]]]


@st.composite
def chains(draw: st.DrawFn) -> Capture:
    """(USD-M or spot, files of lines): one symbol's chain of 1-3 files."""
    usdm = draw(st.booleans())
    u, trade_id, ts = 1000, 1, T0
    files = []
    for pos in range(draw(st.integers(1, 3))):
        if pos and draw(st.booleans()):
            u += draw(st.integers(1, 40))  # a hole between two files (a missing day)
        scale = draw(st.sampled_from([1, 1, 1000]))  # an older recorder: microseconds
        lines = []
        snapshot_at = draw(st.one_of(st.none(), st.integers(0, 6)))
        for i in range(draw(st.integers(1, 9))):
            ts += draw(st.integers(1, 10**9))
            local = ts // scale
            if i == snapshot_at:
                lid = u + draw(st.integers(-4, 4))
                lines.append(um_snapshot(local, lid) if usdm else spot_snapshot(local, lid))
            action = draw(st.sampled_from(["diff", "diff", "diff", "gap", "trade"]))
            if action == "trade":
                trade_id += 1
                m = draw(st.booleans())
                lines.append(
                    um_trade(local, trade_id, m) if usdm else spot_trade(local, trade_id, m)
                )
                continue
            if action == "gap":
                u += draw(st.integers(1, 5))
            first, prev = u + 1, u
            u += draw(st.integers(1, 4))
            bids = [draw(st.sampled_from(BIDS))]
            if usdm:
                lines.append(um_diff(local, first, u, prev, bids=bids))
            else:
                lines.append(spot_diff(local, first, u, bids=[[b[0] + "0000", b[1]] for b in bids]))
        files.append(lines)
    return usdm, files


def _write(tmp: Path, files: list[list[str]]) -> list[Path]:
    paths = []
    for i, lines in enumerate(files):
        path = tmp / f"btcusdt_{i}.gz"
        path.write_bytes(gzip.compress("".join(f"{x}\n" for x in lines).encode()))
        paths.append(path)
    return paths


def _check_invariants(events: np.ndarray) -> None:
    if not len(events):
        return
    validate(events, 1)
    assert int(events["local_ts_ns"].min()) >= T0 - 10**9  # never a 1970 date
    ends = message_bounds(events)
    first = events[np.concatenate(([0], ends[:-1]))]  # a snapshot or a reset starts with CLEAR
    waiting = False  # after a chain's reset, no diff until a snapshot
    for kind, seq in zip(first["kind"].tolist(), first["seq"].tolist(), strict=True):
        if kind == CLEAR:
            waiting = seq < 0
        elif kind == LEVEL:
            assert not waiting, "a diff between a chain's reset and its next snapshot"


@FUZZ
@given(
    capture=chains(),
    errors=st.sampled_from(["skip", "raise"]),
    missing=st.sampled_from(["skip", "raise"]),
    coarse=st.integers(0, 7),
)
@example(  # a missing day: the later file's own snapshot, written after its first diffs
    capture=(
        True,
        [
            [um_snapshot(T0, 100), um_diff(T0 + 1, 99, 105, 98)],
            [
                um_diff(T0 + 10, 120, 130, 119),
                um_diff(T0 + 11, 131, 135, 130),
                um_snapshot(T0 + 12, 131),
                um_diff(T0 + 13, 136, 140, 135),
            ],
        ],
    ),
    errors="skip",
    missing="raise",
    coarse=1,
)
def test_chains_agree_and_hold_the_invariants(
    capture: Capture, errors: str, missing: str, coarse: int
) -> None:
    require_rust("parser")
    usdm, files = capture
    kwargs: dict[str, Any] = {"errors": errors, "on_missing_snapshot": missing}
    if coarse == 0:  # now and then a grid coarser than the data
        kwargs["instruments"] = [COARSE]
    with tempfile.TemporaryDirectory() as tmp:
        paths = _write(Path(tmp), files)
        outcome = assert_same(paths, market="usdm" if usdm else "spot", **kwargs)
    if outcome.error is None:
        _check_invariants(
            np.concatenate([ev for ev, _ in outcome.chunks]) if outcome.chunks else np.empty(0)
        )
