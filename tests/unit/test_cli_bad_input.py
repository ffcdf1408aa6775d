"""The command line on bad input: one line on stderr naming the command's own flags, exit 1,
and never a check that passes over nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.sources.test_binance_source import T0, um_diff, um_snapshot, write
from tests.unit.sources.test_lobster_source import write_pair
from tests.unit.test_cli import assert_one_line_error, run


def test_library_keywords_become_flags() -> None:
    from featureplane.cli import cli_wording

    text = (
        "pass on_missing_snapshot='skip' to drop them; pass market='usdm' or market='spot'; "
        "use parser='python'; use errors='raise'; give instruments=; messages_only=True"
    )
    assert cli_wording(text) == (
        "pass --on-missing-snapshot skip to drop them; pass --market usdm or --market spot; "
        "use --parser python; use --errors raise; give --instrument SYMBOL:TICK:LOT; "
        "--messages-only"
    )
    assert cli_wording("my_instruments=3, roi=(1, 2)") == "my_instruments=3, roi=(1, 2)"


def test_a_missing_snapshot_suggests_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "btc.gz", [um_diff(T0, 1, 5, 0)])
    out = str(tmp_path / "o.parquet")
    code, _, err = run(capsys, "replay", str(path), "--out", out, "--no-progress")
    assert_one_line_error(code, err)
    assert "--on-missing-snapshot skip" in err and "on_missing_snapshot=" not in err


def test_a_grid_too_coarse_is_an_error_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "btc.gz", [um_snapshot(T0, 100), um_diff(T0 + 1, 99, 105, 98)])
    out = tmp_path / "o.parquet"
    grid = ["--instrument", "BTCUSDT:0.1:0.01", "--no-progress"]
    code, _, err = run(capsys, "replay", str(path), "--out", str(out), *grid)
    assert_one_line_error(code, err)
    assert "off its grid" in err and "--instrument SYMBOL:TICK:LOT" in err
    assert not out.exists()


def test_errors_skip_is_refused_for_lobster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    msg, ob = write_pair(tmp_path)
    out = tmp_path / "o.parquet"
    code, _, err = run(capsys, "replay", str(msg), str(ob), "--out", str(out), "--errors", "skip")
    assert_one_line_error(code, err)
    assert "no skip mode (--errors skip)" in err and "use --errors raise" in err


@pytest.mark.parametrize("content", [b"hello world\n", b""])
def test_parity_on_a_file_it_cannot_read_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_bytes(content)
    code, out, err = run(capsys, "parity", str(junk), "--generated", "0")
    assert_one_line_error(code, err)
    assert "junk.txt" in err and "mismatches" not in out


def test_parity_on_a_capture_with_nothing_readable_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Binance-looking lines (the format is detected), none of which is a message.
    path = write(tmp_path / "btc.gz", [f'{T0} {{"stream":"btcusdt@trade","data":{{"e":"trade"}}}}'])
    code, out, err = run(capsys, "parity", str(path), "--generated", "0")
    assert_one_line_error(code, err)
    assert "nothing to compare" in err and "0 mismatches" not in out
