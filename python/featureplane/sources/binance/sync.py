"""One symbol's chain of Binance recorder files: parse each line, sync the book, build chunks.

The sync rule is Binance's documented one for a local book ("How to manage a local order book
correctly"), applied per symbol across the files of its chain:

1. Buffer depth diffs until the REST snapshot (`lastUpdateId` = L) is read.
2. Emit the snapshot message, then the buffered and following diffs, dropping the stale ones
   (USD-M: `u < L`; spot: `u <= L`) until the first one that is applied.
3. That first diff must straddle the snapshot (USD-M: `U <= L <= u`; spot: `U <= L+1 <= u`);
   if it does not, it is still emitted and counted (`sync_not_straddled`): the engine sees the
   gap through the sequence fields and flags it.

Trades and book tickers are never held back: they go out in file order as they come.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import Any, cast

import numpy as np
import orjson

from featureplane.errors import (
    InvalidMessageError,
    OffGridError,
    SourceFormatError,
    StreamDamageError,
    SyncError,
    UnreadableLineError,
)
from featureplane.events import ASK, BID, BUY, CLEAR, LEVEL, NO_SEQ, SELL, SNAPSHOT, TRADE
from featureplane.instruments import InstrumentSpec
from featureplane.sources._chunks import Chunk, ChunkBuilder
from featureplane.sources._common import Reporter
from featureplane.sources._lines import iter_line_blocks
from featureplane.sources.binance.parse import (
    I64_MAX,
    MS_MAX,
    Diff,
    GridCache,
    int_field,
    local_ts,
    source_ts,
)
from featureplane.sources.binance.stats import BinanceStats, FileInfo, SymbolSync

_DIFF, _TRADE, _BBO, _UNKNOWN_STREAM, _OTHER_SYMBOL = range(5)
_STREAM_CACHE_MAX = 1024
_first = itemgetter(0)
_second = itemgetter(1)
_loads = orjson.loads


class SymbolChain:
    """Reads the files of one symbol in chain order and yields `Chunk`s of its messages."""

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
        self.symbol = symbol
        self._usdm = usdm
        self._files = files
        self._stats = stats
        self._reporter = reporter
        self._on_missing_snapshot = on_missing_snapshot
        self._chunk_rows = chunk_rows
        self._builder = ChunkBuilder(symbol_id)
        self._bbo_rows, self._bbo_keys = self._builder.bbo, self._builder.b_key
        self.sync = stats.sync[symbol]
        self._spec = spec
        self._px = GridCache(spec.price_grid, "price", positive=True)
        self._qty = GridCache(spec.size_grid, "size", positive=False)
        # Typed loosely on purpose: any JSON value may arrive; a non-string is refused inside.
        self._px_get: Callable[[Any], int] = self._px.__getitem__
        self._qty_get: Callable[[Any], int] = self._qty.__getitem__
        self._px_peek: Callable[[Any], int | None] = dict.get.__get__(self._px)
        self._qty_peek: Callable[[Any], int | None] = dict.get.__get__(self._qty)
        self._kinds: dict[str, int] = {}
        self._rel = -(1 << 62)  # running max of local timestamps: the merge key
        self._ts_scale = 1  # the current file's local timestamps times this are ns
        # Sync state.
        self._awaiting = True  # no snapshot yet: diffs are buffered
        self._buffer: list[Diff] = []
        self._first_pending = False  # a snapshot was emitted, no diff applied after it yet
        self._last_update_id = NO_SEQ
        self._last_u: int | None = None
        self._carry: tuple[int, int] | None = None  # (U, prev) of folded empty diffs
        self._boundary = False  # a new file of the chain started, no diff emitted from it yet
        self._gap_at: str | None = None  # where a chain gap reset the book (None: at the start)

    # ----- driving ------------------------------------------------------------------------

    def chunks(self) -> Iterator[Chunk]:
        limit = self._chunk_rows
        stats = self._stats
        rows, bbo_rows = self._builder.px, self._builder.bbo  # cleared in place on flush
        for pos, info in enumerate(self._files):
            info.chain_pos = pos
            self._boundary = pos > 0
            self._ts_scale = info.local_ts_scale
            path = info.path
            line = 0
            try:
                for block in iter_line_blocks(path):
                    for raw in block:
                        line += 1
                        self._line(raw, path, line)
                        if len(rows) + len(bbo_rows) >= limit:
                            yield from self._flush()
            except StreamDamageError as damage:
                info.truncated = True
                stats.truncated_files.append(path)
                self._reporter.skip(damage.reason, path, line + 1, damage.detail)
            finally:
                info.lines = line
                stats.lines_read += line
        self._finish()
        yield from self._flush()

    def _flush(self) -> Iterator[Chunk]:
        chunk = self._builder.flush()
        if chunk is None:
            return
        count_chunk(chunk, self._stats, self.sync)
        yield chunk

    def _finish(self) -> None:
        """End of the chain: a grid too coarse for the data, diffs still waiting for a
        snapshot."""
        check_grid(self.sync, self._spec, self._files, self._stats)
        if not (self._awaiting and self._buffer):
            return
        first = self._buffer[0]
        report_unsynced(
            self._stats,
            self.symbol,
            [info.path for info in self._files],
            len(self._buffer),
            f"{first.path}:{first.line}",
            self._on_missing_snapshot,
            self._gap_at,
        )
        self._buffer = []

    # ----- one line -----------------------------------------------------------------------

    def _line(self, raw: bytes, path: str, line: int) -> None:
        sp = raw.find(b" ")
        head = raw[:sp]
        if sp <= 0 or not head.isdigit():
            self._reporter.skip("bad_line", path, line, "not '<local_ts_ns> <json>'")
            return
        local = local_ts(head) * self._ts_scale
        if local > I64_MAX:
            self._reporter.skip("bad_line", path, line, "local timestamp out of the int64 range")
            return
        if local > self._rel:
            self._rel = local
        try:
            obj = _loads(memoryview(raw)[sp + 1 :])
        except orjson.JSONDecodeError as exc:
            reason, detail = "bad_json", str(exc)
        else:
            try:
                if type(obj) is not dict:
                    raise UnreadableLineError("bad_json", "not a JSON object")
                stream = obj.get("stream")
                kind = self._kinds.get(stream) if type(stream) is str else None
                data = obj.get("data")
                # Fast path for the bulk of a capture: book tickers and diffs of this symbol.
                if (
                    kind == _BBO
                    and type(data) is dict
                    and data.get("e", "bookTicker") == ("bookTicker")
                ):
                    self._book_ticker(data, local)
                elif kind == _DIFF and type(data) is dict and data.get("e") == "depthUpdate":
                    self._diff(data, local, path, line)
                else:
                    self._dispatch(obj, local, path, line)
                return
            except UnreadableLineError as bad:
                reason, detail = bad.reason, bad.detail
            except OffGridError as exc:
                reason, detail = "off_grid", str(exc)
            except InvalidMessageError as exc:
                reason, detail = "bad_value", str(exc)
            except (TypeError, IndexError) as exc:  # a level or field of an unexpected shape
                reason, detail = "bad_message", f"{type(exc).__name__}: {exc}"
        # Reported outside the handlers: in raise mode the error must not chain the internal one.
        if reason == "off_grid":
            count_off_grid(self.sync, raw)
        self._reporter.skip(reason, path, line, detail)

    def _dispatch(self, obj: dict[str, Any], local: int, path: str, line: int) -> None:
        """Every line the fast path in `_line` does not take."""
        stream = obj.get("stream")
        if stream is not None:
            kind = self._kinds.get(stream) if type(stream) is str else None
            if kind is None:
                kind = self._classify(stream)
            data = obj.get("data")
            if type(data) is not dict:
                raise UnreadableLineError("bad_message", "'data' is not a JSON object")
            event = data.get("e")
            if kind == _BBO and event in (None, "bookTicker"):
                self._book_ticker(data, local)
            elif kind == _DIFF and event == "depthUpdate":
                self._diff(data, local, path, line)
            elif kind == _TRADE and event == "trade":
                self._trade(data, local)
            elif kind == _OTHER_SYMBOL:
                raise UnreadableLineError(
                    "symbol_mismatch", f"stream {stream!r} in a {self.symbol} file"
                )
            elif kind == _UNKNOWN_STREAM:
                raise UnreadableLineError("unknown_stream", f"stream {stream!r} is not read")
            else:
                raise UnreadableLineError("unknown_event", f"event {event!r} on stream {stream!r}")
            return
        # Lines without the combined-stream wrapper: the REST snapshot, or a raw payload.
        if "lastUpdateId" in obj:
            self._snapshot(obj, local, path, line)
            return
        event = obj.get("e")
        if event == "depthUpdate":
            self._diff(obj, local, path, line)
        elif event == "trade":
            self._trade(obj, local)
        elif event == "bookTicker" or (event is None and {"u", "s", "b", "a"} <= obj.keys()):
            self._book_ticker(obj, local)
        else:
            raise UnreadableLineError("unknown_event", f"event {event!r} (keys {sorted(obj)[:6]})")

    def _classify(self, stream: object) -> int:
        if type(stream) is not str:
            raise UnreadableLineError("bad_message", f"stream name {stream!r} is not a string")
        prefix, _, rest = stream.partition("@")
        if prefix.upper() != self.symbol:
            kind = _OTHER_SYMBOL
        elif rest == "depth" or rest.startswith("depth@"):
            kind = _DIFF  # depth5/10/20 are partial-book snapshots: not read
        elif rest == "trade":
            kind = _TRADE
        elif rest == "bookTicker":
            kind = _BBO
        else:
            kind = _UNKNOWN_STREAM
        if len(self._kinds) < _STREAM_CACHE_MAX:
            self._kinds[stream] = kind
        return kind

    def _check_symbol(self, d: dict[str, Any]) -> None:
        s = d.get("s")
        if s is not None and s != self.symbol:
            raise UnreadableLineError("symbol_mismatch", f"s={s!r} in a {self.symbol} file")

    def _levels(self, bids: object, asks: object) -> tuple[list[int], list[int], int]:
        """Ticks and lots of `[[px, qty], ...]` bids then asks, and the number of bids."""
        if type(bids) is not list or type(asks) is not list:
            raise UnreadableLineError("bad_message", "bid/ask levels are not lists")
        levels = bids + asks
        # One C-level pass over the types: a level must be a [px, qty] list, never a string
        # whose characters would index like one.
        if levels and set(map(type, levels)) != {list}:
            raise UnreadableLineError("bad_message", "a level is not a [price, size] list")
        try:
            px_str = list(map(_first, levels))
            qty_str = list(map(_second, levels))
        except IndexError:
            raise UnreadableLineError(
                "bad_message", "a level is not a [price, size] list"
            ) from None
        # Plain dict.get over the whole list runs in C; the few misses are filled after.
        px = list(map(self._px_peek, px_str))
        if None in px:
            px = list(map(self._px_get, px_str))
        qty = list(map(self._qty_peek, qty_str))
        if None in qty:
            qty = list(map(self._qty_get, qty_str))
        return cast(list[int], px), cast(list[int], qty), len(bids)

    # ----- messages -----------------------------------------------------------------------

    def _diff(self, d: dict[str, Any], local: int, path: str, line: int) -> None:
        self._check_symbol(d)
        first = int_field(d, "U")
        last = int_field(d, "u")
        if first > last:
            raise UnreadableLineError("bad_message", f"U={first} > u={last}")
        # Spot has no `pu`: its continuity rule is U == previous u + 1, i.e. prev = U - 1.
        prev = int_field(d, "pu") if self._usdm else first - 1
        src = source_ts(d, local)
        px, qty, n_bids = self._levels(d.get("b"), d.get("a"))
        diff = Diff(first, last, prev, src, local, px, qty, n_bids, path, line)
        self._stats.read["diff"] += 1
        self.sync.diffs_read += 1
        if self._awaiting:
            self._buffer.append(diff)
            self.sync.buffered_diffs += 1
        else:
            self._accept(diff)

    def _accept(self, diff: Diff) -> None:
        """Apply the sync rule to a diff that may be emitted (a snapshot has been read)."""
        sync = self.sync
        if self._first_pending:
            lid = self._last_update_id
            if (diff.last < lid) if self._usdm else (diff.last <= lid):
                self._stats.stale_diffs_dropped += 1
                sync.stale_dropped += 1
                return
            target = lid if self._usdm else lid + 1
            straddled = diff.first <= target <= diff.last
            if sync.straddled is None:
                sync.first_U, sync.first_u, sync.straddled = diff.first, diff.last, straddled
            if not straddled:
                self._reporter.warn(
                    "sync_not_straddled",
                    diff.path,
                    diff.line,
                    f"{self.symbol}: first diff U={diff.first} u={diff.last} after "
                    f"lastUpdateId {lid}",
                )
            self._first_pending = False
        elif self._last_u is not None:
            continuous = diff.prev == self._last_u if self._usdm else diff.first == self._last_u + 1
            if not continuous:
                if self._boundary:
                    self._chain_gap(diff)
                    return
                sync.seq_gaps += 1
        self._boundary = False
        self._last_u = diff.last
        sync.last_u = diff.last
        n = len(diff.px)
        first, prev = diff.first, diff.prev
        if n == 0:
            # A diff without levels still advances u: fold its U/prev into the next diff so the
            # chain stays continuous (a message needs at least one row).
            if self._carry is None:
                self._carry = (first, prev)
            sync.empty_diffs_folded += 1
            return
        if self._carry is not None:
            first, prev = self._carry
            self._carry = None
        b = self._builder
        b.kind.extend([LEVEL] * n)
        b.side.extend([BID] * diff.n_bids)
        b.side.extend([ASK] * (n - diff.n_bids))
        b.px.extend(diff.px)
        b.qty.extend(diff.qty)
        b.message(n, diff.last, first, prev, diff.src, diff.local, self._rel)

    def _chain_gap(self, diff: Diff) -> None:
        """A file's first diff does not continue the previous file: the book is lost.

        A reset (one CLEAR row, no sequence) empties the book in the engine, so no frame mixes
        the old file's levels with the new file's, and the chain waits for a snapshot again,
        as at its start: this diff and the next ones are buffered until a snapshot line
        (usually the new file's own) syncs them by the rule above.
        """
        sync = self.sync
        sync.chain_gaps += 1
        sync.chain_resets += 1
        self._reporter.warn(
            "chain_gap",
            diff.path,
            diff.line,
            f"{self.symbol}: first diff of the file (U={diff.first}, "
            f"pu={diff.prev if self._usdm else None}) does not continue "
            f"u={self._last_u} of the previous file; the book is reset and waits for a snapshot",
        )
        b = self._builder
        b.kind.append(CLEAR)
        b.side.append(0)
        b.px.append(0)
        b.qty.append(0)
        b.message(1, NO_SEQ, NO_SEQ, NO_SEQ, diff.src, diff.local, self._rel)
        self._awaiting = True
        self._boundary = False
        self._last_u = None
        self._carry = None
        self._gap_at = f"{diff.path}:{diff.line}"
        self._buffer = [diff]
        sync.buffered_diffs += 1

    def _snapshot(self, d: dict[str, Any], local: int, path: str, line: int) -> None:
        lid = int_field(d, "lastUpdateId")
        src = source_ts(d, local)  # the spot REST snapshot has neither T nor E: local time
        px, qty, n_bids = self._levels(d.get("bids"), d.get("asks"))
        self._stats.read["snapshot"] += 1
        n = len(px)
        b = self._builder
        b.kind.append(CLEAR)
        b.side.append(0)
        b.px.append(0)
        b.qty.append(0)
        b.kind.extend([SNAPSHOT] * n)
        b.side.extend([BID] * n_bids)
        b.side.extend([ASK] * (n - n_bids))
        b.px.extend(px)
        b.qty.extend(qty)
        b.message(n + 1, lid, NO_SEQ, NO_SEQ, src, local, self._rel)
        sync = self.sync
        sync.snapshots += 1
        if sync.last_update_id is None:
            sync.last_update_id = lid
        self._last_update_id = lid
        self._first_pending = True
        self._carry = None
        self._last_u = None
        if self._awaiting:
            self._awaiting = False
            self._gap_at = None
            buffered, self._buffer = self._buffer, []
            for diff in buffered:
                self._accept(diff)

    def _trade(self, d: dict[str, Any], local: int) -> None:
        self._check_symbol(d)
        trade_id = int_field(d, "t")
        maker = d.get("m")
        if maker is not True and maker is not False:
            raise UnreadableLineError("bad_message", f"m={maker!r} is not a boolean")
        px = self._px_get(d.get("p"))
        qty = self._qty_get(d.get("q"))
        src = source_ts(d, local)
        b = self._builder
        b.kind.append(TRADE)
        # m (buyer is maker) true: the seller hit the bid, the aggressor sold.
        b.side.append(SELL if maker else BUY)
        b.px.append(px)
        b.qty.append(qty)
        b.message(1, trade_id, NO_SEQ, NO_SEQ, src, local, self._rel)

    def _book_ticker(self, d: dict[str, Any], local: int) -> None:
        # The hottest path (most lines of a capture): checks inlined, one tuple per row.
        symbol = d.get("s")
        if symbol is not None and symbol != self.symbol:
            raise UnreadableLineError("symbol_mismatch", f"s={symbol!r} in a {self.symbol} file")
        update_id = d.get("u")
        if type(update_id) is not int or not 0 <= update_id <= I64_MAX:
            raise UnreadableLineError("bad_message", f"u={update_id!r} is not a non-negative int64")
        t = d.get("T")
        if t is None:
            t = d.get("E")
        if t is None:
            src = local  # spot bookTicker carries no timestamp: the local time stands in
        elif type(t) is int and 0 <= t <= MS_MAX:
            src = t * 1_000_000
        else:
            raise UnreadableLineError("bad_message", f"timestamp {t!r} is not a millisecond time")
        px_get, qty_get = self._px_get, self._qty_get
        self._bbo_rows.append(
            (
                update_id,
                px_get(d.get("b")),
                qty_get(d.get("B")),
                px_get(d.get("a")),
                qty_get(d.get("A")),
                src,
                local,
            )
        )
        self._bbo_keys.append(self._rel)


def count_chunk(chunk: Chunk, stats: BinanceStats, sync: SymbolSync) -> None:
    """Count the messages of a chunk about to be yielded (both parsers count here)."""
    # Counting per chunk keeps the per-line path free of counter updates.
    # Two fields of each message's last row, not whole 64-byte rows.
    last = chunk.ends - 1
    last_kind = chunk.events["kind"][last]
    kinds = np.bincount(last_kind, minlength=SNAPSHOT + 1)
    n_diff, n_trade = int(kinds[LEVEL]), int(kinds[TRADE])
    # The reset of a chain gap is a CLEAR without a sequence: not a snapshot of the venue.
    clears = last[last_kind == CLEAR]
    n_reset = int(np.count_nonzero(chunk.events["seq"][clears] < 0))
    stats.messages["diff"] += n_diff
    stats.messages["trade"] += n_trade
    stats.messages["snapshot"] += int(kinds[CLEAR] + kinds[SNAPSHOT]) - n_reset
    stats.read["trade"] += n_trade  # trades are never held back or dropped
    stats.read["book_ticker"] += len(chunk.bbo)
    stats.book_tickers += len(chunk.bbo)
    stats.events += len(chunk.events)
    sync.diffs += n_diff
    sync.trades += n_trade
    sync.book_tickers += len(chunk.bbo)


OFF_GRID_MAX_SHARE = 0.01
"""Share of a symbol's lines that may be skipped as off grid before its grid is refused..."""
OFF_GRID_MIN = 100
"""... once there are more than this many (a few bad lines of a short file are damage)."""
_BOOK_LINE = (b"@depth", b'"lastUpdateId"', b'"depthUpdate"')


def count_off_grid(sync: SymbolSync, raw: bytes | memoryview) -> None:
    """Count a line skipped as off grid; a diff or snapshot also as a book line."""
    sync.off_grid += 1
    if any(mark in raw for mark in _BOOK_LINE):
        sync.off_grid_book += 1


def check_grid(
    sync: SymbolSync, spec: InstrumentSpec, files: list[FileInfo], stats: BinanceStats
) -> None:
    """Refuse a symbol whose grid is too coarse for its data.

    Binance writes every price and size on the symbol's own grid, so off-grid lines are seldom
    damage, and most often a tick or lot coarser than the venue's: skipped, they would leave a
    book without its snapshot, a book with holes (every frame after a skipped diff is a gap) or
    a file of trades alone. A `SourceFormatError` naming the grid and the option that fixes it
    is raised for a symbol with off-grid lines and no snapshot read, with a diff or snapshot
    off a grid the caller gave, or with more than `OFF_GRID_MIN` lines and
    `OFF_GRID_MAX_SHARE` of its lines off grid. Otherwise they are counted skips (on the
    built-in or inferred grid, which is the data's own, an off-grid value is damage).
    """
    off = sync.off_grid
    lines = sum(info.lines for info in files)
    too_many = off > max(OFF_GRID_MAX_SHARE * lines, OFF_GRID_MIN)
    caller_wrong = sync.grid_given and sync.off_grid_book > 0
    if off == 0 or (sync.snapshots and not too_many and not caller_wrong):
        return
    first = stats.examples.get("off_grid", [""])[0]
    why = (
        "no REST snapshot could be read"
        if not sync.snapshots
        else f"{sync.off_grid_book} of them book lines"
        if sync.off_grid_book
        else "too many to be damage"
    )
    raise SourceFormatError(
        files[0].path,
        None,
        f"{off} of {lines} lines of {sync.symbol} are off its grid (tick {spec.tick_size}, "
        f"lot {spec.lot_size}) and {why}: the grid is too coarse for the data; give a finer "
        f"tick or lot with instruments= (first: {first})",
    )


def report_unsynced(
    stats: BinanceStats,
    symbol: str,
    paths: list[str],
    n: int,
    first_where: str,
    on_missing_snapshot: str,
    gap_at: str | None = None,
) -> None:
    """`n` diffs of a chain never met a snapshot: raise `SyncError`, or count them dropped.

    `gap_at` names the chain gap that reset the book, when the diffs wait since one.
    """
    if gap_at is None:
        detail = f"{n} depth diff(s) of {symbol} and no REST snapshot in {', '.join(paths)}"
    else:
        detail = (
            f"{n} depth diff(s) of {symbol} after the chain gap at {gap_at} and no REST "
            f"snapshot after it in {', '.join(paths)}"
        )
    if on_missing_snapshot == "raise":
        raise SyncError(f"{detail} (pass on_missing_snapshot='skip' to drop them)")
    stats.note(stats.skipped, "no_snapshot_diffs", first_where, detail, n=n)
