"""Input formats: detect a recorded file's format from its content, and open any of them.

`detect_format(path)` sniffs a file (magic bytes, then the first lines or archive members) and
names its format; the file name is only a hint. `REGISTRY` maps each format to a `SourceFormat`
whose `open(files, options)` gives event chunks, a `SymbolTable` and a stats object, so replay
code never names a source. `featureplane.chains` groups files into chains and
`featureplane.parallel` replays them; docs/research-replay.md has the rules.
"""

from __future__ import annotations

import csv
import importlib
import json
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from os import PathLike, fspath
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from featureplane.errors import SourceFormatError

if TYPE_CHECKING:
    from featureplane.instruments import InstrumentSpec, SymbolTable

FORMATS: tuple[str, ...] = ("binance", "lobster", "tardis", "databento", "hftbacktest")
"""Every format `detect_format` can name, in the order it tries them."""

HEAD_BYTES = 1 << 16
"""Raw bytes read from the start of a file to sniff it."""
PEEK_TEXT_BYTES = 1 << 18
"""Decompressed bytes looked at (a Binance REST snapshot line can be ~100 kB)."""

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DBN_MAGIC = b"DBN"

HFTBACKTEST_FIELDS = ("ev", "exch_ts", "local_ts", "px", "qty", "order_id", "ival", "fval")
"""Field names of `hftbacktest.types.event_dtype` (2.4); checked without importing it."""

# The start of a line too long for the peek (a REST snapshot of 1000 levels a side).
_BINANCE_LINE = re.compile(rb'^\d+ \{\s*"(stream|lastUpdateId)"\s*:')
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_LOBSTER_NAME = re.compile(r"_(message|orderbook)_\d+\.csv$")


# ----- detection ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Peek:
    """The start of a file: its container and the first decompressed bytes."""

    path: Path
    container: str
    """"gzip", "zip", "zstd" or "plain"."""
    data: bytes
    """The first bytes of the content (decompressed), b"" for a zip."""
    note: str = ""
    """Why the content could not be read, when it could not."""


def _peek(path: Path) -> _Peek:
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
    if head.startswith(GZIP_MAGIC):
        try:
            # wbits 47: a gzip or zlib header; only the head is fed, so only a prefix comes out.
            data = zlib.decompressobj(47).decompress(head, PEEK_TEXT_BYTES)
        except zlib.error as exc:
            return _Peek(path, "gzip", b"", f"corrupt gzip stream ({exc})")
        return _Peek(path, "gzip", data, "" if data else "gzip stream ends before any data")
    if head.startswith(ZIP_MAGIC):
        return _Peek(path, "zip", b"")
    if head.startswith(ZSTD_MAGIC):
        import pyarrow as pa

        try:
            with pa.CompressedInputStream(pa.OSFile(str(path)), "zstd") as stream:
                data = stream.read(64)
        except (OSError, pa.ArrowException) as exc:
            return _Peek(path, "zstd", b"", f"corrupt zstd stream ({exc})")
        return _Peek(path, "zstd", data)
    return _Peek(path, "plain", head)


def _lines(data: bytes, limit: int = 5) -> list[bytes]:
    """Up to `limit` non-empty lines of `data`; the last one may be cut short."""
    return [ln.rstrip(b"\r") for ln in data.split(b"\n", limit)[:limit] if ln.strip()]


def _is_binance(peek: _Peek) -> bool:
    for raw in _lines(peek.data):
        if _BINANCE_LINE.match(raw):
            return True
        ts, _, rest = raw.partition(b" ")
        try:
            obj = json.loads(rest)
        except ValueError:
            continue
        if ts.isdigit() and isinstance(obj, dict) and _binance_keys(obj.keys()):
            return True
    return False


def _binance_keys(keys: Any) -> bool:
    """A combined-stream envelope, a REST snapshot, a raw event or a raw bookTicker."""
    return (
        {"stream", "data"} <= keys
        or "lastUpdateId" in keys
        or {"e", "s"} <= keys
        or {"u", "s", "b", "a"} <= keys
    )


def _csv_row(peek: _Peek) -> list[str]:
    lines = _lines(peek.data, 1)
    if not lines:
        return []
    try:
        return next(csv.reader([lines[0].decode("utf-8-sig")]), [])
    except (UnicodeDecodeError, csv.Error):
        return []


def _is_tardis(peek: _Peek) -> bool:
    from featureplane.sources.tardis_parse import HEADERS

    return _csv_row(peek) in HEADERS.values()


def _is_lobster(peek: _Peek) -> bool:
    if peek.container == "zip":
        from featureplane.sources.lobster_format import parse_lobster_name

        with zipfile.ZipFile(peek.path) as zf:
            names = [parse_lobster_name(n) for n in zf.namelist()]
        return any(n is not None and n.kind == "message" for n in names)
    row = _csv_row(peek)
    numeric = bool(row) and all(_NUMBER.match(c.strip()) for c in row)
    # A message file has 6 columns; an orderbook file 4 per level, paired with its message file.
    named = _LOBSTER_NAME.search(peek.path.name.removesuffix(".gz")) is not None
    return numeric and (len(row) == 6 or (named and len(row) % 4 == 0))


def _is_databento(peek: _Peek) -> bool:
    return peek.data.startswith(DBN_MAGIC)


def _is_hftbacktest(peek: _Peek) -> bool:
    if peek.container != "zip":
        return False
    with zipfile.ZipFile(peek.path) as zf:
        if "data.npy" not in zf.namelist():
            return False
        with zf.open("data.npy") as f:
            # Only the .npy header: the dtype tells, the rows need not be read. (numpy's format
            # helpers are untyped, hence the Any.)
            npy: Any = np.lib.format
            version = npy.read_magic(f)
            reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            dtype: np.dtype = reader(f)[2]
    return tuple(dtype.names or ()) == HFTBACKTEST_FIELDS


_SNIFFERS: dict[str, Callable[[_Peek], bool]] = {
    "binance": _is_binance,
    "lobster": _is_lobster,
    "tardis": _is_tardis,
    "databento": _is_databento,
    "hftbacktest": _is_hftbacktest,
}


def detect_format(path: str | PathLike[str]) -> str:
    """The format of a recorded file, from its content.

    binance: `<int> <json>` lines (gzip or plain) with Binance stream or REST-snapshot keys;
    lobster: a zip with a `*_message_N.csv` member, or a CSV of 6 numeric columns (a message
    file; a `*_orderbook_N.csv` of 4N numeric columns too); tardis: an `incremental_book_L2` or
    `trades` CSV header (gzip or plain); databento: `DBN` magic, plain or zstd; hftbacktest: an
    `.npz` whose `data` array has hftbacktest's event dtype.

    Raises
    ------
    SourceFormatError
        None of the formats matches; names the file, the formats tried and what it looks like.
    FileNotFoundError
        No such file.
    """
    p = Path(fspath(path))
    peek = _peek(p)
    try:
        for name, sniff in _SNIFFERS.items():
            if sniff(peek):
                return name
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise SourceFormatError(str(p), None, f"unreadable {peek.container} file ({exc})") from None
    seen = peek.note or _describe(peek)
    tried = ", ".join(_SNIFFERS)
    raise SourceFormatError(str(p), None, f"unknown format (tried {tried}): {seen}")


def _describe(peek: _Peek) -> str:
    if peek.container == "zip":
        return "a zip without a LOBSTER message file or an hftbacktest data array"
    start = peek.data[:40].decode("utf-8", "replace").split("\n")[0]
    what = {"plain": "a file", "gzip": "gzip data", "zstd": "zstd data"}[peek.container]
    return f"{what} starting {start!r}" if start.isprintable() else f"{what} of binary content"


# ----- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceOptions:
    """Reader options, each used by the formats it applies to (picklable, sent to workers)."""

    symbols: tuple[str, ...] | None = None
    """Read only these symbols (binance, tardis, databento; LOBSTER: its ticker, or no chain)."""
    market: str | None = None
    """binance: "usdm" or "spot" for every file (default detected)."""
    errors: str | None = None
    """"skip" (count bad input and go on) or "raise"; None: each source's own default (binance
    skips, tardis and databento raise: a lost MBO record corrupts the book for good)."""
    on_missing_snapshot: str = "raise"
    """binance: a symbol with depth diffs and no snapshot: "raise" or "skip"."""
    chunk_rows: int | None = None
    """binance: event rows per chunk (default the source's)."""
    parser: str = "auto"
    """binance: the line parser: "auto" (Rust where built), "rust" or "python"."""
    instruments: tuple[InstrumentSpec, ...] | None = None
    """Tick and lot per symbol, overriding what a source infers or has built in; needed by
    hftbacktest arrays, which carry none (one instrument, or the one named like the file)."""


@dataclass
class OpenedSource:
    """A chain opened for reading: iterate `chunks` once; `stats` is final after that."""

    format: str
    chunks: Iterable[np.ndarray]
    symbols: SymbolTable
    stats: Any
    files: list[str]

    def __iter__(self) -> Any:
        return iter(self.chunks)

    def stats_json(self) -> Any:
        """The stats as JSON values with every input path reduced to its base name, so the
        feature file's bytes do not depend on where the inputs were read from."""
        return portable(self.stats, self.files)

    def summary(self) -> str:
        fn = getattr(self.stats, "summary", None)
        return str(fn()) if callable(fn) else ""


Opener = Callable[[Sequence[str], SourceOptions], OpenedSource]


@dataclass(frozen=True)
class SourceFormat:
    """A format's entry in `REGISTRY`."""

    name: str
    open: Opener
    merges: bool = False
    """`open` takes the files of several chains and merges them into one local-time stream."""


def portable(obj: Any, paths: Sequence[str]) -> Any:
    """`obj` as JSON values (dates and decimals as strings), paths reduced to base names."""
    from featureplane.featurefile import jsonable  # pyarrow: not needed to detect a format

    text = json.dumps(jsonable(obj), sort_keys=True, default=str)
    for p in sorted(set(paths), key=len, reverse=True):
        text = text.replace(json.dumps(p)[1:-1], json.dumps(Path(p).name)[1:-1])
    return json.loads(text)


def open_source(
    fmt: str, files: Sequence[str | PathLike[str]], options: SourceOptions | None = None
) -> OpenedSource:
    """Open files of one format (a chain, or several chains of a `merges` format)."""
    if fmt not in REGISTRY:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[fmt].open([fspath(f) for f in files], options or SourceOptions())


def register_format(source: SourceFormat, sniff: Callable[[Path], bool] | None = None) -> None:
    """Add or replace a format (a sniffer makes `detect_format` try it, after the built-ins)."""
    REGISTRY[source.name] = source
    if sniff is not None:
        _SNIFFERS[source.name] = lambda peek: sniff(peek.path)


def _source_module(fmt: str, module: str, path: str) -> Any:
    """A source module that may be missing from this build, or miss its decoder package."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        what = (
            f"the {fmt} source ({module}) is not in this build"
            if exc.name == module
            else f"the {fmt} source needs the {exc.name} package: pip install it"
        )
        raise SourceFormatError(path, None, what) from None


def _one_file(fmt: str, files: Sequence[str]) -> str:
    if len(files) != 1:
        raise SourceFormatError(files[0], None, f"a {fmt} chain is one file, got {len(files)}")
    return files[0]


def _open_databento(files: Sequence[str], options: SourceOptions) -> OpenedSource:
    path = _one_file("databento", files)
    mod = _source_module("databento", "featureplane.sources.databento", path)
    kwargs: dict[str, Any] = {"symbols": options.symbols, "instruments": options.instruments}
    if options.errors is not None:
        kwargs["errors"] = options.errors
    reader = mod.iter_databento(path, **kwargs)
    return OpenedSource("databento", reader, reader.symbols, reader.stats, [path])


def _open_hftbacktest(files: Sequence[str], options: SourceOptions) -> OpenedSource:
    path = _one_file("hftbacktest", files)
    mod = _source_module("hftbacktest", "featureplane.sources.hftbacktest_events", path)
    given = options.instruments or ()
    named = [s for s in given if s.symbol == file_stem(path)]
    if len(given) != 1 and len(named) != 1:
        raise SourceFormatError(
            path,
            None,
            "an hftbacktest array carries no tick and lot: give one instrument "
            "(--instrument SYMBOL:TICK:LOT), or one named like the file",
        )
    # The arrays are in memory already (np.load): one chunk, the source's own read.
    replay = mod.read_hftbacktest_events(path, given[0] if len(given) == 1 else named[0])
    chunks = [replay.events] if len(replay.events) else []
    return OpenedSource("hftbacktest", chunks, replay.symbols, replay.stats, [path])


def file_stem(path: str) -> str:
    """A file's name without its data suffixes (`btcusdt_20240808.gz` -> `btcusdt_20240808`)."""
    name = Path(path).name
    for suffix in (".gz", ".zst", ".zip", ".csv", ".dbn", ".npz"):
        name = name.removesuffix(suffix)
    return name


def _open_binance(files: Sequence[str], options: SourceOptions) -> OpenedSource:
    from featureplane.sources.binance import DEFAULT_CHUNK_ROWS, iter_binance

    # Literal-typed arguments: the reader checks the strings and names a bad one.
    market: Any = options.market
    errors: Any = options.errors or "skip"
    on_missing: Any = options.on_missing_snapshot
    parser: Any = options.parser
    reader = iter_binance(
        files,
        symbols=options.symbols,
        market=market,
        instruments=options.instruments,
        errors=errors,
        on_missing_snapshot=on_missing,
        chunk_rows=options.chunk_rows or DEFAULT_CHUNK_ROWS,
        parser=parser,
    )
    if not len(reader.symbols):
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(reader.stats.skipped.items()))
        raise SourceFormatError(
            files[0] if len(files) == 1 else f"{len(files)} files",
            None,
            "no Binance stream found" + (f" (skipped: {skipped})" if skipped else ""),
        )
    return OpenedSource("binance", reader, reader.symbols, reader.stats, list(files))


def _open_lobster(files: Sequence[str], options: SourceOptions) -> OpenedSource:
    from featureplane.sources.lobster import iter_lobster, parse_lobster_name

    # A chain is a zip, a message CSV, or a message CSV and its orderbook CSV (any order).
    kinds = {getattr(parse_lobster_name(_csv_name(f)), "kind", "message"): f for f in files}
    if len(files) > 2 or len(kinds) != len(files) or "message" not in kinds:
        raise SourceFormatError(
            files[0], None, f"a LOBSTER chain is one message file and its orderbook file: {files}"
        )
    message: Any = kinds["message"]
    orderbook: Any = kinds.get("orderbook")
    if message.endswith(".zip"):
        from featureplane.sources.lobster import lobster_zip_members

        message, orderbook = lobster_zip_members(message)
    # str() of a zip member is "archive.zip/member.csv": its name is the member's.
    ticker = getattr(parse_lobster_name(Path(str(message)).name), "ticker", None)
    given = [s for s in options.instruments or () if s.symbol == ticker]
    reader = iter_lobster(message, orderbook, instrument=given[0] if given else None)
    return OpenedSource("lobster", reader, reader.symbols, reader.stats, list(files))


def _csv_name(path: str) -> str:
    return Path(path).name.removesuffix(".gz")


def _open_tardis(files: Sequence[str], options: SourceOptions) -> OpenedSource:
    from featureplane.sources.tardis import iter_tardis

    errors: Any = options.errors or "raise"  # checked by the reader
    reader = iter_tardis(
        files, symbols=options.symbols, errors=errors, instruments=options.instruments
    )
    return OpenedSource("tardis", reader, reader.symbols, reader.stats, list(files))


REGISTRY: dict[str, SourceFormat] = {
    "binance": SourceFormat("binance", _open_binance, merges=True),
    "lobster": SourceFormat("lobster", _open_lobster),
    "tardis": SourceFormat("tardis", _open_tardis, merges=True),
    "databento": SourceFormat("databento", _open_databento),
    "hftbacktest": SourceFormat("hftbacktest", _open_hftbacktest),
}
"""Format name -> how to open it (`featureplane.chains.PLANNERS` says how files chain)."""
