"""LOBSTER file conventions: names, zip members, line streams, time and price scaling.

LOBSTER (lobsterdata.com) ships two header-less CSV files per ticker and day, read row by row
in step: `<TICKER>_<date>_<start ms>_<end ms>_message_<N>.csv` (time, type, order id, size,
price, direction) and `..._orderbook_<N>.csv` (ask px, ask size, bid px, bid size for levels
1..N). Prices are dollars x 10000, sizes shares, times seconds after midnight (exchange local
time) with up to nine decimals.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from os import PathLike, fspath
from pathlib import Path
from typing import IO, TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from featureplane.errors import SourceFormatError

if TYPE_CHECKING:
    # Only a type here: the format registry imports this module to sniff files, before any
    # reader (and numpy) is needed.
    from featureplane.instruments import InstrumentSpec

# Message types (column 2 of the message file).
NEW_ORDER = 1
PARTIAL_CANCEL = 2
DELETE = 3
EXECUTE_VISIBLE = 4
EXECUTE_HIDDEN = 5
CROSS_TRADE = 6
HALT = 7
TYPE_NAMES = {
    NEW_ORDER: "new order",
    PARTIAL_CANCEL: "partial cancel",
    DELETE: "delete",
    EXECUTE_VISIBLE: "visible execution",
    EXECUTE_HIDDEN: "hidden execution",
    CROSS_TRADE: "cross trade",
    HALT: "trading halt",
}

DUMMY_ASK_PX = 9999999999
"""Padding of an empty ask level in the orderbook file (its size is 0)."""
DUMMY_BID_PX = -9999999999
"""Padding of an empty bid level in the orderbook file (its size is 0)."""

ZIP_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)
"""What reading a damaged (cut short, corrupt) or unsupported zip archive raises."""

PRICE_UNIT = Fraction(1, 10000)
"""A LOBSTER price integer is dollars x 10000."""

DEFAULT_TZ = "America/New_York"
"""NASDAQ's clock: LOBSTER times are seconds after local midnight."""

DEFAULT_TICK = "0.005"
"""Default price grid. NASDAQ quotes GOOG on whole cents, but hidden (midpoint) executions print
at half cents (50 of them in the 2012-06-21 sample), so 0.005 is the coarsest grid that holds
every price LOBSTER writes for a stock above $1."""

_NAME = re.compile(
    r"^(?P<ticker>.+?)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)_"
    r"(?P<kind>message|orderbook)_(?P<levels>\d+)\.csv$"
)


@dataclass(frozen=True)
class LobsterName:
    """The parts of a LOBSTER file name."""

    ticker: str
    date: dt.date
    start_ms: int
    end_ms: int
    kind: str
    """"message" or "orderbook"."""
    levels: int


def parse_lobster_name(name: str) -> LobsterName | None:
    """Split `GOOG_2012-06-21_34200000_57600000_message_10.csv` into its parts (None if other)."""
    m = _NAME.match(Path(name).name)
    if m is None:
        return None
    try:
        date = dt.date.fromisoformat(m["date"])
    except ValueError:
        return None
    return LobsterName(
        m["ticker"], date, int(m["start"]), int(m["end"]), m["kind"], int(m["levels"])
    )


@dataclass(frozen=True)
class ZipMember:
    """A CSV inside a zip archive, read in place (never extracted)."""

    archive: str
    member: str

    def __str__(self) -> str:
        return f"{self.archive}/{self.member}"

    @property
    def name(self) -> str:
        """The member's file name, without its folder inside the archive."""
        return Path(self.member).name


LobsterPath = str | PathLike[str] | ZipMember


def source_name(source: LobsterPath) -> str:
    """How errors and reports name a source: a path, or `archive.zip/member.csv`."""
    return str(source) if isinstance(source, ZipMember) else fspath(source)


def base_name(source: LobsterPath) -> str:
    return source.name if isinstance(source, ZipMember) else Path(fspath(source)).name


def lobster_zip_members(archive: str | PathLike[str]) -> tuple[ZipMember, ZipMember | None]:
    """The message file and (when present) the orderbook file of a LOBSTER zip archive.

    Raises
    ------
    SourceFormatError
        The archive holds no message file, or several.
    """
    path = fspath(archive)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except ZIP_DAMAGE as exc:
        raise SourceFormatError(path, None, f"not a readable zip archive ({exc})") from None
    named = [(n, parse_lobster_name(n)) for n in names]
    messages = [n for n, p in named if p is not None and p.kind == "message"]
    if len(messages) != 1:
        raise SourceFormatError(
            path, None, f"expected one LOBSTER message file in the archive, found {len(messages)}"
        )
    msg = parse_lobster_name(messages[0])
    assert msg is not None
    books = [
        n
        for n, p in named
        if p is not None
        and p.kind == "orderbook"
        and (p.ticker, p.date, p.start_ms, p.end_ms)
        == (msg.ticker, msg.date, msg.start_ms, msg.end_ms)
    ]
    if len(books) > 1:
        raise SourceFormatError(path, None, f"several orderbook files match {messages[0]}")
    return ZipMember(path, messages[0]), (ZipMember(path, books[0]) if books else None)


def iter_lines(source: LobsterPath, block_bytes: int = 1 << 20) -> Iterator[bytes]:
    """The lines of a plain file or zip member, without line endings, streamed in blocks.

    Reading a block and splitting it costs far less than one `readline` per line (the zip
    member's `readline` is Python code).
    """
    if isinstance(source, ZipMember):
        try:
            with zipfile.ZipFile(source.archive) as zf, zf.open(source.member) as f:
                yield from _split_blocks(f, block_bytes)
        except ZIP_DAMAGE as exc:
            # A cut or corrupt archive: the lines before the damage are out already; the read
            # stops here, naming the member.
            reason = f"the zip member is damaged ({exc})"
            raise SourceFormatError(str(source), None, reason) from None
    else:
        with open(source, "rb") as f:
            yield from _split_blocks(f, block_bytes)


def _split_blocks(f: IO[bytes], block_bytes: int) -> Iterator[bytes]:
    tail = b""
    while block := f.read(block_bytes):
        lines = (tail + block).split(b"\n")
        tail = lines.pop()
        for line in lines:
            yield line[:-1] if line.endswith(b"\r") else line
    if tail:  # a last line without a newline
        yield tail[:-1] if tail.endswith(b"\r") else tail


def session_epoch_ns(date: dt.date, tz: str | None) -> int:
    """Nanoseconds since the epoch of local midnight of `date` in `tz` (None: UTC).

    The UTC offset is the one in force at noon of the trading day: daylight-saving switches
    happen at 02:00, before any session, so one offset serves the whole file.
    """
    if tz is None:
        offset = dt.timedelta(0)
    else:
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {tz!r}: {exc}") from None
        noon = dt.datetime.combine(date, dt.time(12), tzinfo=zone)
        offset = noon.utcoffset() or dt.timedelta(0)
    midnight = dt.datetime.combine(date, dt.time(0), tzinfo=dt.UTC) - offset
    return int(midnight.timestamp()) * 1_000_000_000


def parse_seconds_ns(text: bytes) -> int:
    """Exact nanoseconds of a `seconds.fraction` string (at most nine significant decimals).

    Raises
    ------
    ValueError
        Not a non-negative decimal, or finer than a nanosecond.
    """
    whole, _, frac = text.partition(b".")
    if len(frac) > 9:
        if frac[9:].strip(b"0"):
            raise ValueError(f"time {text.decode(errors='replace')!r} is finer than 1 ns")
        frac = frac[:9]
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"time {text.decode(errors='replace')!r} is not seconds.decimals")
    return int(whole) * 1_000_000_000 + (int(frac.ljust(9, b"0")) if frac else 0)


@dataclass(frozen=True)
class Scale:
    """Exact conversion of LOBSTER integers to an instrument's ticks and lots.

    `ticks = px * px_num / px_den` must be a whole number (else the price is off the grid);
    the same for lots from shares.
    """

    px_num: int
    px_den: int
    qty_num: int
    qty_den: int

    @classmethod
    def of(cls, spec: InstrumentSpec) -> Scale:
        px = PRICE_UNIT / Fraction(spec.tick_size)
        qty = Fraction(1) / Fraction(spec.lot_size)
        return cls(px.numerator, px.denominator, qty.numerator, qty.denominator)

    def ticks(self, px: int) -> int | None:
        """Ticks of a LOBSTER price, None when it is off the grid."""
        steps, rem = divmod(px * self.px_num, self.px_den)
        return None if rem else steps

    def lots(self, shares: int) -> int | None:
        steps, rem = divmod(shares * self.qty_num, self.qty_den)
        return None if rem else steps

    def to_lobster_px(self, ticks: int) -> int:
        """The LOBSTER price integer of a tick count (exact for on-grid values)."""
        return ticks * self.px_den // self.px_num

    def to_shares(self, lots: int) -> int:
        return lots * self.qty_den // self.qty_num


__all__ = [
    "CROSS_TRADE",
    "DEFAULT_TICK",
    "DEFAULT_TZ",
    "DELETE",
    "DUMMY_ASK_PX",
    "DUMMY_BID_PX",
    "EXECUTE_HIDDEN",
    "EXECUTE_VISIBLE",
    "HALT",
    "NEW_ORDER",
    "PARTIAL_CANCEL",
    "TYPE_NAMES",
    "LobsterName",
    "LobsterPath",
    "Scale",
    "ZipMember",
    "base_name",
    "iter_lines",
    "lobster_zip_members",
    "parse_lobster_name",
    "parse_seconds_ns",
    "session_epoch_ns",
    "source_name",
]
