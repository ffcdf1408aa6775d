"""ISA-L inflates a sound gzip stream; a damaged or cut one is zlib's account, byte for byte.

`_lines` reads a damaged file again with zlib (module docstring), so the text handed out and
the error raised must be exactly those of the zlib-only path on every stream: sound, several
members, zero padding, cut anywhere, bytes flipped anywhere (the gzip header, the deflate data,
the CRC and length trailer).
"""

from __future__ import annotations

import gzip
import io
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featureplane.errors import StreamDamageError
from featureplane.sources import _lines

pytestmark = pytest.mark.skipif(_lines._isal is None, reason="isal is not installed")

TEXT = st.binary(max_size=3000).map(lambda b: b.replace(b"\r", b"\n"))


def _outcome(texts_of: object, data: bytes, block: int) -> tuple[bytes, str | None]:
    """All text handed out, and the damage raised after it (kind and message), if any."""
    out: list[bytes] = []
    try:
        out.extend(texts_of(io.BytesIO(data), block))  # type: ignore[operator]
    except StreamDamageError as exc:
        return b"".join(out), str(exc)
    return b"".join(out), None


def _both(data: bytes, block: int) -> None:
    fast = _outcome(_lines._isal_texts, data, block)
    exact = _outcome(_lines._zlib_texts, data, block)
    assert fast == exact


@settings(max_examples=300, deadline=None)
@given(
    members=st.lists(TEXT, min_size=1, max_size=3),
    level=st.sampled_from([0, 1, 6, 9]),
    padding=st.integers(0, 3),
    block=st.integers(1, 700),
    edit=st.one_of(
        st.none(),
        st.tuples(st.just("cut"), st.floats(0, 1)),
        st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
    ),
)
def test_every_stream_gives_zlibs_text_and_damage(
    members: list[bytes],
    level: int,
    padding: int,
    block: int,
    edit: tuple[object, ...] | None,
) -> None:
    data = b"".join(gzip.compress(m, compresslevel=level) for m in members) + b"\0" * padding
    if edit is not None and edit[0] == "cut":
        data = data[: int(len(data) * float(edit[1]))]  # type: ignore[arg-type]
    elif edit is not None:
        at = min(int(len(data) * float(edit[1])), len(data) - 1)  # type: ignore[arg-type]
        data = data[:at] + bytes([data[at] ^ int(edit[2])]) + data[at + 1 :]  # type: ignore[call-overload]
    _both(data, block)


def test_a_sound_capture_sized_stream_is_inflated_without_zlib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = b"".join(b'%d {"e":"depthUpdate","u":%d}\n' % (i, i) for i in range(50_000))
    data = gzip.compress(body)

    def no_zlib(*args: object, **kwargs: object) -> object:
        raise AssertionError("a sound stream fell back to zlib")

    monkeypatch.setattr(_lines, "_zlib_texts", no_zlib)
    assert b"".join(_lines._gzip_texts(io.BytesIO(data), 4096)) == body


@pytest.mark.parametrize("where", [0.002, 0.5, 0.999])
def test_a_corrupt_stream_falls_back_to_zlib_at_its_damage(where: float) -> None:
    """Near the header, mid-stream, and in the trailer (the CRC): each raises zlib's damage
    after zlib's text (a flipped deflate byte decodes to other text until the CRC check)."""
    body = b"".join(b"line %d\n" % i for i in range(20_000))
    data = bytearray(gzip.compress(body, compresslevel=1))
    data[int(len(data) * where)] ^= 0xFF
    with pytest.raises(zlib.error):
        zlib.decompress(bytes(data), wbits=31)
    text, damage = _outcome(_lines._isal_texts, bytes(data), 1024)
    assert damage is not None and damage.startswith("gzip_error")
    assert (text, damage) == _outcome(_lines._zlib_texts, bytes(data), 1024)
