"""`featureplane backtest` feeds from files of any venue: hftbacktest arrays here (the other
venues' readers are tested with their sources), several symbols, the errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hftbacktest")

from featureplane.backtest.feeds import load_feeds, pick
from featureplane.cli import main
from featureplane.errors import FeatureplaneError, SourceFormatError, UnknownSymbolError
from featureplane.instruments import InstrumentSpec
from featureplane.sources.format import SourceOptions
from featureplane.sources.hftbacktest import to_hftbacktest_events
from tests.support import hbt_synthetic as syn

GRIDS = {syn.SYMBOL: ("0.1", "0.001"), syn.LEAD: ("0.01", "0.001")}


def _arrays(tmp_path: Path) -> list[Path]:
    events, table = syn.two_symbols()
    paths = []
    for symbol in GRIDS:
        path = tmp_path / f"{symbol}.npz"
        np.savez(path, data=to_hftbacktest_events(events, table, symbol))
        paths.append(path)
    return paths


def _options() -> SourceOptions:
    return SourceOptions(instruments=tuple(InstrumentSpec(s, *g) for s, g in GRIDS.items()))


def test_every_symbol_of_the_files_with_its_instrument(tmp_path: Path) -> None:
    feeds = load_feeds(_arrays(tmp_path), options=_options())
    assert sorted(feeds) == sorted(GRIDS)
    for symbol, (tick, lot) in GRIDS.items():
        feed = feeds[symbol]
        assert feed.format == "hftbacktest"
        spec = feed.symbols.spec(symbol)
        assert (str(spec.tick_size), str(spec.lot_size)) == (tick, lot)
        mine = feed.events[feed.events["symbol_id"] == feed.symbols.id_of(symbol)]
        assert len(mine) == len(syn.feed())  # every row of the symbol, none lost
    # Chains come in name order: the first symbol found is syn.LEADUSDT.
    assert next(iter(feeds)) == syn.LEAD
    assert [f.symbol for f in pick(feeds, [syn.SYMBOL, None])] == [syn.SYMBOL, syn.LEAD]
    assert [f.symbol for f in pick(feeds, [syn.LEAD, syn.LEAD])] == [syn.LEAD]
    with pytest.raises(UnknownSymbolError, match="NOPE"):
        pick(feeds, ["NOPE"])


def test_a_symbol_in_two_chains_and_unknown_files_are_refused(tmp_path: Path) -> None:
    paths = _arrays(tmp_path)
    copy = tmp_path / "again"
    copy.mkdir()
    (copy / paths[0].name).write_bytes(paths[0].read_bytes())
    with pytest.raises(FeatureplaneError, match="two chains"):
        load_feeds([*paths, copy / paths[0].name], options=_options())
    junk = tmp_path / "junk.txt"
    junk.write_text("not a market data file\n")
    with pytest.raises(SourceFormatError, match="unknown format"):
        load_feeds([junk])


def test_the_cli_backtests_two_arrays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["backtest", "ab", "--loop", "python", "--interval-ms", "1", "--lead", syn.LEAD]
    for path, (symbol, (tick, lot)) in zip(_arrays(tmp_path), GRIDS.items(), strict=True):
        args += ["--capture", str(path), "--instrument", f"{symbol}:{tick}:{lot}"]
    assert main([*args, "--symbol", syn.SYMBOL]) == 0
    out = capsys.readouterr().out
    assert f"leaning on {syn.LEAD}" in out and "decisions identical" in out
    assert main([*args, "--symbol", "NOPE"]) != 0
    assert "NOPE" in capsys.readouterr().err
