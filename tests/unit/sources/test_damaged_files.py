"""Damaged and hostile files of every venue: a `SourceFormatError` (or a counted skip), never a
raw exception, and never a silently shortened read."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from featureplane.errors import SourceFormatError
from featureplane.instruments import InstrumentSpec
from featureplane.sources.databento import read_databento
from featureplane.sources.hftbacktest.reader import read_hftbacktest_events
from featureplane.sources.lobster import read_lobster
from featureplane.sources.tardis import read_tardis
from tests.unit.sources.test_databento_source import LAST, mbo, messages, write_dbn
from tests.unit.sources.test_lobster_source import write_pair
from tests.unit.sources.test_tardis_source import BOOK, BOOK_HEADER, EX
from tests.unit.sources.test_tardis_source import write as write_tardis

# ----- Databento: zstd frames cut at a record boundary, decoder panics -----------------------


def _zstd_cut_at_record(plain: bytes, keep: int) -> tuple[bytes, bytes]:
    """The zstd stream of `plain` (one frame), and that stream cut where the first `keep`
    bytes end: a flush there closes a block, so the cut stream decodes to exactly them."""
    sink = pa.BufferOutputStream()
    stream = pa.CompressedOutputStream(sink, "zstd")
    stream.write(plain[:keep])
    stream.flush()
    cut_at = sink.tell()
    stream.write(plain[keep:])
    stream.close()
    whole = sink.getvalue().to_pybytes()
    return whole, whole[:cut_at]


def test_a_zstd_frame_cut_at_a_record_boundary_is_truncated(tmp_path: Path) -> None:
    from featureplane.sources.databento.dbn import zstd_damage

    records = [mbo("A", "B", -i, 5, i + 1, flags=LAST, seq=i + 1) for i in range(40)]
    plain = write_dbn(tmp_path / "p.dbn", records).read_bytes()
    keep = len(plain) - 20 * len(bytes(records[0]))  # the first 20 records
    whole, cut = _zstd_cut_at_record(plain, keep)
    (tmp_path / "whole.dbn.zst").write_bytes(whole)
    (tmp_path / "cut.dbn.zst").write_bytes(cut)
    assert zstd_damage(str(tmp_path / "whole.dbn.zst")) is None
    assert len(messages(read_databento(tmp_path / "whole.dbn.zst").events)) == 40
    # The cut stream decodes to 20 whole records and no leftover bytes: only the frame tells.
    with pytest.raises(SourceFormatError, match=r"cut\.dbn\.zst:20: truncated: the zstd stream"):
        read_databento(tmp_path / "cut.dbn.zst")
    skipped = read_databento(tmp_path / "cut.dbn.zst", errors="skip")
    assert skipped.stats.skipped == {"truncated": 1}
    assert len(messages(skipped.events)) == 20  # every record before the cut


@pytest.mark.parametrize("errors", ["raise", "skip"])
def test_a_damaged_zstd_stream_is_refused(tmp_path: Path, errors: str) -> None:
    # databento_dbn raises the zstd layer's errors as a bare RuntimeError (found by the Python
    # fuzz run): a frame header byte changed -> "Unsupported frame parameter".
    plain = write_dbn(tmp_path / "p.dbn", [mbo("A", "B", 0, 5, 1)]).read_bytes()
    stream = bytearray(_zstd_cut_at_record(plain, len(plain))[0])
    stream[4] = 0xFF  # the frame header descriptor
    path = tmp_path / "damaged.dbn.zst"
    path.write_bytes(bytes(stream))
    with pytest.raises(SourceFormatError, match="a damaged zstd stream: ") as info:
        read_databento(path, errors=errors)  # type: ignore[arg-type]
    assert info.value.path == str(path)


def test_a_symbology_date_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    # A mapping interval starting on 2023-12-25 (u32 20231225) moved to 0000-01-01 (101): the
    # decoder takes it, and databento_dbn raises "year 0 is out of range" when the mappings
    # are read (found by the Python fuzz run).
    plain = write_dbn(tmp_path / "p.dbn", [mbo("A", "B", 0, 5, 1)]).read_bytes()
    day = (20231225).to_bytes(4, "little")
    assert plain.count(day) == 1
    path = tmp_path / "year0.dbn"
    path.write_bytes(plain.replace(day, (101).to_bytes(4, "little")))
    for errors in ("raise", "skip"):
        with pytest.raises(SourceFormatError, match="a symbology that does not read: year 0"):
            read_databento(path, errors=errors)


@pytest.mark.parametrize("zstd", [False, True])
@pytest.mark.parametrize(
    "damage", ["panic_flag", "zeroed_header", "zeroed_length"], ids=lambda d: str(d)
)
def test_a_header_the_decoder_refuses_or_panics_on(tmp_path: Path, damage: str, zstd: bool) -> None:
    plain = bytearray(write_dbn(tmp_path / "p.dbn", [mbo("A", "B", 0, 5, 1)]).read_bytes())
    if damage == "panic_flag":
        plain[60] = 0xFF  # a header flag databento-dbn's decoder panics on (found by fuzzing)
    elif damage == "zeroed_header":
        header = 8 + int.from_bytes(plain[4:8], "little")  # magic, version, length, metadata
        plain[:header] = bytes(header)
    else:
        plain[4:8] = bytes(4)  # the metadata's length
    data = bytes(plain)
    if zstd:
        sink = pa.BufferOutputStream()
        with pa.CompressedOutputStream(sink, "zstd") as out:
            out.write(data)
        data = sink.getvalue().to_pybytes()
    bad = tmp_path / ("bad.dbn.zst" if zstd else "bad.dbn")
    bad.write_bytes(data)
    with pytest.raises(SourceFormatError, match="not a DBN file"):
        read_databento(bad)


def test_a_broken_book_record_says_repaired_only_when_it_was(tmp_path: Path) -> None:
    path = write_dbn(tmp_path / "e.dbn", [mbo("A", "B", 0, 5, 1), mbo("C", "B", 0, 1, 99)])
    with pytest.raises(SourceFormatError) as err:
        read_databento(path)  # raise mode: the run stops at the record, nothing is repaired
    assert "unknown_order" in str(err.value) and "repaired" not in str(err.value)
    skipped = read_databento(path, errors="skip")
    assert skipped.stats.skipped == {"unknown_order": 1}
    assert "(repaired;" in skipped.stats.examples["unknown_order"][0]


# ----- tardis: undecodable bytes, timestamps past int64 ---------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_one_undecodable_line_costs_that_line_only(tmp_path: Path, gz: bool) -> None:
    clean = write_tardis(tmp_path / "clean.csv", BOOK_HEADER, BOOK)
    rows = [*BOOK[:4], f"{EX},BTCUSDT,2000,2100,true,bid,100.\udcff2,1", *BOOK[4:]]
    text = "".join(f"{r}\n" for r in [BOOK_HEADER, *rows]).encode("utf-8", "surrogateescape")
    bad = tmp_path / ("bad.csv.gz" if gz else "bad.csv")
    bad.write_bytes(gzip.compress(text) if gz else text)
    with pytest.raises(SourceFormatError, match=r"bad\.csv(\.gz)?:6: undecodable"):
        read_tardis(bad)  # line 6: the header is line 1, and fine
    replay = read_tardis(bad, errors="skip")
    assert replay.stats.skipped == {"undecodable": 1}
    np.testing.assert_array_equal(replay.events, read_tardis(clean).events)


def test_a_timestamp_past_int64_in_ns_is_out_of_range(tmp_path: Path) -> None:
    far = "9" * 17  # microseconds: x 1000 is past int64
    rows = [*BOOK[:4], f"{EX},BTCUSDT,{far},{far},false,bid,100.4,1"]
    path = write_tardis(tmp_path / "far.csv", BOOK_HEADER, rows)
    with pytest.raises(SourceFormatError, match=r"far\.csv:6: out_of_range: timestamps"):
        read_tardis(path)
    assert read_tardis(path, errors="skip").stats.skipped == {"out_of_range": 1}


# ----- hftbacktest arrays ---------------------------------------------------------------------

SPEC = InstrumentSpec("X", "0.1", "0.001")


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("empty.npz", b"", "EOFError"),
        ("corrupt.npz", b"PK\x03\x04" + b"\x00" * 40, "BadZipFile"),
        ("nodata.npz", None, "KeyError"),
        ("array.npz", "npy", "not an archive"),
        # Found by the Python fuzz run (once a raw NotImplementedError), and its kin:
        ("zip-version.npz", "zip-version", "NotImplementedError: zip file version"),
        ("zip-method.npz", "zip-method", "NotImplementedError: That compression method"),
        ("encrypted.npz", "encrypted", "RuntimeError: File 'data.npy' is encrypted"),
        # An .npy whose header claims 596 GiB: once a raw MemoryError.
        ("huge.npz", "huge-npy", "not an archive"),
    ],
)
def test_unreadable_npz_files(tmp_path: Path, name: str, content: object, why: str) -> None:
    path = tmp_path / name
    if content == "npy":
        np.save(tmp_path / "a.npy", np.zeros(3))
        path.write_bytes((tmp_path / "a.npy").read_bytes())  # an .npy named .npz
    elif content == "huge-npy":
        np.save(tmp_path / "a.npy", np.zeros(2, dtype=[("ev", "<u8"), ("px", "<f8")]))
        blob = (tmp_path / "a.npy").read_bytes()
        path.write_bytes(blob.replace(b"(2,), }", b"(9999999999,), }")[: len(blob)])
    elif isinstance(content, str) and content != "npy":
        np.savez(path, data=np.zeros(3))
        raw = bytearray(path.read_bytes())
        local, central = raw.find(b"PK\x03\x04"), raw.rfind(b"PK\x01\x02")
        if content == "zip-version":
            raw[central + 6] = 0xFF  # version needed to extract: 25.5
        elif content == "zip-method":
            raw[local + 8] = raw[central + 10] = 99  # compression method 99
        else:
            raw[local + 6] |= 1  # the encrypted bit
            raw[central + 8] |= 1
        path.write_bytes(bytes(raw))
    elif content is None:
        np.savez(path, other=np.zeros(3))
    else:
        path.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(SourceFormatError, match=f"not an .npz with key 'data'.*{why}"):
        read_hftbacktest_events(path, SPEC)


# ----- LOBSTER: damaged archives, the 7th column ------------------------------------------------


def test_a_lobster_archive_cut_short(tmp_path: Path) -> None:
    msg, ob = write_pair(tmp_path)
    archive = tmp_path / "TEST.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(msg, msg.name)
        zf.write(ob, ob.name)
    data = archive.read_bytes()
    for cut in (len(data) // 2, len(data) - 30):
        (tmp_path / "cut.zip").write_bytes(data[:cut])
        with pytest.raises(SourceFormatError, match=r"cut\.zip"):
            read_lobster(tmp_path / "cut.zip")


def test_a_seventh_column_is_accepted_and_a_changing_width_is_not(tmp_path: Path) -> None:
    for folder in ("six", "seven"):
        (tmp_path / folder).mkdir()
    six = read_lobster(*write_pair(tmp_path / "six"))
    msg, ob = write_pair(tmp_path / "seven")
    msg.write_text("".join(f"{r},NITE\n" for r in msg.read_text().splitlines()))
    seven = read_lobster(msg, ob)
    np.testing.assert_array_equal(seven.events, six.events)
    assert seven.stats.message_columns == 7
    rows = msg.read_text().splitlines()
    msg.write_text("\n".join([*rows[:2], rows[2].rsplit(",", 1)[0], *rows[3:]]) + "\n")
    with pytest.raises(SourceFormatError, match=r":3: expected 7 comma-separated fields, got 6"):
        read_lobster(msg, ob)


def test_a_record_time_past_int64_is_a_bad_timestamp(tmp_path: Path) -> None:
    from tests.unit.sources.test_databento_source import T0

    late = mbo("A", "B", 1, 5, 2, recv=(1 << 63) - T0 + 5)  # ts_recv past int64 ns
    path = write_dbn(tmp_path / "t.dbn", [mbo("A", "B", 0, 5, 1), late])
    with pytest.raises(SourceFormatError, match=r"t\.dbn:1: bad_timestamp"):
        read_databento(path)
    replay = read_databento(path, errors="skip")
    assert replay.stats.skipped == {"bad_timestamp": 1}
    assert len(messages(replay.events)) == 1
