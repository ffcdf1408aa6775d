"""Binance captures that are readable but degraded: older recorders' microsecond local times,
COIN-M captures, grids too coarse for the data. Both parsers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from featureplane.errors import SourceFormatError, SyncError
from featureplane.instruments import InstrumentSpec
from featureplane.sources import read_binance
from featureplane.sources.binance.format import plan
from featureplane.sources.format import SourceOptions
from tests.support.rust import require_rust
from tests.unit.sources.test_binance_source import (
    T0,
    line,
    um_diff,
    um_snapshot,
    um_trade,
    wrap,
    write,
)

US = T0 // 1000  # the same instant in microseconds


@pytest.fixture(params=["python", "rust"])
def parser(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "rust":
        require_rust("parser")
    return name


def read(paths: Any, parser: str, **kwargs: Any) -> Any:
    return read_binance(paths, parser=parser, **kwargs)  # type: ignore[arg-type]


# ----- microsecond local timestamps --------------------------------------------------------------


def test_microsecond_local_times_are_converted_and_noted(tmp_path: Path, parser: str) -> None:
    path = write(tmp_path / "us.gz", [um_snapshot(US, 100), um_diff(US + 5, 99, 105, 98)])
    replay = read(path, parser)
    assert list(replay.events["local_ts_ns"]) == [T0] * 4 + [T0 + 5000]  # never 1970
    assert replay.stats.files[0].local_ts_unit == "us"
    assert replay.stats.warnings == {"local_ts_unit": 1}
    note = replay.stats.examples["local_ts_unit"][0]
    assert f"local timestamps in us (the first is {US}): converted to ns (x 1000)" in note


def test_a_chain_mixing_units_keeps_its_order(tmp_path: Path, parser: str) -> None:
    # The older recorder wrote the later day: read as ns it would sort first (a 1970 date).
    first = write(tmp_path / "a.gz", [um_snapshot(T0, 100), um_diff(T0 + 1, 99, 105, 98)])
    later = write(tmp_path / "b.gz", [um_diff(US + 10_000, 106, 110, 105)])
    replay = read([later, first], parser)
    assert [f.chain_pos for f in replay.stats.files] == [1, 0]
    assert replay.stats.warnings == {"local_ts_unit": 1}  # and no chain gap
    assert int(replay.events["local_ts_ns"][-1]) == T0 + 10_000_000
    for chain in plan([str(later), str(first)], SourceOptions()):
        assert chain.files == (str(first), str(later))


def test_a_nanosecond_line_in_a_microsecond_file_is_a_bad_line(tmp_path: Path, parser: str) -> None:
    path = write(tmp_path / "us.gz", [um_snapshot(US, 100), um_diff(T0, 99, 105, 98)])
    replay = read(path, parser)
    assert replay.stats.skipped == {"bad_line": 1}  # past int64 once scaled: never a wrong time
    with pytest.raises(SourceFormatError, match=r"us\.gz:2: bad_line"):
        read(path, parser, errors="raise")


# ----- COIN-M ---------------------------------------------------------------------------------


def coinm_diff(ts: int, first: int, last: int, prev: int) -> str:
    data = {"e": "depthUpdate", "E": 1000, "T": 999, "s": "BTCUSD_PERP", "ps": "BTCUSD"}
    data |= {"U": first, "u": last, "pu": prev, "b": [["61800.1", "12"]], "a": []}
    return line(ts, wrap("btcusd_perp@depth@0ms", data))


def coinm_snapshot(ts: int, lid: int) -> str:
    obj = {"lastUpdateId": lid, "E": 2000, "T": 1990, "symbol": "BTCUSD_PERP", "pair": "BTCUSD"}
    obj |= {"bids": [["61800.1", "10"]], "asks": [["61800.2", "7"]]}
    return line(ts, obj)


def test_coin_margined_captures_are_labelled_and_sized_in_contracts(
    tmp_path: Path, parser: str
) -> None:
    path = write(
        tmp_path / "btcusd_perp.gz", [coinm_snapshot(T0, 100), coinm_diff(T0 + 1, 99, 105, 98)]
    )
    replay = read(path, parser)
    spec = replay.symbols.spec("BTCUSD_PERP")
    assert (spec.venue, spec.lot_size) == ("binance-coinm", 1)
    assert replay.stats.sync["BTCUSD_PERP"].market == "coinm"
    assert "contracts" in replay.stats.instruments["BTCUSD_PERP"]
    assert [f.market for f in replay.stats.files] == ["coinm"]
    (chain,) = plan([str(path)], SourceOptions())
    assert chain.name == "binance-coinm-BTCUSD_PERP"
    assert int(replay.events["qty"][1]) == 10  # contracts, exactly


# ----- a grid too coarse for the data ---------------------------------------------------------


def test_a_lot_too_coarse_is_refused_not_a_trades_only_file(tmp_path: Path, parser: str) -> None:
    path = write(
        tmp_path / "btc.gz",
        [um_snapshot(T0, 100), um_diff(T0 + 1, 99, 105, 98), um_trade(T0 + 2, 1, m=False)],
    )
    coarse = InstrumentSpec("BTCUSDT", "0.1", "0.01")  # sizes like 2.909 are off this grid
    with pytest.raises(SourceFormatError, match=r"off its grid .*lot 0\.01.*instruments=") as err:
        read(path, parser, instruments=[coarse])
    assert "no REST snapshot could be read" in str(err.value)


def test_a_tick_too_coarse_names_the_grid_not_a_missing_snapshot(
    tmp_path: Path, parser: str
) -> None:
    path = write(tmp_path / "btc.gz", [um_snapshot(T0, 100), um_diff(T0 + 1, 99, 105, 98)])
    coarse = InstrumentSpec("BTCUSDT", "1", "0.001")  # 61800.2 is off a tick of 1
    with pytest.raises(SourceFormatError, match=r"off its grid \(tick 1,") as err:
        read(path, parser, instruments=[coarse])
    assert not isinstance(err.value, SyncError)


def test_a_few_off_grid_lines_after_a_snapshot_are_counted_skips(
    tmp_path: Path, parser: str
) -> None:
    lines = [um_snapshot(T0, 100), um_diff(T0 + 1, 99, 105, 98)]
    lines += [um_trade(T0 + 2 + i, i + 1, m=False) for i in range(150)]
    lines.append(um_trade(T0 + 999, 999, m=True, px="61800.35"))  # one corrupt price
    replay = read(write(tmp_path / "btc.gz", lines), parser)
    assert replay.stats.skipped == {"off_grid": 1}
    assert replay.stats.sync["BTCUSDT"].off_grid == 1


def test_one_diff_off_a_grid_the_caller_gave_is_refused(tmp_path: Path, parser: str) -> None:
    lines = [um_snapshot(T0, 100), um_diff(T0 + 1, 99, 105, 98)]
    lines.append(um_diff(T0 + 2, 106, 107, 105, bids=[["61800.2", "1.0005"]]))
    path = write(tmp_path / "btc.gz", lines)
    # On the built-in grid (the venue's own) the line is damage: skipped, counted.
    assert read(path, parser).stats.skipped == {"off_grid": 1}
    # On the caller's grid it says the grid is wrong: every later frame would be a gap.
    given = InstrumentSpec("BTCUSDT", "0.1", "0.001")
    with pytest.raises(SourceFormatError, match="1 of them book lines: the grid is too coarse"):
        read(path, parser, instruments=[given])
