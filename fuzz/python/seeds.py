"""Build the seed corpus of the Python source harnesses (`fuzz/python/corpus/<source>/`).

    .venv/bin/python fuzz/python/seeds.py [--data ../shared/data]

Seeds are cut from the real captures of `../shared/data`, as `fuzz/corpus.py` cuts the Rust
targets' (a few lines or records each, depth lists trimmed; never whole files): Binance USD-M
and spot lines around the first REST snapshot, the first LOBSTER GOOG messages with their
orderbook rows cut to two levels, the first Databento ES MBO records after the metadata, and
hftbacktest rows written from the Binance events by `to_hftbacktest_events`. tardis has no
capture in the shared data: its seeds are the unit tests' book and trades rows. Each seed
starts with the harness's flags byte (`targets/<source>.py`). Running this again writes the
same bytes.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
sys.path.insert(0, str(HERE.parents[1]))  # tests.unit.sources: the tardis rows


def _rust_corpus() -> Any:
    """fuzz/corpus.py, the Rust targets' seed builder (by path: `corpus` here is a folder)."""
    spec = importlib.util.spec_from_file_location("rust_corpus", HERE.parent / "corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_rc = _rust_corpus()
USDM, SPOT, _lines_around_snapshot = _rc.USDM, _rc.SPOT, _rc._lines_around_snapshot

LOBSTER = "lobster-goog-2012-06-21-l10/LOBSTER_SampleFile_GOOG_2012-06-21_10.zip"
DBN = "databento-glbx-esh4-mbo-20231225/esh4-glbx-mdp3-20231225.mbo.dbn.zst"
FF = b"\x0c"  # the harnesses' file separator


def binance(data: Path) -> dict[str, bytes]:
    usdm = b"\n".join(_lines_around_snapshot(data / USDM, 4, 6)) + b"\n"
    spot = b"\n".join(_lines_around_snapshot(data / SPOT, 2, 4)) + b"\n"
    lines = usdm.splitlines(keepends=True)
    half = len(lines) // 2
    return {
        "usdm-detect-skip": b"\x00" + usdm,
        "usdm-raise-gzip-small-chunks": bytes([1 | 4 | 16 | 32]) + usdm,
        "usdm-chain-of-two": b"\x00" + b"".join(lines[:half]) + FF + b"".join(lines[half:]),
        "spot-skip": b"\x02" + spot,
        "spot-coarse-grid": bytes([2 | 64]) + spot,
        "spot-missing-snapshot-skip": bytes([2 | 8]) + b"".join(spot.splitlines(True)[:2]),
    }


def lobster(data: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(data / LOBSTER) as zf:
        names = zf.namelist()
        msg_name = next(n for n in names if "_message_" in n)
        ob_name = next(n for n in names if "_orderbook_" in n)
        messages = zf.read(msg_name).splitlines(keepends=True)[:14]
        book = zf.read(ob_name).splitlines(keepends=True)[:14]
    # Two levels a side: a row's first 8 columns (ask px, ask size, bid px, bid size, ...).
    book2 = [b",".join(row.rstrip(b"\r\n").split(b",")[:8]) + b"\n" for row in book]
    pair = b"".join(messages) + FF + b"".join(book2)
    return {
        "goog-pair": b"\x00" + pair,
        "goog-zip": b"\x01" + pair,
        "goog-zip-cut": bytes([1 | (20 << 3)]) + pair,
        "goog-messages-only-small-chunks": bytes([2 | 4]) + b"".join(messages),
        "goog-pair-no-refill": b"\x03" + pair,
    }


def databento(data: Path) -> dict[str, bytes]:
    with pa.input_stream(data / DBN, compression="zstd") as f:
        head = f.read(8)
        meta = head + f.read(int.from_bytes(head[4:8], "little"))
        records = b""
        while len(records) < 40 * 56:
            header = f.read(1)
            records += header + f.read(header[0] * 4 - 1)
    dbn = meta + records
    return {
        "esh4-skip": b"\x00" + dbn,
        "esh4-zstd-raise": b"\x03" + dbn,
        "esh4-zstd-cut-small-chunks": bytes([1 | 4 | (24 << 3)]) + dbn,
    }


def tardis() -> dict[str, bytes]:
    from tests.unit.sources.test_tardis_source import BOOK, BOOK_HEADER, TRADES, TRADES_HEADER

    book = "".join(f"{r}\n" for r in [BOOK_HEADER, *BOOK]).encode()
    trades = "".join(f"{r}\n" for r in [TRADES_HEADER, *TRADES]).encode()
    return {
        "book-trades-skip": b"\x00" + book + FF + trades,
        "book-trades-raise-gzip": b"\x03" + book + FF + trades,
        "book-before-snapshot-applied": bytes([8 | 4]) + book + FF + trades,
        "book-gzip-cut": bytes([2 | (11 << 4)]) + book + FF + trades,
    }


def hftbacktest(data: Path) -> dict[str, bytes]:
    import featureplane as fp
    from featureplane.events import message_bounds
    from featureplane.sources.hftbacktest.reader import to_hftbacktest_events

    replay = fp.read_binance(data / USDM)
    events = replay.events
    clear = int(np.flatnonzero(events["kind"] == fp.events.CLEAR)[0])
    ends = message_bounds(events)
    k = int(np.searchsorted(ends, clear, side="right"))
    snap = events[clear : int(ends[k])]
    keep = np.concatenate([snap[:1], snap[snap["side"] == 0][:4], snap[snap["side"] == 1][:4]])
    keep["flags"] = 0
    keep["flags"][-1] = fp.events.END_OF_MESSAGE
    after = events[int(ends[k]) : int(ends[k + 12])]
    rows = to_hftbacktest_events(np.concatenate([keep, after]), replay.symbols, "BTCUSDT")
    rows = rows[:40]
    buf = io.BytesIO()
    np.savez(buf, data=rows[:16])
    return {
        "usdm-rows": b"\x00" + rows.tobytes(),
        "usdm-rows-npz": b"\x01" + rows[:24].tobytes(),
        "usdm-npz-bytes": b"\x02" + buf.getvalue(),
    }


def build(data: Path) -> dict[str, dict[str, bytes]]:
    return {
        "binance": binance(data),
        "lobster": lobster(data),
        "databento": databento(data),
        "tardis": tardis(),
        "hftbacktest": hftbacktest(data),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE.parents[2] / "shared" / "data")
    args = parser.parse_args()
    total = 0
    for source, files in build(args.data).items():
        folder = CORPUS / source
        folder.mkdir(parents=True, exist_ok=True)
        for name, blob in files.items():
            (folder / name).write_bytes(blob)
            total += len(blob)
            print(f"{source}/{name}: {len(blob):,} bytes")
    print(f"{total:,} bytes in all")


if __name__ == "__main__":
    main()
