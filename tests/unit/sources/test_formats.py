"""Format detection and the source registry, on small files of every format made in tmp_path.

The builders here (`binance`, `lobster_pair`, `tardis_pair`, ...) also serve test_parallel.py.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from featureplane.errors import SourceFormatError
from featureplane.events import validate
from featureplane.instruments import InstrumentSpec
from featureplane.replay.run import portable
from featureplane.sources.format import SourceOptions
from featureplane.sources.registry import FORMATS, REGISTRY, detect_format, open_source

T0 = 1_700_000_000_000  # ms
PX = {"BTCUSDT": ("42000.0", "42000.5"), "ETHUSDT": ("2500.00", "2500.01")}

# ----- builders -------------------------------------------------------------------------------


def _line(local_ts_ns: int, obj: dict[str, Any]) -> str:
    return f"{local_ts_ns} {json.dumps(obj, separators=(',', ':'))}\n"


def binance(
    path: Path, symbol: str = "BTCUSDT", *, first: int = 1, n: int = 6, snapshot: bool = True
) -> Path:
    """A USD-M capture: REST snapshot (lastUpdateId 100), then diffs `first..first+n-1` and a
    trade after each. Diff k has u = 101 + 3(k-1) and pu = the previous diff's u, so a file
    starting at `first = n + 1` without a snapshot continues the first file's book."""
    bid, ask = PX[symbol]
    stream = symbol.lower()
    text = ""
    if snapshot:
        book = {"lastUpdateId": 100, "E": T0, "T": T0,
                "bids": [[bid, "1.500"]], "asks": [[ask, "0.250"]]}  # fmt: skip
        text += _line(T0 * 10**6, book)
    for k in range(first, first + n):
        u = 101 + 3 * (k - 1)
        prev, start = (97, 99) if k == 1 else (u - 3, u - 2)
        data = {"e": "depthUpdate", "E": T0 + k, "T": T0 + k, "s": symbol, "U": start, "u": u,
                "pu": prev, "b": [[bid, f"{k}.000"]], "a": [[ask, "0.300"]]}  # fmt: skip
        text += _line((T0 + k) * 10**6 + 5, {"stream": f"{stream}@depth@0ms", "data": data})
        trade = {"e": "trade", "E": T0 + k, "T": T0 + k, "s": symbol, "t": 70 + k, "p": ask,
                 "q": "0.010", "X": "MARKET", "m": k % 2 == 0}  # fmt: skip
        text += _line((T0 + k) * 10**6 + 9, {"stream": f"{stream}@trade", "data": trade})
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(text.encode())
    return path


LOBSTER_MSG = "TEST_2024-01-02_34200000_57600000_message_2.csv"
LOBSTER_OB = "TEST_2024-01-02_34200000_57600000_orderbook_2.csv"
# Before row 1: bid 100.00 x 100, ask 100.02 x 150 (one level a side; level 2 is padding).
LOBSTER_ROWS = [
    ("34200.0,1,11,50,1000000,1", "1000200,150,1000000,150"),  # new buy 50 @ 100.00
    ("34201.0,3,11,50,1000000,1", "1000200,150,1000000,100"),  # its delete
    ("34202.0,4,5,100,1000200,-1", "1000200,50,1000000,100"),  # a resting sell executed
]
PAD = ",9999999999,0,-9999999999,0"


def lobster_pair(folder: Path, prefix: str = "") -> tuple[Path, Path]:
    msg = folder / (prefix + LOBSTER_MSG.replace("TEST", "TEST" + prefix.upper()))
    ob = folder / (prefix + LOBSTER_OB.replace("TEST", "TEST" + prefix.upper()))
    msg.write_text("".join(m + "\n" for m, _ in LOBSTER_ROWS))
    ob.write_text("".join(b + PAD + "\n" for _, b in LOBSTER_ROWS))
    return msg, ob


def lobster_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(LOBSTER_MSG, "".join(m + "\n" for m, _ in LOBSTER_ROWS))
        zf.writestr(LOBSTER_OB, "".join(b + PAD + "\n" for _, b in LOBSTER_ROWS))
    return path


TARDIS_BOOK = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
TARDIS_TRADES = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"


def tardis_pair(folder: Path, symbol: str = "BTCUSDT", gz: bool = False) -> list[Path]:
    ex = "binance-futures"
    book = [
        f"{ex},{symbol},2000,2100,true,ask,100.5,2",
        f"{ex},{symbol},2000,2100,true,bid,100.4,3",
        f"{ex},{symbol},3000,3100,false,bid,100.4,1",
    ]
    trades = [f"{ex},{symbol},3050,3150,1,buy,100.5,0.5"]
    out = []
    for kind, header, rows in (("book", TARDIS_BOOK, book), ("trades", TARDIS_TRADES, trades)):
        text = "".join(f"{r}\n" for r in [header, *rows]).encode()
        path = folder / f"{symbol.lower()}_{kind}.csv{'.gz' if gz else ''}"
        path.write_bytes(gzip.compress(text, mtime=0) if gz else text)
        out.append(path)
    return out


HBT_DTYPE = np.dtype(
    [("ev", "u8"), ("exch_ts", "i8"), ("local_ts", "i8"), ("px", "f8"), ("qty", "f8"),
     ("order_id", "u8"), ("ival", "i8"), ("fval", "f8")],
    align=True,
)  # fmt: skip


def dbn(path: Path, *, zstd: bool) -> Path:
    raw = b"DBN\x01" + bytes(60)  # the magic is all detection reads
    path.write_bytes(pa.compress(raw, "zstd", asbytes=True) if zstd else raw)
    return path


# ----- detection ------------------------------------------------------------------------------


def test_every_format_detected(tmp_path: Path) -> None:
    msg, ob = lobster_pair(tmp_path)
    book, trades = tardis_pair(tmp_path)
    book_gz, _ = tardis_pair(tmp_path, "ETHUSDT", gz=True)
    plain = tmp_path / "btc.txt"
    plain.write_bytes(gzip.decompress(binance(tmp_path / "b.gz").read_bytes()))
    npz = tmp_path / "events.npz"
    np.savez(npz, data=np.zeros(3, dtype=HBT_DTYPE))
    cases = {
        tmp_path / "b.gz": "binance",
        plain: "binance",
        lobster_zip(tmp_path / "l.zip"): "lobster",
        msg: "lobster",
        ob: "lobster",
        book: "tardis",
        trades: "tardis",
        book_gz: "tardis",
        dbn(tmp_path / "x.dbn", zstd=False): "databento",
        dbn(tmp_path / "x.dbn.zst", zstd=True): "databento",
        npz: "hftbacktest",
    }
    for path, fmt in cases.items():
        assert detect_format(path) == fmt, path.name
        assert detect_format(str(path)) == fmt


def test_content_not_the_name(tmp_path: Path) -> None:
    """A misleading extension does not decide: each file is sniffed."""
    assert detect_format(binance(tmp_path / "looks_like.csv")) == "binance"
    tardis = tardis_pair(tmp_path)[0].rename(tmp_path / "capture.gz")
    assert detect_format(tardis) == "tardis"
    assert detect_format(lobster_zip(tmp_path / "archive.npz")) == "lobster"
    msg = lobster_pair(tmp_path)[0].rename(tmp_path / "anything.txt")
    assert detect_format(msg) == "lobster"  # 6 numeric columns
    assert detect_format(dbn(tmp_path / "data.bin", zstd=True)) == "databento"


def test_long_first_line_still_binance(tmp_path: Path) -> None:
    """A REST snapshot line longer than the peek is told by its start."""
    levels = [[f"{42000 - i}.0", "1.000"] for i in range(20_000)]
    book = {"lastUpdateId": 1, "E": T0, "T": T0, "bids": levels, "asks": levels}
    path = tmp_path / "big.gz"
    path.write_bytes(gzip.compress(_line(T0 * 10**6, book).encode(), mtime=0))
    assert detect_format(path) == "binance"


def _unknown(path: Path) -> str:
    with pytest.raises(SourceFormatError) as info:
        detect_format(path)
    text = str(info.value)
    assert text.startswith(str(path)) and info.value.path == str(path)
    assert "tried binance, lobster, tardis, databento, hftbacktest" in text
    return text


def test_unknown_files_name_the_file_and_the_formats_tried(tmp_path: Path) -> None:
    notes = tmp_path / "SOURCE.md"
    notes.write_text("# notes\n")
    assert "a file starting '# notes'" in _unknown(notes)
    junk = tmp_path / "junk.gz"
    junk.write_bytes(bytes(range(256)) * 4)
    assert "binary" in _unknown(junk)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(binance(tmp_path / "whole.gz").read_bytes()[:12])
    _unknown(cut)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    _unknown(empty)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("readme.txt", "hello")
    assert "zip" in _unknown(other)
    npz = tmp_path / "other.npz"
    np.savez(npz, data=np.zeros(3, dtype=[("a", "i8")]))
    _unknown(npz)
    csv = tmp_path / "prices.csv"
    csv.write_text("time,price\n1,2\n")
    _unknown(csv)
    json_lines = tmp_path / "events.gz"
    json_lines.write_bytes(gzip.compress(b'123 {"hello": 1}\n', mtime=0))
    _unknown(json_lines)
    zstd = tmp_path / "other.zst"
    zstd.write_bytes(pa.compress(b"not dbn at all", "zstd", asbytes=True))
    assert "zstd" in _unknown(zstd)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        detect_format(tmp_path / "missing.gz")


def test_registry_covers_every_detected_format() -> None:
    assert set(FORMATS) == set(REGISTRY)
    assert REGISTRY["binance"].merges and REGISTRY["tardis"].merges
    assert not REGISTRY["lobster"].merges


# ----- opening --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["binance", "lobster", "tardis"])
def test_open_source_yields_events_symbols_and_stats(tmp_path: Path, fmt: str) -> None:
    files: list[Path] = {
        "binance": lambda: [binance(tmp_path / "b.gz")],
        "lobster": lambda: list(lobster_pair(tmp_path)),
        "tardis": lambda: tardis_pair(tmp_path),
    }[fmt]()
    source = open_source(fmt, files)
    chunks = list(source)
    assert chunks and len(source.symbols) == 1
    for chunk in chunks:
        validate(chunk, len(source.symbols))
    stats = json.dumps(portable(source.stats, source.files))
    # Inputs are recorded by base name only: the file's bytes must not depend on tmp_path.
    assert str(tmp_path) not in stats and files[0].name in stats
    assert source.summary()


def test_lobster_chain_of_a_lone_orderbook_is_refused(tmp_path: Path) -> None:
    _, ob = lobster_pair(tmp_path)
    with pytest.raises(SourceFormatError, match="message file"):
        open_source("lobster", [ob])


def test_open_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        open_source("nope", ["x"])


@pytest.mark.parametrize(
    ("fmt", "module"),
    [("databento", "featureplane.sources.databento.reader"),
     ("hftbacktest", "featureplane.sources.hftbacktest.reader")],
)  # fmt: skip
def test_missing_source_or_decoder_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, module: str
) -> None:
    import importlib

    real = importlib.import_module

    def missing(name: str) -> Any:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    def missing_decoder(name: str) -> Any:
        raise ModuleNotFoundError("No module named 'databento_dbn'", name="databento_dbn")

    spec = (InstrumentSpec("X", "0.1", "1"),)
    for fake, text in ((missing, "not in this build"), (missing_decoder, "pip install")):
        monkeypatch.setattr(importlib, "import_module", fake)
        with pytest.raises(SourceFormatError, match=text) as info:
            open_source(fmt, [tmp_path / "x.npz"], SourceOptions(instruments=spec))
        assert "x.npz" in str(info.value)
        monkeypatch.setattr(importlib, "import_module", real)


def test_one_file_formats_refuse_several(tmp_path: Path) -> None:
    for fmt in ("databento", "hftbacktest"):
        with pytest.raises(SourceFormatError, match="one file"):
            open_source(fmt, [tmp_path / "a", tmp_path / "b"])


def hftbacktest_npz(path: Path, capture: Path) -> Path:
    """The Binance capture written as an hftbacktest event array (`.npz`, key `data`)."""
    hbt = pytest.importorskip("featureplane.sources.hftbacktest.reader")
    pytest.importorskip("hftbacktest")
    from featureplane.sources.binance.reader import read_binance

    whole = read_binance([capture])
    np.savez(path, data=hbt.to_hftbacktest_events(whole.events, whole.symbols, "BTCUSDT"))
    return path


def test_hftbacktest_array_needs_an_instrument(tmp_path: Path) -> None:
    npz = hftbacktest_npz(tmp_path / "btc.npz", binance(tmp_path / "b.gz"))
    assert detect_format(npz) == "hftbacktest"
    with pytest.raises(SourceFormatError, match="--instrument"):
        open_source("hftbacktest", [npz])
    btc = InstrumentSpec("BTCUSDT", "0.1", "0.001")
    other = InstrumentSpec("ETHUSDT", "0.01", "0.001")
    with pytest.raises(SourceFormatError, match="named like the file"):
        open_source("hftbacktest", [npz], SourceOptions(instruments=(btc, other)))
    named = InstrumentSpec("btc", "0.1", "0.001")  # two given: the one named like the file
    for given in ((btc,), (other, named)):
        source = open_source("hftbacktest", [npz], SourceOptions(instruments=given))
        (chunk,) = list(source)
        assert source.symbols.specs[0].tick_size == btc.tick_size and len(chunk) > 0


def test_caller_instruments_reach_every_reader(tmp_path: Path) -> None:
    spec = InstrumentSpec("TEST", "0.01", "1", "NASDAQ")
    for files in (list(lobster_pair(tmp_path)), [lobster_zip(tmp_path / "t.zip")]):
        source = open_source("lobster", files, SourceOptions(instruments=(spec,)))
        assert source.symbols.spec("TEST") == replace(spec, depth=2)  # the file's N levels
    btc = InstrumentSpec("BTCUSDT", "0.1", "0.0001")
    source = open_source("binance", [binance(tmp_path / "b.gz")], SourceOptions(instruments=(btc,)))
    assert source.symbols.spec("BTCUSDT").lot_size == btc.lot_size
    finer = InstrumentSpec("BTCUSDT", "0.01", "0.01")
    source = open_source("tardis", tardis_pair(tmp_path), SourceOptions(instruments=(finer,)))
    assert source.symbols.spec("BTCUSDT").tick_size == finer.tick_size


def test_portable_reduces_paths_and_stringifies() -> None:
    import datetime as dt
    from decimal import Decimal

    obj = {"path": "/a/b/c.gz", "where": "/a/b/c.gz:12", "day": dt.date(2024, 1, 2),
           "x": Decimal("0.1")}  # fmt: skip
    assert portable(obj, ["/a/b/c.gz"]) == {
        "path": "c.gz",
        "where": "c.gz:12",
        "day": "2024-01-02",
        "x": "0.1",
    }
