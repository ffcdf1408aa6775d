"""A ratio column anchored on several rows reads against the fastest of them."""

from __future__ import annotations

from featureplane.bench.timing import Row, anchor_row, format_table


def test_a_tuple_anchor_is_the_fastest_row_present() -> None:
    rows = [
        Row("ours", 1_000, [1e-3], correct=True),
        Row("slow loop", 1_000, [4e-3], correct=True),
        Row("fast loop", 1_000, [2e-3], correct=True),
    ]
    assert anchor_row(rows, ("slow loop", "fast loop")) is rows[2]
    assert anchor_row(rows, "slow loop") is rows[1]
    assert anchor_row(rows, ("absent",)) is None
    table = format_table(rows, {"loops": ("slow loop", "fast loop")})
    ours = next(line for line in table.splitlines() if line.startswith("ours"))
    assert ours.split()[-1] == "2.00"
