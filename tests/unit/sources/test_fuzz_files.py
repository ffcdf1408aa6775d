"""Property tests of the LOBSTER, tardis, Databento and hftbacktest sources on hostile files:
valid files with bytes changed, rows dropped, doubled or cut, archives and streams cut short,
arrays of any values. Each read ends in a `SourceFormatError` (an `OffGridError` for an
hftbacktest value off its grid, an `UnknownSymbolError` for a DBN symbol renamed into one
without a tick), or in events the engine accepts (`events.validate`): never
another exception, and never a hang (each input is small).

Pinned examples are inputs that once failed (a raw exception, a decoder panic)."""

from __future__ import annotations

import gzip
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
from hypothesis import example, given
from hypothesis import strategies as st

from featureplane.errors import OffGridError, SourceFormatError, UnknownSymbolError
from featureplane.events import validate
from featureplane.instruments import InstrumentSpec
from featureplane.sources.databento import read_databento
from featureplane.sources.hftbacktest.reader import read_hftbacktest_events
from featureplane.sources.lobster import read_lobster
from featureplane.sources.tardis import read_tardis
from tests.support.fuzz import FUZZ, flip
from tests.unit.sources.test_databento_source import mbo, write_dbn
from tests.unit.sources.test_lobster_source import BOOK_ROWS, MESSAGES, MSG_NAME, OB_NAME
from tests.unit.sources.test_tardis_source import BOOK, BOOK_HEADER, TRADES, TRADES_HEADER

BYTES = st.sampled_from(b',.-0123456789\n\r \x00\xff\xc3e"')


@st.composite
def damaged_rows(draw: st.DrawFn, rows: list[str]) -> bytes:
    """`rows` as file bytes after a few edits: a byte changed, a row dropped, doubled or cut."""
    out = [r.encode() for r in rows]
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(out) - 1)) if out else 0
        edit = draw(st.sampled_from(["byte", "byte", "drop", "double", "cut", "column"]))
        if not out:
            break
        if edit == "byte":
            out[i] = flip(out[i], draw(st.integers(0, 200)), draw(BYTES))
        elif edit == "drop":
            del out[i]
        elif edit == "double":
            out.insert(i, out[i])
        elif edit == "cut":
            out[i] = out[i][: draw(st.integers(0, len(out[i])))]
        else:
            out[i] += b"," + draw(st.sampled_from([b"", b"7", b"NITE", b"x,y"]))
    return b"".join(r + b"\n" for r in out)


def _ok(events: np.ndarray, n_symbols: int) -> None:
    if len(events):
        validate(events, n_symbols)


# ----- LOBSTER --------------------------------------------------------------------------------


@FUZZ
@given(
    messages=damaged_rows(MESSAGES),
    book=damaged_rows(BOOK_ROWS),
    archive=st.integers(0, 3),
    cut=st.integers(0, 10_000),
)
@example(  # a zip cut inside its member: once a raw BadZipFile / zlib.error
    messages="".join(m + "\n" for m in MESSAGES).encode(),
    book="".join(r + "\n" for r in BOOK_ROWS).encode(),
    archive=0,
    cut=300,
)
@example(  # a time past int64 ns (found by the long run): once a raw OverflowError
    messages=b"342000000000001,1,11,50,1000000,1\n34200.5,4,5,100,1000200,-1\n",
    book=b"",
    archive=1,
    cut=0,
)
def test_lobster(messages: bytes, book: bytes, archive: int, cut: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        msg, ob = Path(tmp) / MSG_NAME, Path(tmp) / OB_NAME
        msg.write_bytes(messages)
        ob.write_bytes(book)
        target: list[Path] = [msg, ob]
        if archive == 0:  # in a zip, maybe cut short
            path = Path(tmp) / "TEST.zip"
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                zf.write(msg, msg.name)
                zf.write(ob, ob.name)
            data = path.read_bytes()
            path.write_bytes(data[: cut % (len(data) + 1)])
            target = [path]
        try:
            if archive == 1:  # the message file alone, asked for
                replay = read_lobster(msg, messages_only=True)
            else:
                replay = read_lobster(*target)  # type: ignore[arg-type]
        except SourceFormatError:
            return
        _ok(replay.events, len(replay.symbols))


# ----- tardis ---------------------------------------------------------------------------------


@FUZZ
@given(
    book=damaged_rows([BOOK_HEADER, *BOOK]),
    trades=damaged_rows([TRADES_HEADER, *TRADES]),
    errors=st.sampled_from(["skip", "raise"]),
    gz=st.integers(0, 2),
    cut=st.integers(0, 10_000),
)
def test_tardis(book: bytes, trades: bytes, errors: str, gz: int, cut: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, data in (("book", book), ("trades", trades)):
            if gz:  # gzip, maybe cut short
                blob = gzip.compress(data)
                data = blob[: cut % (len(blob) + 1)] if gz == 2 else blob
            path = Path(tmp) / f"{name}.csv{'.gz' if gz else ''}"
            path.write_bytes(data)
            paths.append(path)
        try:
            replay = read_tardis(paths, errors=errors)  # type: ignore[arg-type]
        except SourceFormatError:
            return
        _ok(replay.events, len(replay.symbols))


# ----- Databento ------------------------------------------------------------------------------


def _dbn_file() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        records = [mbo("A", "B", -i, 5, i + 1, seq=i + 1) for i in range(6)]
        records += [mbo("C", "B", 0, 5, 1, seq=7), mbo("T", "A", 1, 2, 0, seq=8)]
        return write_dbn(Path(tmp) / "f.dbn", records).read_bytes()


DBN = _dbn_file()


@FUZZ
@given(
    edits=st.lists(st.tuples(st.integers(0, len(DBN) - 1), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, len(DBN)),
    zstd=st.booleans(),
    errors=st.sampled_from(["skip", "raise"]),
)
@example(edits=[(60, 0xFF)], cut=len(DBN), zstd=False, errors="raise")  # once a decoder panic
@example(edits=[(0, 0)], cut=len(DBN), zstd=True, errors="raise")  # a zeroed header
@example(edits=[(150, 0)], cut=206, zstd=False, errors="skip")  # a symbol renamed: no tick
@example(edits=[(253, 128)], cut=262, zstd=False, errors="skip")  # ts_recv past int64
def test_databento(edits: list[tuple[int, int]], cut: int, zstd: bool, errors: str) -> None:
    data = DBN
    for at, byte in edits:
        data = flip(data, at, byte)
    if zstd:  # compressed first, then cut: a frame cut short
        sink = pa.BufferOutputStream()
        with pa.CompressedOutputStream(sink, "zstd") as out:
            out.write(data)
        blob = sink.getvalue().to_pybytes()
        data = blob[: cut * len(blob) // len(DBN)]
    else:
        data = data[:cut]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("f.dbn.zst" if zstd else "f.dbn")
        path.write_bytes(data)
        try:
            replay = read_databento(path, errors=errors)  # type: ignore[arg-type]
        except (SourceFormatError, UnknownSymbolError):  # the latter: a symbol without a tick
            return
        _ok(replay.events, len(replay.symbols))


# ----- hftbacktest arrays ---------------------------------------------------------------------

SPEC = InstrumentSpec("X", "0.1", "0.001")
EV_FLAGS = [1 << 31, 1 << 30, (1 << 31) | (1 << 30), 0]
SIDES = [0, 1 << 29, 1 << 28, (1 << 29) | (1 << 28)]
PRICES = [100.0, 100.05, 0.0, -100.0, np.nan, np.inf, 1e300, 2.0**48 * 0.1]
SIZES = [0.001, 0.0, -0.001, 1.0005, np.nan, 1e12, 123.456]


@st.composite
def event_arrays(draw: st.DrawFn) -> np.ndarray:
    from hftbacktest.types import event_dtype

    n = draw(st.integers(0, 12))
    out = np.zeros(n, dtype=event_dtype)
    ts = 1_700_000_000_000_000_000
    for i in range(n):
        kind = draw(st.sampled_from([1, 1, 2, 3, 4, 7, 100]))
        out["ev"][i] = kind | draw(st.sampled_from(EV_FLAGS)) | draw(st.sampled_from(SIDES))
        ts += draw(st.integers(-5, 1000))
        out["local_ts"][i] = ts
        out["exch_ts"][i] = ts - draw(st.integers(-5, 100))
        out["px"][i] = draw(st.sampled_from(PRICES))
        out["qty"][i] = draw(st.sampled_from(SIZES))
    return out


@FUZZ
@given(array=event_arrays(), as_file=st.integers(0, 2), cut=st.integers(0, 4096))
def test_hftbacktest(array: np.ndarray, as_file: int, cut: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source: object = array
        if as_file:
            path = Path(tmp) / "x.npz"
            np.savez(path, data=array)
            if as_file == 2:  # cut short
                blob = path.read_bytes()
                path.write_bytes(blob[: cut % (len(blob) + 1)])
            source = path
        try:
            replay = read_hftbacktest_events(source, SPEC)  # type: ignore[arg-type]
        except (SourceFormatError, OffGridError):
            return
        _ok(replay.events, len(replay.symbols))
