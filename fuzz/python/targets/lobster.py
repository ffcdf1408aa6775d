"""LOBSTER message + orderbook files: as a pair, in a zip (maybe cut short), or the message
file alone (`messages_only=True`).

Input: a flags byte, then the message file's text, a form feed (0x0c), the orderbook file's.
Flags: bits 0-1 the layout (0 a pair, 1 a zip of both, 2 the message file alone, 3 a pair read
without the depth refill), bit 2 small chunks (3 messages), bits 3-7 where a zip is cut (0:
whole; k: its first k/32 of the bytes). The orderbook file's name says N levels, N from its
first line (4 columns a level), as LOBSTER names them.

LOBSTER has no skip mode (a lost message corrupts the book for good): `errors="raise"`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from featureplane.errors import FeatureplaneError
from featureplane.sources.lobster.reader import LobsterReader

from . import common

SOURCE = "lobster"
MODULES = ("featureplane.sources.lobster", "featureplane.sources._lines")
STEM = "FUZZ_2012-06-21_34200000_57600000"
_dir = Path(".")


def setup(workdir: Path) -> None:
    global _dir
    _dir = workdir


def _levels(book: bytes) -> int:
    first = book.split(b"\n", 1)[0]
    return max(1, (first.count(b",") + 1) // 4)


def one_input(data: bytes) -> None:
    opts, text = common.flags(data)
    messages, _, book = text.partition(b"\x0c")
    layout = opts & 3
    msg = _dir / f"{STEM}_message_{_levels(book)}.csv"
    ob = _dir / f"{STEM}_orderbook_{_levels(book)}.csv"
    for old in _dir.iterdir():
        old.unlink()
    msg.write_bytes(messages)
    ob.write_bytes(book)
    kwargs = {"chunk_messages": 3} if opts & 4 else {}
    target: Path = msg
    orderbook: Path | None = ob
    if layout == 1:
        target, orderbook = _dir / f"{STEM}.zip", None
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.write(msg, msg.name)
            zf.write(ob, ob.name)
        if cut := opts >> 3:
            blob = target.read_bytes()
            target.write_bytes(blob[: len(blob) * cut // 32])
    try:
        reader = LobsterReader(
            target,
            None if layout == 2 else orderbook,
            messages_only=layout == 2,
            depth_refill=layout != 3,
            **kwargs,  # type: ignore[arg-type]
        )
        events = common.concat(list(reader.chunks()))
    except FeatureplaneError:
        return
    common.check_events(events, len(reader.symbols), None)
    common.check_engine(reader.symbols, events)
