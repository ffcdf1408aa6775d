"""A real Prometheus server for the metrics tests, and `promtool`: Debian's `prometheus`
package (`.ci/run` installs it). Absent binary: the calling test skips with the reason, and
fails under `CI=true`.

The server listens on 127.0.0.1 and a free port, keeps its storage in the test's tmp dir,
loads the runtime's alert rules from `deploy/prometheus/rules/`, scrapes every 200 ms and finds
its targets in a file (`file_sd`), so a test adds a live run's `/metrics` port as soon as the
run has bound it. Every wait is bounded.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.rust import on_ci

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
START_TIMEOUT_S = 30.0
INTERVAL = "200ms"


def require_binary(name: str) -> str:
    """The path of `name` (prometheus, promtool); skip without it, fail under CI=true."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (apt-get install prometheus)"
        if on_ci():
            pytest.fail(f"{reason}; CI=true requires it")
        pytest.skip(reason)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Prometheus:
    """A running server: its API, and the file of its scrape targets."""

    def __init__(self, url: str, targets: Path) -> None:
        self.url = url
        self.targets_file = targets
        self._targets: dict[str, dict[str, str]] = {}
        self.http = httpx.Client(base_url=url, timeout=5.0, trust_env=False)

    def add_target(self, port: int, **labels: str) -> None:
        self._targets[f"127.0.0.1:{port}"] = labels
        self._write()

    def remove_target(self, port: int) -> None:
        self._targets.pop(f"127.0.0.1:{port}", None)
        self._write()

    def _write(self) -> None:
        groups = [{"targets": [t], "labels": lab} for t, lab in self._targets.items()]
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        tmp.replace(self.targets_file)  # atomic: the watcher never reads half a file

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result vector (`at`: a unix time, default now)."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        body = self.http.get("/api/v1/query", params=params).json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(
        self, expr: str, timeout_s: float = 20.0, ok: Callable[[list[Any]], bool] = bool
    ) -> list[dict[str, Any]]:
        """Poll `expr` every 100 ms until `ok(result)`, at most `timeout_s`; the last result."""
        deadline = time.monotonic() + timeout_s
        result = self.query(expr)
        while not ok(result) and time.monotonic() < deadline:
            time.sleep(0.1)
            result = self.query(expr)
        return result

    def fired(self, alert: str, since: float, until: float, **labels: str) -> list[dict[str, Any]]:
        """Series of `alert` that were firing at some evaluation in [since, until]."""
        sel = ",".join([f'alertname="{alert}"', 'alertstate="firing"',
                        *(f'{k}="{v}"' for k, v in labels.items())])  # fmt: skip
        window_ms = int((until - since) * 1000) + 500
        return self.query(f"max_over_time(ALERTS{{{sel}}}[{window_ms}ms])", at=until + 0.5)


@contextmanager
def running_prometheus(workdir: Path) -> Iterator[Prometheus]:
    """Start `prometheus` on 127.0.0.1 with the deploy rules, yield it, stop it."""
    binary = require_binary("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    targets = workdir / "targets.json"
    targets.write_text("[]")
    config = workdir / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "global": {
                    "scrape_interval": INTERVAL,
                    "scrape_timeout": INTERVAL,
                    "evaluation_interval": INTERVAL,
                },
                "rule_files": [str(r) for r in RULES],
                "scrape_configs": [
                    {
                        "job_name": "featureplane",
                        "file_sd_configs": [{"files": [str(targets)], "refresh_interval": "1s"}],
                    }
                ],
            }
        )
    )  # JSON is YAML
    log = (workdir / "prometheus.log").open("wb")
    for _ in range(3):  # a port taken between the probe and the bind: try another
        port = free_port()
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
             f"--storage.tsdb.path={workdir / 'data'}", "--storage.tsdb.retention.time=1h"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        ready = False
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                ready = httpx.get(f"{url}/-/ready", timeout=1.0, trust_env=False).status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready:
                break
            time.sleep(0.1)
        if ready:
            break
        proc.kill()
        proc.wait(5)
    else:
        log.close()
        pytest.fail(f"prometheus did not start: {(workdir / 'prometheus.log').read_text()[-2000:]}")
    server = Prometheus(url, targets)
    try:
        yield server
    finally:
        server.http.close()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
