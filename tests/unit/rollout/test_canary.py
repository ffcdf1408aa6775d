"""The canary gate: criteria, the metrics it reads (text, files, a URL on 127.0.0.1), the
decision rules and the exit codes of `featureplane canary evaluate`."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from featureplane.cli import main
from featureplane.errors import ConfigError, MetricsSourceError
from featureplane.rollout.canary import (
    Criteria,
    Decision,
    Metrics,
    evaluate,
    load_criteria,
    parse_criteria,
    read_metrics,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "deploy" / "canary" / "criteria.toml"
BUCKETS = (1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 1e-3)


def _exposition(
    *, compared: int, mismatched: int = 0, decisions_bad: int = 0, latencies: np.ndarray,
    lag: float, frames: int,
) -> str:  # fmt: skip
    """A runtime's exposition, made by prometheus_client itself."""
    reg = CollectorRegistry()
    Counter("featureplane_parity_frames_compared", "", registry=reg).inc(compared)
    Counter("featureplane_parity_mismatched_frames", "", registry=reg).inc(mismatched)
    dec = Counter("featureplane_decision_parity_mismatches", "", ["strategy"], registry=reg)
    dec.labels("mm").inc(decisions_bad)
    hist = Histogram("featureplane_stage_latency_seconds", "", ["stage"], buckets=BUCKETS,
                     registry=reg)  # fmt: skip
    for x in latencies:
        hist.labels("features").observe(float(x))
    Gauge("featureplane_lag_seconds", "", registry=reg).set(lag)
    Counter("featureplane_frames", "", ["symbol"], registry=reg).labels("BTCUSDT").inc(frames)
    return generate_latest(reg).decode()


RNG = np.random.default_rng(11)
FAST = RNG.uniform(2e-6, 9e-6, 5000)
SLOW = FAST * 4


def test_the_example_criteria_load() -> None:
    c = load_criteria(EXAMPLE)
    assert c.parity.max_mismatched_frames == 0 and c.latency.stage == "features"
    assert c.lag.min_frames == 1000


def test_bad_criteria_report_every_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_criteria({"parity": {"max_mismatched_frames": "0", "nope": 1},
                        "latency": {"quantile": 1.5}, "extra": {}})  # fmt: skip
    problems = info.value.problems
    assert len(problems) == 3  # the quantile is checked once the types are right
    assert any("nope" in p for p in problems) and any("extra" in p for p in problems)
    bad = tmp_path / "c.toml"
    bad.write_text("[parity\n")
    assert main(["canary", "evaluate", "--metrics", str(bad), "--criteria", str(bad)]) == 1


def test_quantile_matches_the_observations() -> None:
    m = Metrics.from_text(_exposition(compared=0, latencies=FAST, lag=0.0, frames=0))
    q, n = m.quantile("featureplane_stage_latency_seconds", 0.5, stage="features")
    assert n == len(FAST)
    # Within the bucket that holds the true median (5e-6 .. 1e-5 here).
    true = float(np.quantile(FAST, 0.5))
    assert 2e-6 <= q <= 1e-5 and abs(q - true) < 5e-6
    assert np.isnan(m.quantile("featureplane_stage_latency_seconds", 0.5, stage="x")[0])


def _metrics(**kw: object) -> Metrics:
    base: dict[str, object] = {"compared": 5000, "latencies": FAST, "lag": 0.01, "frames": 5000}
    base.update(kw)
    return Metrics.from_text(_exposition(**base))  # type: ignore[arg-type]


def test_decisions() -> None:
    crit = Criteria()
    good, base = _metrics(), _metrics()
    assert evaluate(crit, good, base).decision == Decision.PROMOTE
    # Any parity mismatch rolls back at once, whatever else is known.
    v = evaluate(crit, _metrics(mismatched=1), None)
    assert v.decision == Decision.ROLLBACK and "parity" in v.reasons[0]
    assert evaluate(crit, _metrics(decisions_bad=1), base).decision == Decision.ROLLBACK
    # Too little evidence is HOLD, never PROMOTE.
    assert evaluate(crit, good, None).decision == Decision.HOLD
    assert evaluate(crit, _metrics(compared=10), base).decision == Decision.HOLD
    few = _metrics(latencies=FAST[:100])
    assert evaluate(crit, few, base).decision == Decision.HOLD
    assert evaluate(crit, _metrics(frames=10), base).decision == Decision.HOLD
    # Slower than the baseline of the same window: rolled back.
    v = evaluate(crit, _metrics(latencies=SLOW), base)
    assert v.decision == Decision.ROLLBACK and "latency" in v.reasons[0]
    assert evaluate(crit, _metrics(lag=0.5), base).decision == Decision.ROLLBACK


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A directory of expositions served over HTTP on 127.0.0.1 (an ephemeral port)."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(tmp_path), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_cli_exit_codes_on_files_and_urls(
    served: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = served
    files = {
        "good": _exposition(compared=5000, latencies=FAST, lag=0.01, frames=5000),
        "bad": _exposition(compared=5000, mismatched=3, latencies=FAST, lag=0.01, frames=5000),
        "short": _exposition(compared=5, latencies=FAST[:10], lag=0.01, frames=5),
    }
    for name, text in files.items():
        (root / f"{name}.prom").write_text(text)
    crit = str(EXAMPLE)

    def gate(metrics: str, baseline: str | None = None) -> int:
        extra = ["--baseline", baseline] if baseline else []
        return main(["canary", "evaluate", "--metrics", metrics, "--criteria", crit, *extra])

    assert gate(f"{url}/good.prom", f"{url}/good.prom") == 0
    assert gate(str(root / "good.prom"), str(root / "good.prom")) == 0
    assert gate(f"{url}/good.prom") == 10  # no baseline
    assert gate(f"{url}/short.prom", f"{url}/good.prom") == 10
    assert gate(f"{url}/bad.prom", f"{url}/good.prom") == 20
    assert gate(str(root / "bad.prom")) == 20
    out = capsys.readouterr().out
    assert "ROLLBACK" in out and "3 mismatched frames" in out
    # Unreadable sources are errors (exit 1), never a decision.
    assert gate(f"{url}/missing.prom") == 1
    assert gate(str(root / "missing.prom")) == 1
    (root / "junk.prom").write_text("this is { not an exposition\n")
    with pytest.raises(MetricsSourceError):
        read_metrics(str(root / "junk.prom"))
    assert "error" in capsys.readouterr().err
