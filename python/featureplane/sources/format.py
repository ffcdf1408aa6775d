"""The reader contract every venue implements: a `SourceFormat` (sniff, plan, open).

A venue is one folder under `featureplane.sources` whose `format.py` defines `FORMAT`:

- `sniff(peek)`: does the start of a file (`Peek`: container and first decompressed bytes) look
  like this venue's data? Cheap, and never needs the venue's optional decoder package;
- `plan(files, options)`: group the venue's files into `Chain`s, each replayed by one engine;
- `open(files, options)`: read one chain (or, where `merges`, several chains as one stream)
  into event chunks, a `SymbolTable` and the reader's stats.

`SourceOptions` are the same for every venue, with the same defaults. This module imports
nothing of a venue: venues import it, `featureplane.sources.registry` imports the venues.
"""

from __future__ import annotations

import csv
import importlib
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from featureplane.errors import SourceFormatError

if TYPE_CHECKING:
    import numpy as np

    from featureplane.instruments import InstrumentSpec, SymbolTable

ErrorMode = Literal["skip", "raise"]
ERROR_MODES: tuple[ErrorMode, ...] = ("skip", "raise")

HEAD_BYTES = 1 << 16
"""Raw bytes read from the start of a file to sniff it."""
PEEK_TEXT_BYTES = 1 << 18
"""Decompressed bytes looked at (a Binance REST snapshot line can be ~100 kB)."""

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

DATA_SUFFIXES: tuple[str, ...] = (".gz", ".zip", ".csv", ".dbn", ".zst", ".npz")
"""Files a directory contributes (sorted by name); other files must be named explicitly."""


# ----- what a sniffer sees --------------------------------------------------------------------


@dataclass(frozen=True)
class Peek:
    """The start of a file: its container and the first decompressed bytes."""

    path: Path
    container: str
    """"gzip", "zip", "zstd" or "plain"."""
    data: bytes
    """The first bytes of the content (decompressed), b"" for a zip."""
    note: str = ""
    """Why the content could not be read, when it could not."""

    def lines(self, limit: int = 5) -> list[bytes]:
        """Up to `limit` non-empty lines of the content; the last one may be cut short."""
        return [ln.rstrip(b"\r") for ln in self.data.split(b"\n", limit)[:limit] if ln.strip()]

    def csv_row(self) -> list[str]:
        """The first line as CSV fields ([] when it is not text)."""
        lines = self.lines(1)
        if not lines:
            return []
        try:
            return next(csv.reader([lines[0].decode("utf-8-sig")]), [])
        except (UnicodeDecodeError, csv.Error):
            return []

    def describe(self) -> str:
        """What the file looks like, for an error message."""
        if self.container == "zip":
            return "a zip without a known data member"
        start = self.data[:40].decode("utf-8", "replace").split("\n")[0]
        what = {"plain": "a file", "gzip": "gzip data", "zstd": "zstd data"}[self.container]
        return f"{what} starting {start!r}" if start.isprintable() else f"{what} of binary content"


def peek(path: Path) -> Peek:
    """Read the start of `path` and decompress what of it a sniffer needs."""
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
    if head.startswith(GZIP_MAGIC):
        try:
            # wbits 47: a gzip or zlib header; only the head is fed, so only a prefix comes out.
            data = zlib.decompressobj(47).decompress(head, PEEK_TEXT_BYTES)
        except zlib.error as exc:
            return Peek(path, "gzip", b"", f"corrupt gzip stream ({exc})")
        return Peek(path, "gzip", data, "" if data else "gzip stream ends before any data")
    if head.startswith(ZIP_MAGIC):
        return Peek(path, "zip", b"")
    if head.startswith(ZSTD_MAGIC):
        import pyarrow as pa

        try:
            with pa.CompressedInputStream(pa.OSFile(str(path)), "zstd") as stream:
                data = stream.read(64)
        except (OSError, pa.ArrowException) as exc:
            return Peek(path, "zstd", b"", f"corrupt zstd stream ({exc})")
        return Peek(path, "zstd", data)
    return Peek(path, "plain", head)


# ----- options, chains and opened sources -----------------------------------------------------


@dataclass(frozen=True)
class SourceOptions:
    """Reader options, the same for every venue (picklable, sent to workers).

    A venue ignores what does not apply to it, as documented per field.
    """

    symbols: tuple[str, ...] | None = None
    """Read only these symbols (binance, tardis, databento; LOBSTER: its ticker, or no chain)."""
    market: str | None = None
    """binance: "usdm" or "spot" for every file (default detected)."""
    errors: ErrorMode | None = None
    """"skip" (count bad input, with reasons, and go on) or "raise"; None: the venue's default
    (`SourceFormat.default_errors`: binance skips, the order-level venues raise, since a lost
    message there corrupts the book for good)."""
    on_missing_snapshot: str = "raise"
    """binance: a symbol with depth diffs and no snapshot: "raise" or "skip"."""
    chunk_rows: int | None = None
    """binance: event rows per chunk (default the reader's); the order-level venues cut their
    chunks by venue messages (`chunk_messages` of their readers)."""
    parser: str = "auto"
    """binance: the line parser: "auto" (Rust where built), "rust" or "python"."""
    instruments: tuple[InstrumentSpec, ...] | None = None
    """Tick and lot per symbol, overriding what a source infers or has built in; needed by
    hftbacktest arrays, which carry none (one instrument, or the one named like the file)."""
    messages_only: bool = False
    """lobster: read a message file without its orderbook file (refused otherwise): the book
    is rebuilt from the messages alone, untrusted (depth 0: no book feature is ready)."""


@dataclass(frozen=True)
class Chain:
    """Files replayed in order by one engine: the book carries across them.

    `name` is unique within a plan and names the chain's feature file (`name + ".parquet"`).
    """

    format: str
    name: str
    files: tuple[str, ...]
    symbols: tuple[str, ...] = ()
    """Symbols the planner saw (empty: not known before reading)."""


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

    def summary(self) -> str:
        fn = getattr(self.stats, "summary", None)
        return str(fn()) if callable(fn) else ""


Sniffer = Callable[[Peek], bool]
Planner = Callable[[Sequence[str], SourceOptions], list[Chain]]
Opener = Callable[[Sequence[str], SourceOptions], OpenedSource]


def each_file(fmt: str) -> Planner:
    """The planner of a venue whose every file is a chain of its own."""

    def plan(files: Sequence[str], options: SourceOptions) -> list[Chain]:
        return [Chain(fmt, f"{fmt}-{file_stem(f)}", (f,)) for f in files]

    return plan


@dataclass(frozen=True)
class SourceFormat:
    """A venue's entry in `featureplane.sources.registry.REGISTRY`."""

    name: str
    sniff: Sniffer
    open: Opener
    plan: Planner
    default_errors: ErrorMode = "raise"
    merges: bool = False
    """`open` takes the files of several chains and merges them into one local-time stream."""

    def errors(self, options: SourceOptions) -> ErrorMode:
        """The error mode a read uses: the option, else this venue's default."""
        return options.errors or self.default_errors


def file_stem(path: str) -> str:
    """A file's name without its data suffixes (`btcusdt_20240808.gz` -> `btcusdt_20240808`)."""
    name = Path(path).name
    for suffix in (".gz", ".zst", ".zip", ".csv", ".dbn", ".npz"):
        name = name.removesuffix(suffix)
    return name


def one_file(fmt: str, files: Sequence[str]) -> str:
    """The single file of a venue whose chains are one file each."""
    if len(files) != 1:
        raise SourceFormatError(files[0], None, f"a {fmt} chain is one file, got {len(files)}")
    return files[0]


def reader_module(fmt: str, module: str, path: str) -> Any:
    """A venue's reader module, which may miss its decoder package in this installation."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        what = (
            f"the {fmt} source ({module}) is not in this build"
            if exc.name == module
            else f"the {fmt} source needs the {exc.name} package: pip install 'featureplane[{fmt}]'"
        )
        raise SourceFormatError(path, None, what) from None
