"""One symbol's chain read by the Rust parser (`featureplane._core.BinanceChain`).

`RustSymbolChain` has the interface of the reference `SymbolChain` and yields the same chunks,
counts and skip records; everything around the parse stays shared: the decompression
(`iter_text_blocks`), probing, instruments, the merge of symbols and `BinanceStats`.

The Rust side decides every skip and its reason; the text of a skip's detail is formed by
re-reading that one line with the reference (`SymbolChain._line`), so `stats.examples` match
the reference's character for character. If the reference does not refuse the line for the
same reason, the read stops with `ParserMismatchError` rather than go on with two parsers that
disagree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from featureplane import _rust
from featureplane.errors import (
    ParserMismatchError,
    SourceFormatError,
    StreamDamageError,
)
from featureplane.events import EVENT_DTYPE
from featureplane.instruments import Grid, InstrumentSpec
from featureplane.sources._chunks import BOOK_TICKER_DTYPE, Chunk
from featureplane.sources._common import MAX_EXAMPLES, Reporter
from featureplane.sources._lines import iter_text_blocks
from featureplane.sources._read_ahead import ReadAhead
from featureplane.sources.binance.parse import GridCache
from featureplane.sources.binance.stats import (
    BinanceStats,
    FileInfo,
    SymbolSync,
)
from featureplane.sources.binance.sync import (
    SymbolChain,
    check_grid,
    count_chunk,
    count_off_grid,
    report_unsynced,
)

Parser = Literal["auto", "rust", "python"]
PARSERS = ("auto", "rust", "python")

_CHUNK_FULL = 1
TEXT_BLOCK_BYTES = 1 << 18
"""Compressed bytes per block handed to the parser: small enough for decompression and
parsing to overlap over most of a file."""
_U64_MAX = (1 << 64) - 1
_U32_MAX = (1 << 32) - 1
# Counters the Rust chain keeps cumulatively: (its name, SymbolSync field or None).
_COUNTS = (
    ("diffs_read", "diffs_read"),
    ("snapshots_read", None),
    ("buffered_diffs", "buffered_diffs"),
    ("stale_dropped", "stale_dropped"),
    ("snapshots", "snapshots"),
    ("chain_gaps", "chain_gaps"),
    ("chain_resets", "chain_resets"),
    ("seq_gaps", "seq_gaps"),
    ("empty_diffs_folded", "empty_diffs_folded"),
)
_FACTS = ("last_update_id", "first_U", "first_u", "straddled", "last_u")


def rust_parser_available() -> bool:
    """Whether the built extension has the Rust Binance parser."""
    return _rust.rust_available("parser")


def _grid_args(grid: Grid) -> tuple[int, int] | None:
    """`(units, exp)` of a grid for the Rust parser, or None when they do not fit its types."""
    if 0 < grid.units <= _U64_MAX and 0 <= grid.exp <= _U32_MAX:
        return grid.units, grid.exp
    return None


def rust_supports(spec: InstrumentSpec) -> bool:
    """Whether the Rust parser can take an instrument (any real one can): grids within its
    integer types, and an ASCII symbol. Stream names are matched case-insensitively, and the
    case mapping of non-ASCII letters follows each language's Unicode version: only ASCII is
    certain to map the same way in Rust and in the reference."""
    return (
        spec.symbol.isascii()
        and _grid_args(spec.price_grid) is not None
        and _grid_args(spec.size_grid) is not None
    )


def use_rust(parser: str, spec: InstrumentSpec, source: str = "<binance>") -> bool:
    """Which parser reads a symbol: "rust", "python", or "auto" (Rust where it is built and
    takes the instrument, see `rust_supports`). `source` names the symbol's file in errors.

    Raises
    ------
    ValueError
        An unknown `parser`.
    SourceFormatError
        "rust" for an instrument it does not take: the files name a symbol that is not ASCII,
        or strings whose precision gives a grid beyond its integers (a `ValueError` too).
    BackendUnavailableError
        "rust" without the extension's parser.
    """
    if parser not in PARSERS:
        raise ValueError(f"parser must be 'auto', 'rust' or 'python', got {parser!r}")
    if parser == "auto" and not rust_supports(spec):
        return False
    # The one rule for a missing Rust build, as for the engine (`featureplane._rust`).
    if not _rust.use_rust(parser, "parser"):
        return False
    if not rust_supports(spec):
        # What the files hold decides it, so it is the source's error, not the caller's.
        raise SourceFormatError(
            source,
            None,
            f"{spec.symbol!r} (tick {spec.tick_size}, lot {spec.lot_size}): a non-ASCII symbol "
            "or a grid beyond the Rust parser's integers; use parser='python'",
        )
    return True


class _Capture(Reporter):
    """Keeps the last skip instead of counting it (the reference re-reading one line)."""

    def __init__(self) -> None:
        super().__init__(BinanceStats(), "skip")
        self.got: tuple[str, str] | None = None

    def skip(self, reason: str, path: str, line: int | None, detail: str) -> None:
        self.got = (reason, detail)

    def warn(self, reason: str, path: str, line: int | None, detail: str) -> None:
        pass


class RustSymbolChain:
    """Reads the files of one symbol in chain order with the Rust parser; yields `Chunk`s.

    Takes the arguments of `SymbolChain` and fills `stats` the same way.
    """

    def __init__(
        self,
        *,
        symbol: str,
        symbol_id: int,
        spec: InstrumentSpec,
        usdm: bool,
        files: list[FileInfo],
        stats: BinanceStats,
        reporter: Reporter,
        on_missing_snapshot: str,
        chunk_rows: int,
    ) -> None:
        from featureplane import _core

        px_grid, qty_grid = _grid_args(spec.price_grid), _grid_args(spec.size_grid)
        if px_grid is None or qty_grid is None:
            raise ValueError(f"{symbol}: grids beyond the Rust parser's integer types")
        self.symbol = symbol
        self._symbol_id = symbol_id
        self._spec = spec
        self._usdm = usdm
        self._files = files
        self._stats = stats
        self._reporter = reporter
        self._on_missing_snapshot = on_missing_snapshot
        self.sync = stats.sync[symbol]
        self._core = _core.BinanceChain(
            symbol=symbol,
            symbol_id=symbol_id,
            usdm=usdm,
            px_grid=px_grid,
            qty_grid=qty_grid,
            chunk_rows=chunk_rows,
            stop_on_skip=reporter.raise_errors,
            # The reference's caches: the rare decimal forms the Rust side leaves to Python.
            px_cache=GridCache(spec.price_grid, "price", positive=True),
            qty_cache=GridCache(spec.size_grid, "size", positive=False),
        )
        self._applied: dict[str, int] = dict.fromkeys((name for name, _ in _COUNTS), 0)
        self._ts_scale = 1
        self._reference: SymbolChain | None = None

    # ----- driving ------------------------------------------------------------------------

    def chunks(self) -> Iterator[Chunk]:
        core, stats = self._core, self._stats
        for pos, info in enumerate(self._files):
            info.chain_pos = pos
            core.start_file(pos, info.local_ts_scale)
            self._ts_scale = info.local_ts_scale
            try:
                # The next block inflates in a thread while this one is parsed (zlib, ISA-L
                # and the Rust parser all release the GIL).
                texts = iter_text_blocks(info.path, TEXT_BLOCK_BYTES)
                with ReadAhead(texts, name="inflate") as blocks:
                    for block in blocks:
                        start = 0
                        while start < len(block):
                            try:
                                start, status = core.feed(block, start)
                            finally:  # skips counted before a failure stay counted
                                self._notes(block, info.path)
                            if status == _CHUNK_FULL:
                                yield from self._flush()
            except StreamDamageError as damage:
                info.truncated = True
                stats.truncated_files.append(info.path)
                self._reporter.skip(damage.reason, info.path, core.lines + 1, damage.detail)
            finally:
                info.lines = core.lines
                stats.lines_read += core.lines
                self._count()
        self._finish()
        yield from self._flush()

    def _flush(self) -> Iterator[Chunk]:
        words, ends, key, bbo, bbo_key = self._core.take_chunk()
        self._count()
        if not len(ends) and not len(bbo_key):
            return
        chunk = Chunk(words.view(EVENT_DTYPE), ends, key, bbo.view(BOOK_TICKER_DTYPE), bbo_key)
        count_chunk(chunk, self._stats, self.sync)
        yield chunk

    def _finish(self) -> None:
        check_grid(self.sync, self._spec, self._files, self._stats)
        unsynced = self._core.finish()
        if unsynced is None:
            return
        n, file_pos, line, gap = unsynced
        report_unsynced(
            self._stats,
            self.symbol,
            [info.path for info in self._files],
            n,
            f"{self._files[file_pos].path}:{line}",
            self._on_missing_snapshot,
            None if gap is None else f"{self._files[gap[0]].path}:{gap[1]}",
        )

    def _count(self) -> None:
        """Carry the Rust chain's counters into `stats` (deltas: `stats.read` is shared)."""
        counters: dict[str, Any] = self._core.counters()
        stats, sync = self._stats, self.sync
        delta = {name: counters[name] - self._applied[name] for name, _ in _COUNTS}
        self._applied.update((name, counters[name]) for name, _ in _COUNTS)
        stats.read["diff"] += delta["diffs_read"]
        stats.read["snapshot"] += delta["snapshots_read"]
        stats.stale_diffs_dropped += delta["stale_dropped"]
        for name, field in _COUNTS:
            if field is not None:
                setattr(sync, field, getattr(sync, field) + delta[name])
        for name in _FACTS:
            setattr(sync, name, counters[name])

    # ----- skips and warnings -------------------------------------------------------------

    def _notes(self, block: bytes, path: str) -> None:
        examples = self._stats.examples
        for kind, reason, at, line, last in self._core.take_notes():
            if kind == "warn":  # at: the chain position of the file; last: the detail
                self._reporter.warn(reason, self._files[at].path, line, str(last))
                continue
            # A skip: at and last bound the line in the block. The reference reads every skipped
            # line again (skips are rare): a disagreement stops the read, whichever line it is.
            # The detail is kept where it is used: raised, or among the first examples.
            detail = self._detail(block[at : int(last)], reason, path, line)
            if reason == "off_grid":
                count_off_grid(self.sync, block[at : int(last)])
            wanted = self._reporter.raise_errors or len(examples.get(reason, ())) < MAX_EXAMPLES
            self._reporter.skip(reason, path, line, detail if wanted else "")

    def _detail(self, raw: bytes, reason: str, path: str, line: int) -> str:
        """The reference's detail for a line the Rust side skipped for `reason`."""
        ref = self._reference_chain()
        capture = ref._reporter
        assert isinstance(capture, _Capture)
        capture.got = None
        ref._ts_scale = self._ts_scale
        ref._line(raw, path, line)
        got = capture.got
        if got is None or got[0] != reason:
            said = "reads it" if got is None else f"skips it as {got[0]}"
            raise ParserMismatchError(
                f"{path}:{line}: the Rust parser skips the line as {reason}, the reference "
                f"{said}; read with parser='python'"
            )
        return got[1]

    def _reference_chain(self) -> SymbolChain:
        if self._reference is None:
            stats = BinanceStats()
            stats.sync[self.symbol] = SymbolSync(self.symbol, self.sync.market)
            self._reference = SymbolChain(
                symbol=self.symbol,
                symbol_id=self._symbol_id,
                spec=self._spec,
                usdm=self._usdm,
                files=[],
                stats=stats,
                reporter=_Capture(),
                on_missing_snapshot="skip",
                chunk_rows=1 << 30,
            )
        return self._reference


__all__ = [
    "PARSERS",
    "Parser",
    "ParserMismatchError",
    "RustSymbolChain",
    "rust_parser_available",
    "rust_supports",
    "use_rust",
]
