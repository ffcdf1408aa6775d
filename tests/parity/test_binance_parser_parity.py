"""The Rust Binance parser against the Python reference (`SymbolChain`): the same chunks of
events and book tickers, the same `BinanceStats` (skip reasons, line numbers, examples with
their detail text), the same exceptions with the same `file:line`, on the real captures, on
every bad-input case of the unit tests, on hand-picked edge cases and on generated lines."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from featureplane.errors import (
    BackendUnavailableError,
    FeatureplaneError,
    RustBackendWarning,
    SourceFormatError,
)
from featureplane.instruments import InstrumentSpec
from featureplane.sources import BinanceReader, read_binance
from featureplane.sources.binance.stats import BinanceStats
from tests.support.datapaths import shared_data
from tests.support.rust import require_rust
from tests.unit.sources.test_binance_source import (
    BAD_LINES,
    GOOD_HEAD,
    GOOD_TAIL,
    T0,
    _truncated,
    line,
    spot_diff,
    spot_snapshot,
    spot_trade,
    um_bbo,
    um_diff,
    um_snapshot,
    um_trade,
    wrap,
    write,
)


@pytest.fixture(autouse=True)
def _rust_parser() -> None:
    require_rust("parser")


# ----- running both parsers -------------------------------------------------------------------


@dataclass
class Outcome:
    """Everything one read shows: chunks (copied), stats, the exception if one ended it."""

    chunks: list[tuple[NDArray[Any], NDArray[Any]]]
    stats: BinanceStats | None
    error: BaseException | None


def run(paths: Any, parser: str, **kwargs: Any) -> Outcome:
    chunks: list[tuple[NDArray[Any], NDArray[Any]]] = []
    reader = None
    try:
        reader = BinanceReader(paths, parser=parser, **kwargs)  # type: ignore[arg-type]
        # extend keeps the chunks yielded before an exception.
        chunks.extend((c.events.copy(), c.book_tickers.copy()) for c in reader.chunks())
    except FeatureplaneError as exc:
        return Outcome(chunks, None if reader is None else reader.stats, exc)
    return Outcome(chunks, reader.stats, None)


def assert_same(paths: Any, **kwargs: Any) -> Outcome:
    """Read with both parsers; assert they agree in every respect; return the Rust outcome."""
    ref = run(paths, "python", **kwargs)
    rust = run(paths, "rust", **kwargs)
    assert type(rust.error) is type(ref.error), (ref.error, rust.error)
    if ref.error is not None:
        assert str(rust.error) == str(ref.error)
        for attr in ("path", "line", "reason"):
            assert getattr(rust.error, attr, None) == getattr(ref.error, attr, None)
    assert len(rust.chunks) == len(ref.chunks)
    for (ev_r, bbo_r), (ev_p, bbo_p) in zip(rust.chunks, ref.chunks, strict=True):
        assert ev_r.dtype == ev_p.dtype and bbo_r.dtype == bbo_p.dtype
        assert np.array_equal(ev_r, ev_p)
        assert np.array_equal(bbo_r, bbo_p)
    assert rust.stats == ref.stats
    return rust


# ----- real captures ----------------------------------------------------------------------------

CAPTURES = {
    "usdm_btcusdt": ["binance-usdm-btcusdt-20240808"],
    "usdm_ethusdt": ["binance-usdm-ethusdt-20240808"],
    "spot_btcusdt_chain": ["binance-spot-btcusdt-20240808-09"],
    "usdm_btc_and_eth": ["binance-usdm-btcusdt-20240808", "binance-usdm-ethusdt-20240808"],
}


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_real_captures_agree(name: str) -> None:
    paths = [shared_data(folder) for folder in CAPTURES[name]]
    rust = assert_same(paths)
    assert rust.error is None and rust.stats is not None
    assert rust.stats.events > 300_000 and rust.stats.skipped == {}
    # Chunk boundaries too: a small chunk size cuts the stream in many more places.
    assert_same(paths, chunk_rows=5_000)


@pytest.mark.realdata
def test_real_capture_parsers_recorded() -> None:
    path = shared_data("binance-usdm-btcusdt-20240808")
    assert BinanceReader(path).parsers == {"BTCUSDT": "rust"}  # auto: Rust where built
    assert BinanceReader(path, parser="python").parsers == {"BTCUSDT": "python"}


# ----- the unit tests' bad input, both error modes ----------------------------------------------


@pytest.mark.parametrize("errors", ["skip", "raise"])
@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_lines_agree(tmp_path: Path, case: str, errors: str) -> None:
    path = write(tmp_path / "btc.gz", [*GOOD_HEAD, BAD_LINES[case][1], *GOOD_TAIL])
    rust = assert_same(path, errors=errors)
    reason = BAD_LINES[case][0]
    if errors == "skip":
        assert rust.stats is not None and rust.stats.skipped == {reason: 1}
    else:
        assert rust.error is not None and f":3: {reason}" in str(rust.error)


@pytest.mark.parametrize("errors", ["skip", "raise"])
def test_truncated_and_corrupt_gzip_agree(tmp_path: Path, errors: str) -> None:
    path, _ = _truncated(tmp_path)
    assert_same(path, errors=errors)
    lines = [*GOOD_HEAD, *GOOD_TAIL]
    blob = bytearray(gzip.compress("".join(f"{x}\n" for x in lines).encode()))
    blob[-8:-4] = bytes(b ^ 0xFF for b in blob[-8:-4])
    corrupt = tmp_path / "corrupt.gz"
    corrupt.write_bytes(bytes(blob))
    assert_same(corrupt, errors=errors)
    middle = bytearray(gzip.compress("".join(f"{x}\n" for x in GOOD_HEAD * 50).encode()))
    middle[len(middle) // 2] ^= 0x55
    damaged = tmp_path / "damaged.gz"
    damaged.write_bytes(bytes(middle))
    assert_same(damaged, errors=errors)


@pytest.mark.parametrize("errors", ["skip", "raise"])
@pytest.mark.parametrize("missing", ["skip", "raise"])
def test_missing_snapshot_agrees(tmp_path: Path, errors: str, missing: str) -> None:
    path = write(
        tmp_path / "btc.gz",
        [um_diff(T0, 1, 2, 0), um_trade(T0 + 1, 1, m=False), um_diff(T0 + 2, 3, 4, 2)],
    )
    assert_same(path, errors=errors, on_missing_snapshot=missing)


def test_sync_rule_chains_and_merge_agree(tmp_path: Path) -> None:
    empty_diff = line(
        T0 + 5,
        wrap(
            "btcusdt@depth@0ms",
            {"e": "depthUpdate", "E": 1, "T": 1, "s": "BTCUSDT", "U": 106, "u": 108, "pu": 105}
            | {"b": [], "a": []},
        ),
    )
    first = write(
        tmp_path / "a.gz",
        [
            um_diff(T0, 80, 90, 79),
            um_trade(T0 + 1, 1, m=False),
            um_diff(T0 + 2, 91, 99, 90),
            um_diff(T0 + 3, 100, 105, 99),
            um_snapshot(T0 + 4, 100),
            um_bbo(T0 + 4, 101),
            empty_diff,
            um_diff(T0 + 6, 109, 112, 108),
            um_diff(T0 + 7, 120, 130, 119),  # a gap inside the file
        ],
    )
    gap = write(tmp_path / "b.gz", [um_diff(T0 + 10, 140, 150, 139), um_snapshot(T0 + 11, 500)])
    eth = write(tmp_path / "eth.gz", [um_trade(T0 + 3, 9, m=True, sym="ETHUSDT", px="2500.01")])
    spot_a = write(tmp_path / "s1.gz", [spot_diff(T0, 190, 200), spot_snapshot(T0 + 1, 200)])
    spot_b = write(tmp_path / "s2.gz", [spot_diff(T0 + 9, 207, 210), spot_trade(T0 + 9, 3, True)])
    for chunk_rows in (1, 3, 1 << 16):
        rust = assert_same([gap, eth, first], chunk_rows=chunk_rows)
        assert rust.stats is not None and rust.stats.warnings == {"chain_gap": 1}
        assert_same([spot_b, spot_a], chunk_rows=chunk_rows)
    late = write(tmp_path / "late.gz", [um_snapshot(T0, 100), um_diff(T0 + 1, 120, 130, 119)])
    rust = assert_same(late)
    assert rust.stats is not None and rust.stats.warnings == {"sync_not_straddled": 1}


def test_many_skips_keep_five_examples(tmp_path: Path) -> None:
    bad = [line(T0 + i, '{"stream": 1') for i in range(12)]
    path = write(tmp_path / "btc.gz", [*GOOD_HEAD, *bad, *GOOD_TAIL])
    rust = assert_same(path)
    assert rust.stats is not None and rust.stats.skipped == {"bad_json": 12}
    assert len(rust.stats.examples["bad_json"]) == 5


# ----- edge cases of JSON, Python semantics and decimals ----------------------------------------

DIFF_HEAD = '{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":106,"u":107,"pu":105'
STREAM = '{"stream":"btcusdt@depth@0ms","data":'


def raw_diff(rest: str) -> str:
    """A wrapped diff whose data object continues with `rest` (after `pu`)."""
    return f"{T0 + 10} {STREAM}{DIFF_HEAD}{rest}}}}}"


def _bound_lines() -> dict[str, str]:
    """Levels at events.MAX_ABS_UNITS = 2^48 steps (tick 0.1, lot 0.001) and one step past it,
    written for the short path, the general one (a sign; more than 19 digits) and the
    resolver's (an exponent)."""
    out = {}
    for field, at, over in (
        ("px", "28147497671065.6", "28147497671065.7"),
        ("qty", "281474976710.656", "281474976710.657"),
    ):
        for where, text in (("at", at), ("over", over)):
            whole, frac = text.split(".")
            forms = {
                "": text,
                "_signed": "+" + text,
                "_20_digits": "00000" + text,
                "_exponent": f"{whole}{frac}E-{len(frac)}",
            }
            for form, value in forms.items():
                level = [value, "1.000"] if field == "px" else ["61800.2", value]
                out[f"bound_{field}_{where}{form}"] = raw_diff(
                    f',"b":[["{level[0]}","{level[1]}"]],"a":[]'
                )
    return out


BOUND_LINES = _bound_lines()

EDGE_LINES: dict[str, str | bytes] = {
    "duplicate_key_last_wins": raw_diff(',"u":100,"b":[["1","1"]],"a":[],"u":107'),
    "duplicate_key_bad_then_good": raw_diff(',"b":"x","a":[],"b":[["61800.2","1.000"]]'),
    "duplicate_key_good_then_bad": raw_diff(',"b":[["61800.2","1.000"]],"a":[],"b":7'),
    "escaped_key": raw_diff(',"\\u0062":[["61800.2","1.000"]],"a":[]'),
    "escaped_value": raw_diff(',"b":[["61800.\\u0032","1.000"]],"a":[]'),
    "escaped_stream": f'{T0} {{"stream":"btcusdt\\u0040trade","data":{{"e":"trade","t":1,'
    '"p":"61800.2","q":"0.001","m":true,"T":5}}',
    "number_px": raw_diff(',"b":[[61800.2,"1.000"]],"a":[]'),
    "int_px": raw_diff(',"b":[[61800,"1.000"]],"a":[]'),
    "null_px": raw_diff(',"b":[[null,"1.000"]],"a":[]'),
    "list_px_after_off_grid": raw_diff(',"b":[["61800.25","1.000"],[[1],"1.000"]],"a":[]'),
    "off_grid_px_before_bad_qty": raw_diff(',"b":[["61800.25",[]]],"a":[]'),
    "bad_qty_after_good_px": raw_diff(',"b":[["61800.2",{}]],"a":[]'),
    "long_level": raw_diff(',"b":[["61800.2","1.000","x",[]]],"a":[]'),
    "empty_level": raw_diff(',"b":[[]],"a":[]'),
    "nested_garbage": raw_diff(',"b":[["61800.2","1.000"]],"a":[],"z":[[[[{"y":[1,{}]}]]]]'),
    "deep_1024": raw_diff(',"b":[],"a":[],"z":' + "[" * 1021 + "]" * 1021),
    "deep_1025": raw_diff(',"b":[],"a":[],"z":' + "[" * 1022 + "]" * 1022),
    "float_id": raw_diff(',"b":[],"a":[["61800.3","1.000"]]').replace('"u":107', '"u":107.0'),
    "bool_id": raw_diff(',"b":[],"a":[]').replace('"u":107', '"u":true'),
    "u64_id": raw_diff(',"b":[],"a":[]').replace('"u":107', '"u":18446744073709551615'),
    "u65_id": raw_diff(',"b":[],"a":[]').replace('"u":107', '"u":18446744073709551616'),
    "inf_number": raw_diff(',"b":[],"a":[],"z":1e999'),
    "tiny_number": raw_diff(',"b":[],"a":[["61800.3","1.000"]],"z":1e-999'),
    "null_T_uses_E": raw_diff(',"b":[],"a":[["61800.3","1.000"]]').replace('"T":1', '"T":null'),
    "null_symbol": raw_diff(',"b":[],"a":[["61800.3","1.000"]]').replace(
        '"s":"BTCUSDT"', '"s":null'
    ),
    "number_symbol": raw_diff(',"b":[],"a":[]').replace('"s":"BTCUSDT"', '"s":5'),
    "stream_null_snapshot": f'{T0} {{"stream":null,"lastUpdateId":104,"bids":[["61800.2",'
    '"1.000"]],"asks":[]}',
    "stream_number": f'{T0} {{"stream":5,"data":{{}}}}',
    "unicode_stream_prefix": f'{T0} {{"stream":"btcu\u017fdt@trade","data":{{"e":"trade",'
    '"t":1,"p":"61800.2","q":"0.001","m":false}}',
    "uppercase_stream": f'{T0} {{"stream":"BTCUSDT@bookTicker","data":{{"u":1,"b":"61800.2",'
    '"B":"1.000","a":"61800.3","A":"2.000"}}',
    "raw_book_ticker_keys": f'{T0} {{"u":1,"s":"BTCUSDT","b":"61800.2","a":"61800.3",'
    '"B":"1","A":"2"}',
    "raw_book_ticker_null_e": f'{T0} {{"e":null,"u":1,"s":"BTCUSDT","b":"61800.2",'
    '"a":"61800.3","B":"1","A":"2"}',
    "depth20": f'{T0} {{"stream":"btcusdt@depth20@100ms","data":{{"e":"depthUpdate"}}}}',
    "bom": b"\xef\xbb\xbf" + f"{T0} {{}}".encode(),
    "invalid_utf8": f"{T0} ".encode() + b'{"stream":"btcusdt@trade\xff","data":{}}',
    "invalid_utf8_in_head": b"17\xff23 {}",
    "lone_surrogate": raw_diff(',"b":[],"a":[],"z":"\\ud800"'),
    "control_char": raw_diff(',"b":[],"a":[],"z":"\x01"'),
    "crlf": raw_diff(',"b":[["61800.2","1.000"]],"a":[]') + "\r",
    "two_spaces": f"{T0}  " + um_trade(0, 1, m=True).split(" ", 1)[1],
    "tab_after_ts": f"{T0}\t" + um_trade(0, 1, m=True).split(" ", 1)[1],
    "leading_zero_ts": "000" + um_trade(T0, 1, m=True),
    "max_ts": f"{(1 << 63) - 1} " + um_trade(0, 1, m=True).split(" ", 1)[1],
    "ts_over_max": f"{1 << 63} " + um_trade(0, 1, m=True).split(" ", 1)[1],
    "empty_json": f"{T0} ",
    "ts_5000_digits": "1" * 5000 + " {}",
    "ts_5000_leading_zeros": "0" * 5000 + um_trade(T0, 1, m=True),
    "px_5000_digits": raw_diff(',"b":[["' + "1" * 5000 + '","1.000"]],"a":[]'),
    "px_5000_zeros_then_one": raw_diff(',"b":[["' + "0" * 5000 + '61800.2","1.000"]],"a":[]'),
    "qty_5000_fraction_zeros": raw_diff(',"b":[["61800.2","1.' + "0" * 5000 + '"]],"a":[]'),
    "px_5000_digits_spaced": raw_diff(',"b":[[" ' + "1" * 5000 + '","1.000"]],"a":[]'),
    "px_5000_digits_signed": raw_diff(',"b":[["-.' + "1" * 5000 + '","1.000"]],"a":[]'),
    "trailing_garbage": um_trade(T0, 1, m=True) + " x",
    **BOUND_LINES,
    "bound_trade_px_over": um_trade(T0, 1, m=True, px="28147497671065.7"),
    "bound_bbo_qty_over": um_bbo(T0, 1).replace('"2.507"', '"281474976710.657"'),
    "bound_snapshot_px_over": um_snapshot(T0, 104, bids=[["28147497671065.7", "1.000"]]),
}
EXOTIC_DECIMALS = [
    "1e5", "6.18002E4", " 61800.2", "61800.2 ", "NaN", "-nan", "inf", "-Infinity", "sNaN",
    "-0", "+61800.2", ".1", "61800.", "\u0661\u0662", "61_800.2", "6__1", "_1", "", "abc",
    "1" * 25, "0." + "0" * 45 + "1", "99999999999999999999.9", "61800.2" + "0" * 45,
    "\uff16\uff11\uff18", "\u00a061800.2", "\u200961800.2\u2009", "\x1c1\x1f", "1e-1",
    "1E+99", "0e99", "-0e5", "--1", "+-1", "1.2.3", "0x10", "1,5", "١.٥",
]  # fmt: skip


@pytest.mark.parametrize("errors", ["skip", "raise"])
@pytest.mark.parametrize("case", sorted(EDGE_LINES))
def test_edge_lines_agree(tmp_path: Path, case: str, errors: str) -> None:
    bad = EDGE_LINES[case]
    text = b"".join(
        (x if isinstance(x, bytes) else x.encode()) + b"\n" for x in [*GOOD_HEAD, bad, *GOOD_TAIL]
    )
    path = tmp_path / "btc.gz"
    path.write_bytes(gzip.compress(text))
    assert_same(path, errors=errors)


@pytest.mark.parametrize("case", sorted(BOUND_LINES))
def test_bound_of_the_event_model_agrees(tmp_path: Path, case: str) -> None:
    path = write(tmp_path / "btc.gz", [*GOOD_HEAD, BOUND_LINES[case], *GOOD_TAIL])
    over = "_over" in case
    rust = assert_same(path, errors="skip")
    assert rust.stats is not None
    assert rust.stats.skipped == ({"bad_value": 1} if over else {})
    if not over:
        rows = np.concatenate([events for events, _ in rust.chunks])
        field = "px" if "_px_" in case else "qty"
        assert (1 << 48) in rows[field].tolist()
    rust = assert_same(path, errors="raise")
    if over:
        assert rust.error is not None and ":3: bad_value" in str(rust.error)
        assert "beyond 281474976710656 (2^48) grid steps" in str(rust.error)
    else:
        assert rust.error is None


@pytest.mark.parametrize("errors", ["skip", "raise"])
def test_exotic_decimals_agree(tmp_path: Path, errors: str) -> None:
    lines = list(GOOD_HEAD)
    for i, text in enumerate(EXOTIC_DECIMALS):
        lines.append(um_diff(T0 + 10 + i, 106 + i, 106 + i, 105 + i, bids=[[text, "1.000"]]))
        lines.append(um_diff(T0 + 10 + i, 106 + i, 106 + i, 105 + i, bids=[["61800.2", text]]))
        lines.append(um_trade(T0 + 10 + i, i, m=True, px=text))
    path = write(tmp_path / "btc.gz", [*lines, *GOOD_TAIL])
    rust = assert_same(path, errors=errors)
    if errors == "skip":
        assert rust.stats is not None
        assert set(rust.stats.skipped) == {"bad_value", "off_grid"}
        assert rust.stats.messages["trade"] > 5  # some exotic forms are valid prices


def test_grids_other_than_powers_of_ten(tmp_path: Path) -> None:
    lines = [
        um_snapshot(T0, 100, bids=[["61800.25", "2.50"]], asks=[["61800.75", "0.5"]]),
        um_diff(T0 + 1, 99, 105, 98, bids=[["61800.50", "1.5"], ["61800.30", "1"]]),
        um_trade(T0 + 2, 1, m=True, px="61801"),
    ]
    path = write(tmp_path / "btc.gz", lines)
    for tick, lot in (("0.25", "0.5"), ("0.05", "0.25"), ("5", "0.1"), ("1E+1", "1E-2")):
        assert_same(path, instruments=[InstrumentSpec("BTCUSDT", tick, lot)])


# ----- generated lines --------------------------------------------------------------------------

PRICES = ["61800.20", "61800.2", "61800.3", "61800.25", "-61800.2", "0.0", "1e1", "61800"]
SIZES = ["1.000", "0.000", "2.5", "-1.0", "1.0005", "NaN", "1e-3", "12345678901234567890"]
JUNK: list[Any] = [
    0, -1, 1 << 63, (1 << 64) - 1, 1 << 64, 1.5, "x", "7", [], {}, [1], {"a": 1},
    None, True, False, [["61800.2"]], [["61800.2", "1.000"]],
]  # fmt: skip
STREAMS = [
    "btcusdt@depth@0ms", "btcusdt@depth", "btcusdt@depth@100ms", "btcusdt@trade",
    "btcusdt@bookTicker", "ethusdt@trade", "btcusdt@kline_1m", "btcusdt@depth5",
    "BTCUSDT@trade", "btcusdt", "@trade",
]  # fmt: skip

ids = st.integers(90, 130)
prices = st.sampled_from(PRICES) | st.sampled_from(EXOTIC_DECIMALS)
sizes = st.sampled_from(SIZES)
levels = st.lists(st.lists(st.one_of(prices, sizes), min_size=2, max_size=2), max_size=4)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["diff", "diff", "snapshot", "trade", "bbo"]))
    if kind == "snapshot":
        return {"lastUpdateId": draw(ids), "E": 5, "T": 4, "bids": draw(levels)} | {
            "asks": draw(levels)
        }
    if kind == "diff":
        first = draw(ids)
        last = first + draw(st.integers(0, 5))
        data: dict[str, Any] = {"e": "depthUpdate", "E": 5, "T": 4, "s": "BTCUSDT"}
        data |= {"U": first, "u": last, "pu": first - draw(st.integers(1, 2))}
        data |= {"b": draw(levels), "a": draw(levels)}
        stream = "btcusdt@depth@0ms"
    elif kind == "trade":
        data = {"e": "trade", "E": 5, "T": 4, "s": "BTCUSDT", "t": draw(ids)}
        data |= {"p": draw(prices), "q": draw(sizes), "m": draw(st.booleans())}
        stream = "btcusdt@trade"
    else:
        data = {"e": "bookTicker", "u": draw(ids), "s": "BTCUSDT", "b": draw(prices)}
        data |= {"B": draw(sizes), "a": draw(prices), "A": draw(sizes), "T": 4}
        stream = "btcusdt@bookTicker"
    if draw(st.booleans()):
        stream = draw(st.sampled_from(STREAMS)) if draw(st.integers(0, 5)) == 0 else stream
        return {"stream": stream, "data": data}
    return data  # a raw payload


@st.composite
def corrupted(draw: st.DrawFn, msg: dict[str, Any]) -> dict[str, Any]:
    """The message with a member dropped, or set to another JSON value."""
    target = msg["data"] if "data" in msg and draw(st.booleans()) else msg
    key = draw(st.sampled_from([*sorted(target), "e", "s", "u", "m", "data", "stream"]))
    if draw(st.booleans()):
        target.pop(key, None)
    else:
        target[key] = draw(st.sampled_from(JUNK))
    return msg


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    msg = draw(messages())
    if draw(st.integers(0, 3)) == 0:
        msg = draw(corrupted(msg))
    # The stdlib writer takes ints past 64 bits; ensure_ascii turns non-ASCII into escapes.
    body = json.dumps(msg, separators=(",", ":"), ensure_ascii=draw(st.booleans())).encode()
    how = draw(st.integers(0, 11))
    if how == 0:  # a duplicate member: the later one wins
        dup = draw(st.sampled_from([b'"u":1,', b'"b":7,', b'"e":"trade",', b'"s":"ETHUSDT",']))
        body = body[:1] + dup + body[1:]
    elif how == 1:  # an escaped key or value
        body = body.replace(b'"u"', b'"\\u0075"', 1).replace(b'"s"', b'"\\u0073"', 1)
    elif how == 2:  # cut short
        body = body[: draw(st.integers(0, len(body)))]
    elif how == 3:  # one byte changed
        at = draw(st.integers(0, max(0, len(body) - 1)))
        byte = draw(st.sampled_from(b'{}[]",:0 \\\x00\xff-.e'))
        body = body[:at] + bytes([byte]) + body[at + 1 :]
    head = str(T0 + draw(st.integers(-5, 50))).encode()
    if draw(st.integers(0, 20)) == 0:
        head = draw(st.sampled_from([b"", b"x1", b"9" * 20, b"12 3", b"-5"]))
    return head + b" " + body


@st.composite
def captures(draw: st.DrawFn) -> list[list[bytes]]:
    """One or two files of the same symbol (a chain), each a list of lines."""
    first = draw(st.lists(lines(), min_size=1, max_size=25))
    if draw(st.booleans()):
        return [first]
    return [first, draw(st.lists(lines(), min_size=1, max_size=10))]


def _files(tmp: Path, capture: list[list[bytes]]) -> list[Path]:
    anchor = line(T0 - 1, wrap("btcusdt@trade", {"e": "trade", "t": 0, "p": "1", "q": "1"}))
    paths = []
    for i, body in enumerate(capture):
        # Every file starts with a line naming the symbol (else it is not read at all).
        text = b"".join(x + b"\n" for x in [anchor.encode(), *body])
        path = tmp / f"btc{i}.gz"
        path.write_bytes(gzip.compress(text))
        paths.append(path)
    return paths


@settings(
    max_examples=int(os.environ.get("FEATUREPLANE_PARITY_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(capture=captures(), errors=st.sampled_from(["skip", "raise"]), spot=st.booleans())
@example(
    capture=[[b'1723161255000000000 {"u":1,"u":2,"s":"BTCUSDT","b":"1.0","a":[]}']],
    errors="skip",
    spot=False,
)
def test_generated_lines_agree(capture: list[list[bytes]], errors: str, spot: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = _files(Path(tmp), capture)
        assert_same(
            paths,
            errors=errors,
            market="spot" if spot else "usdm",
            instruments=[InstrumentSpec("BTCUSDT", "0.1", "0.001")],
            on_missing_snapshot="skip",
            chunk_rows=7,
        )


# ----- the parser choice and the boundary -------------------------------------------------------


def test_parser_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "btc.gz", GOOD_HEAD)
    with pytest.raises(ValueError, match="parser"):
        read_binance(path, parser="fast")  # type: ignore[arg-type]
    from featureplane import _rust

    monkeypatch.setattr(_rust, "rust_available", lambda kind="engine": False)
    with pytest.raises(BackendUnavailableError, match="Rust Binance parser"):
        read_binance(path, parser="rust")
    monkeypatch.setattr(_rust, "_warned", set())
    with pytest.warns(RustBackendWarning, match="Rust Binance parser"):
        assert BinanceReader(path).parsers == {"BTCUSDT": "python"}  # auto falls back


def test_panic_never_crosses_and_poisons() -> None:
    from featureplane import _core

    chain = _core.BinanceChain(
        symbol="BTCUSDT",
        symbol_id=0,
        usdm=True,
        px_grid=(1, 1),
        qty_grid=(1, 3),
        chunk_rows=10,
        stop_on_skip=False,
        px_cache={},
        qty_cache={},
    )
    with pytest.raises(BaseException) as info:
        chain._debug_panic()
    assert type(info.value).__name__ == "PanicException"  # a BaseException: a bug, not input
    with pytest.raises(FeatureplaneError, match="internal error"):
        chain.feed(b"1 {}\n", 0)


def test_failing_decimal_resolver_stops_the_read() -> None:
    from featureplane import _core

    class Broken(dict[str, int]):
        def __missing__(self, key: str) -> int:
            raise RuntimeError(f"cache broke on {key!r}")

    chain = _core.BinanceChain(
        symbol="BTCUSDT",
        symbol_id=0,
        usdm=True,
        px_grid=(1, 1),
        qty_grid=(1, 3),
        chunk_rows=10,
        stop_on_skip=False,
        px_cache=Broken(),
        qty_cache=Broken(),
    )
    chain.start_file(0)
    trade = um_trade(T0, 1, m=True, px="1e5").encode() + b"\n"
    with pytest.raises(RuntimeError, match="cache broke on '1e5'"):
        chain.feed(trade, 0)
    plain = um_trade(T0, 2, m=True).encode() + b"\n"
    assert chain.feed(plain, 0) == (len(plain), 0)  # not poisoned: a Python error, no panic


def test_a_non_ascii_symbol_is_read_by_the_reference() -> None:
    """Case mapping beyond ASCII follows each language's Unicode version, so such a symbol is
    never matched by the Rust parser: auto picks the reference, "rust" refuses."""
    from featureplane.sources.binance.rust import use_rust

    ascii_spec = InstrumentSpec("BTCUSDT", "0.1", "0.001")
    other = InstrumentSpec("\ua7cdUSDT", "0.1", "0.001")
    assert use_rust("auto", ascii_spec) and not use_rust("auto", other)
    with pytest.raises(SourceFormatError, match="non-ASCII symbol"):
        use_rust("rust", other)
