"""Build the seed corpus of the fuzz targets from the real captures: a few KB, checked in.

    .venv/bin/python fuzz/corpus.py [--data ../shared/data]

Seeds are cut from the Binance USD-M and spot BTCUSDT captures of `../shared/data` (a few lines
each, depth lists trimmed to a few levels; never whole files) and from the event rows and typed
frames featureplane makes of them. Each target reads its seeds in its own input format
(`featureplane_core::fuzz`): a Binance seed is a flags byte and capture text; an events seed
a symbol-count byte and raw rows; an engine or state seed op bytes around raw rows; an FPF1
seed one typed frame. The files are deterministic: running this again writes the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import json
from itertools import islice
from pathlib import Path

import numpy as np

import featureplane as fp
from featureplane.engine.facade import FeatureEngine
from featureplane.events import END_OF_MESSAGE, message_bounds
from featureplane.frames import wire

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
USDM = "binance-usdm-btcusdt-20240808/btcusdt_20240808.gz"
SPOT = "binance-spot-btcusdt-20240808-09/btcusdt_20240808.gz"
KEEP_LEVELS = 3


def _trim(line: bytes) -> bytes:
    """A capture line with every depth list cut to `KEEP_LEVELS` levels."""
    ts, _, body = line.partition(b" ")
    doc = json.loads(body)
    data = doc.get("data", doc)
    for key in ("b", "a", "bids", "asks"):
        if isinstance(data.get(key), list):
            data[key] = data[key][:KEEP_LEVELS]
    return ts + b" " + json.dumps(doc, separators=(",", ":")).encode()


def _lines_around_snapshot(path: Path, before: int, after: int) -> list[bytes]:
    """`before` lines before the first REST snapshot line, it, and `after` lines after it."""
    with gzip.open(path, "rb") as fh:
        lines = [line.rstrip(b"\n") for line in islice(fh, 2_000)]
    at = next(i for i, line in enumerate(lines) if b'"lastUpdateId"' in line)
    return [_trim(line) for line in lines[max(at - before, 0) : at + after + 1]]


def _whole_messages(events: np.ndarray, start_message: int, max_rows: int) -> np.ndarray:
    """Whole messages from message `start_message` on, at most `max_rows` rows."""
    ends = message_bounds(events)
    start = int(ends[start_message - 1]) if start_message else 0
    stop = start
    for end in ends[start_message:]:
        if end - start > max_rows:
            break
        stop = int(end)
    return events[start:stop]


def _snapshot_message(events: np.ndarray) -> int:
    """Index of the first snapshot message (the one holding a CLEAR row)."""
    ends = message_bounds(events)
    clear = int(np.flatnonzero(events["kind"] == fp.events.CLEAR)[0])
    return int(np.searchsorted(ends, clear, side="right"))


def _snapshot_rows(events: np.ndarray, per_side: int) -> np.ndarray:
    """The first snapshot: its CLEAR row and the best `per_side` levels a side."""
    ends = message_bounds(events)
    k = _snapshot_message(events)
    first = events[int(ends[k - 1]) if k else 0 : int(ends[k])]
    bids = first[first["side"] == fp.events.BID][:per_side]
    asks = first[first["side"] == fp.events.ASK][:per_side]
    rows = np.concatenate([first[:1], bids, asks])
    rows["flags"] = 0
    rows["flags"][-1] = END_OF_MESSAGE
    return rows


def _raw_op(rows: np.ndarray) -> bytes:
    """The engine and state targets' op for raw rows: 'rows' (0), 'raw' (0), count - 1."""
    assert 1 <= len(rows) <= 48, len(rows)
    return bytes([0, 0, len(rows) - 1]) + rows.tobytes()


def build(data: Path) -> dict[str, dict[str, bytes]]:
    usdm_lines = _lines_around_snapshot(data / USDM, 6, 8)
    spot_lines = _lines_around_snapshot(data / SPOT, 3, 6)
    seeds: dict[str, dict[str, bytes]] = {"binance": {}, "events": {}, "engine": {},
                                          "state": {}, "fpf1": {}, "plan": {},
                                          "plan_json": {}, "plan_state": {}}  # fmt: skip
    text = b"\n".join(usdm_lines) + b"\n"
    seeds["binance"]["usdm-around-snapshot"] = bytes([0b0000_0011]) + text
    seeds["binance"]["usdm-stop-on-skip"] = bytes([0b1000_0011]) + text[: len(text) * 2 // 3]
    seeds["binance"]["spot-around-snapshot"] = bytes([0b0000_0010]) + b"\n".join(spot_lines)

    replay = fp.read_binance(data / USDM)
    events = replay.events
    snapshot = _snapshot_rows(events, 5)
    after = _snapshot_message(events) + 1
    diffs = _whole_messages(events, after, 40)
    later = _whole_messages(events, after + 400, 24)
    seeds["events"]["usdm-snapshot"] = b"\x01" + snapshot.tobytes()
    seeds["events"]["usdm-diffs"] = b"\x01" + diffs.tobytes()
    seeds["events"]["usdm-diffs-two-symbols"] = b"\x02" + later.tobytes()

    # n_symbols 1, no stale rule; the snapshot, diffs, a checkpoint (op 6), more diffs.
    seeds["engine"]["usdm-snapshot-diffs-checkpoint"] = (
        b"\x00\x00" + _raw_op(snapshot) + _raw_op(diffs) + b"\x06" + _raw_op(later)
    )
    seeds["engine"]["usdm-reset-between"] = (
        b"\x00\x00" + _raw_op(snapshot) + b"\x05\x00" + _raw_op(diffs)
    )
    # The plan target reads the engine target's input with a source-depth byte after the
    # stale-rule byte (0: every level).
    for name, seed in seeds["engine"].items():
        seeds["plan"][name] = seed[:2] + b"\x00" + seed[2:]
    # The plan_json target: compiled plans as their canonical text.
    from featureplane.features.plan import builtin_plan_text, plan_of
    from featureplane.features.resolve import resolve_feature_set

    examples = Path(__file__).resolve().parents[1] / "examples" / "feature-sets"
    research = resolve_feature_set(examples / "research_v1.toml")
    seeds["plan_json"]["lob_shared_v1"] = builtin_plan_text().encode()
    seeds["plan_json"]["research_v1"] = plan_of(research).canonical_json().encode()
    # The state target: raw rows for the source engine, then field overwrites.
    seeds["state"]["usdm-counts"] = (
        bytes([0, len(snapshot) - 1]) + snapshot.tobytes() + bytes([2, 4, 0, 3, 1, 5])
    )
    seeds["state"]["usdm-sums-and-nans"] = (
        bytes([0, len(diffs) - 1]) + diffs.tobytes() + bytes([3, 6, 6, 5, 5, 9, 1, 11, 2])
    )
    # The plan_state target: batches - 1, raw-row batches, then overwrites (count, and per
    # overwrite the value's index as 8 bytes, an edge-value byte and an op byte).
    batches = bytes([1, 0, len(snapshot) - 1]) + snapshot.tobytes()
    batches += bytes([0, len(diffs) - 1]) + diffs.tobytes()
    seeds["plan_state"]["usdm-snapshot-diffs"] = batches + bytes([0])
    overwrites = b"".join(
        k.to_bytes(8, "little") + bytes(ops)
        for k, ops in ((40, [2, 0]), (300, [0, 2]), (900, [1, 4, 0]))
    )
    seeds["plan_state"]["usdm-overwrites"] = batches + bytes([3]) + overwrites

    engine = FeatureEngine(replay.symbols, backend="python")
    batch = engine.process_batch(events[: int(message_bounds(events)[40])])
    records = wire.batch_to_records(batch)
    for i in (0, 1, len(records) - 1):
        seeds["fpf1"][f"usdm-frame-{i}"] = records[i : i + 1].tobytes()
    return seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    args = parser.parse_args()
    total = 0
    for target, files in build(args.data).items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, blob in files.items():
            (folder / name).write_bytes(blob)
            total += len(blob)
            print(f"{target}/{name}: {len(blob):,} bytes")
    print(f"{total:,} bytes in all")


if __name__ == "__main__":
    main()
