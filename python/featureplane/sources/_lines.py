"""Blocks of complete lines from a recorder file, gzip or plain text.

`gzip.open(...).readline()` loses the lines already decompressed into its buffer when the stream
turns out to be cut short (the `EOFError` surfaces from the read that fills the buffer). Feeding
`zlib` ourselves keeps every complete line before the damage, and hands the caller whole blocks
of lines, which is also cheaper than one generator step per line.

Inflating is the longest step of a replay of a JSON capture, so a sound stream is inflated by
ISA-L (`isal`, about 2.5 times zlib's speed) where it is installed. A damaged or cut stream is
always accounted for by zlib: on ISA-L's first complaint, or at an end inside a member, the file
is read again by zlib from its start, the text already handed out is skipped, and zlib says
what it salvages and where the damage is. So the lines and the error are zlib's, byte for byte,
with or without ISA-L.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from os import PathLike
from typing import Any, BinaryIO

from featureplane.errors import StreamDamageError

_isal: Any
try:
    from isal import isal_zlib as _isal
except ImportError:  # not built for this platform: zlib alone, at zlib's speed
    _isal = None

GZIP_MAGIC = b"\x1f\x8b"
BLOCK_BYTES = 1 << 20
"""Compressed bytes read at a time (about 8 MB of text for a JSON capture)."""


def iter_line_blocks(
    path: str | PathLike[str], block_bytes: int = BLOCK_BYTES
) -> Iterator[list[bytes]]:
    """Yield lists of the file's lines (without the newline), in order.

    A file starting with the gzip magic is decompressed (several gzip members are read one after
    the other, like `gzip` does); anything else is read as plain text.

    Raises
    ------
    StreamDamageError
        After the last complete line, if the gzip stream is cut short or corrupt. The partial line
        at the damage is not yielded.
    """
    with open(path, "rb") as f:
        pending: list[bytes] = []  # pieces of an unfinished line, joined once it ends
        for text in _texts(f, block_bytes):
            if b"\n" not in text:  # scans this block only: a long line costs linear time
                if text:
                    pending.append(text)
                continue
            if pending:
                pending.append(text)
                text = b"".join(pending)
                pending = []
            lines = text.split(b"\n")
            tail = lines.pop()
            if tail:
                pending.append(tail)
            if lines:
                yield lines
        if pending:  # a last line without newline is complete: the file ended normally
            yield [b"".join(pending)]


def iter_text_blocks(path: str | PathLike[str], block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """Yield the file's text in blocks of whole lines, the same lines as `iter_line_blocks`.

    Every block ends with a newline except, possibly, the last one (a last line without
    newline). A parser that splits the lines itself is spared one bytes object per line.

    Raises
    ------
    StreamDamageError
        As `iter_line_blocks`, after the block holding the last complete line.
    """
    with open(path, "rb") as f:
        pending: list[bytes] = []  # pieces of an unfinished line, joined once it ends
        for text in _texts(f, block_bytes):
            cut = text.rfind(b"\n") + 1  # this block only: a long line costs linear time
            if not cut:
                if text:
                    pending.append(text)
                continue
            head = text if cut == len(text) else text[:cut]
            if pending:
                pending.append(head)
                head = b"".join(pending)
                pending = []
            yield head
            if cut < len(text):
                pending.append(text[cut:])
        if pending:
            yield b"".join(pending)


def _texts(f: BinaryIO, block_bytes: int) -> Iterator[bytes]:
    magic = f.read(2)
    f.seek(0)
    if magic == GZIP_MAGIC:
        return _gzip_texts(f, block_bytes)
    return _plain_texts(f, block_bytes)


def _plain_texts(f: BinaryIO, block_bytes: int) -> Iterator[bytes]:
    while raw := f.read(block_bytes):
        yield raw


def _gzip_texts(f: BinaryIO, block_bytes: int) -> Iterator[bytes]:
    """Decompressed text per block read; raises `StreamDamage` after the text before it."""
    if _isal is None:
        return _zlib_texts(f, block_bytes)
    return _isal_texts(f, block_bytes)


def _isal_texts(f: BinaryIO, block_bytes: int) -> Iterator[bytes]:
    """`_zlib_texts`'s text, inflated by ISA-L while the stream is sound (module docstring)."""
    handed_out = 0
    member = _IsalMember()
    while raw := f.read(block_bytes):
        text = member.inflate(raw)
        if text is None:
            break
        handed_out += len(text)
        yield text
    else:
        if not member.open:
            return
    f.seek(0)  # damaged, cut inside a member, or a header for zlib to judge
    yield from _skip(_zlib_texts(f, block_bytes), handed_out)


class _IsalMember:
    """ISA-L's inflater over consecutive gzip members, as `_zlib_texts` walks them."""

    def __init__(self) -> None:
        self.dec = _isal.decompressobj(wbits=31)
        self.open = False  # bytes went into the current member and its end was not seen yet

    def inflate(self, raw: bytes) -> bytes | None:
        """The text of one block read, or None where zlib must take over."""
        pieces: list[bytes] = []
        while raw:
            if not self.open:
                raw = raw.lstrip(b"\0")  # zero padding after a member, as in `_zlib_texts`
                if not raw:
                    break
                if not _plain_header(raw):
                    return None
            try:
                pieces.append(self.dec.decompress(raw))
            except _isal.error:
                return None
            self.open = True
            if self.dec.eof:
                raw = self.dec.unused_data
                self.dec = _isal.decompressobj(wbits=31)
                self.open = False
            else:
                raw = b""
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _plain_header(raw: bytes) -> bool:
    """A gzip member header both inflaters read alike: the magic, deflate, and no flag bits
    beyond FTEXT, FEXTRA, FNAME and FCOMMENT (ISA-L ignores the reserved ones, which zlib
    refuses, and the header CRC, which zlib checks). Anything else goes to zlib."""
    return len(raw) >= 4 and raw[:3] == b"\x1f\x8b\x08" and not raw[3] & 0xE2


def _skip(texts: Iterator[bytes], n: int) -> Iterator[bytes]:
    """`texts` without their first `n` bytes (its exception, if any, after the rest)."""
    for text in texts:
        if n >= len(text):
            n -= len(text)
            continue
        yield text[n:] if n else text
        n = 0


def _zlib_texts(f: BinaryIO, block_bytes: int) -> Iterator[bytes]:
    """Decompressed text per block read; raises `StreamDamage` after the text before it."""
    dec = zlib.decompressobj(wbits=31)
    in_member = False  # bytes went into the current member and its end was not seen yet
    while raw := f.read(block_bytes):
        pieces: list[bytes] = []
        damage: StreamDamageError | None = None
        while raw:
            if not in_member:
                # Zero padding after the last member is tolerated, as gzip does.
                raw = raw.lstrip(b"\0")
                if not raw:
                    break
            saved = dec.copy()
            try:
                pieces.append(dec.decompress(raw))
            except zlib.error as exc:
                # The failing call returns nothing: redo it in small steps from the saved
                # state to keep the text that came before the damage.
                pieces.append(_salvage(saved, raw))
                damage = StreamDamageError("gzip_error", f"corrupt gzip data ({exc})")
                break
            in_member = True
            if dec.eof:
                raw = dec.unused_data
                dec = zlib.decompressobj(wbits=31)
                in_member = False
            else:
                raw = b""
        yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if damage is not None:
            raise damage
    if in_member:
        raise StreamDamageError("truncated", "gzip stream ends before its end-of-stream marker")


def _salvage(dec: zlib._Decompress, raw: bytes) -> bytes:
    """Everything `dec` yields from `raw` before the byte that makes zlib fail."""
    out: list[bytes] = []
    step = 4096
    pos = 0
    while pos < len(raw) and not dec.eof:
        saved = dec.copy()
        try:
            out.append(dec.decompress(raw[pos : pos + step]))
        except zlib.error:
            if step == 1:
                break
            dec, step = saved, 1  # narrow down to the failing byte
            continue
        pos += step
    return b"".join(out)
