"""The fault spec and the wire classification the sync rule reads without a JSON parse."""

from __future__ import annotations

import pytest

from featureplane.errors import VenueError
from featureplane.live.venue.faults import parse_faults
from featureplane.live.wire import Kind, classify, combined_path, stream_names


def test_fault_spec_round_trip_and_errors() -> None:
    spec = (
        "drop@5:BTCUSDT,dup@6,reorder@7,disconnect@8:40,stall@9:1.5,shutdown@10,slow@11:4096,"
        "snapshot-old@12:ETHUSDT,snapshot-new@13:BTCUSDT:5"
    )
    plan = parse_faults(spec)
    assert len(plan.faults) == 9
    assert str(plan) == spec
    assert plan.due("drop", 4, "BTCUSDT") is None
    assert plan.due("drop", 5, "ETHUSDT") is None
    assert plan.due("drop", 9, "BTCUSDT") is not None
    with pytest.raises(VenueError) as info:
        parse_faults("nope@1,drop,stall@3,slow@1:0")
    assert str(info.value).count("'") >= 8  # every bad item named


def test_classify() -> None:
    diff = (
        b'{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT",'
        b'"U":5,"u":9,"pu":4,"b":[],"a":[]}}'
    )
    trade = (
        b'{"stream":"ethusdt@trade","data":{"e":"trade","E":1,"T":2,"s":"ETHUSDT","t":77,'
        b'"p":"1","q":"1","m":true}}'
    )
    assert classify(diff) == classify(diff)
    c = classify(diff)
    assert (c.kind, c.symbol, c.msg_id) == (Kind.DIFF, "BTCUSDT", 9)
    c = classify(trade)
    assert (c.kind, c.symbol, c.msg_id) == (Kind.TRADE, "ETHUSDT", 77)
    assert classify(b'{"result":null,"id":3}').kind == Kind.CONTROL
    assert classify(b'{"stream":"btcusdt@kline_1m","data":{}}').kind == Kind.OTHER
    assert classify(b' { "stream" : "btcusdt@trade", "data": {"t": 5}}').msg_id == 5
    names = stream_names("BTCUSDT", "spot", trades=True, book_ticker=True)
    assert names == ["btcusdt@depth@100ms", "btcusdt@trade", "btcusdt@bookTicker"]
    assert combined_path(names[:1]) == "/stream?streams=btcusdt@depth@100ms"
