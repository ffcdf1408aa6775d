"""deploy/: the Prometheus rules pass `promtool check rules` and their unit tests
(`promtool test rules`), every alert has a test that makes it fire, and every query of the
rules and the Grafana dashboard names only metrics of the contract."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from featureplane.live.metrics.contract import CONTRACT, series_names
from tests.support.prometheus import DEPLOY, require_binary

PROM = DEPLOY / "prometheus"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM / "tests").glob("*.yml"))
DASHBOARD = DEPLOY / "grafana" / "featureplane.json"
DOCS = Path(__file__).resolve().parents[3] / "docs"
NAME = re.compile(r"\b(featureplane_[a-z0-9_]+)")


def _alerts() -> dict[str, dict[str, Any]]:
    out = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                out[rule["alert"]] = rule
    return out


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = require_binary("promtool")
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60, cwd=PROM)


def test_rules_check() -> None:
    done = _promtool("check", "rules", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_unit_tests_pass() -> None:
    done = _promtool("test", "rules", *map(str, TEST_FILES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(TEST_FILES)


def test_example_config_checks() -> None:
    done = _promtool("check", "config", str(PROM / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_test_that_fires_it_and_one_that_does_not() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for t in case.get("alert_rule_test", []):
                (fires if t.get("exp_alerts") else quiet).add(t["alertname"])
    alerts = set(_alerts())
    assert alerts - fires == set(), "alerts no test makes fire"
    assert alerts - quiet == set(), "alerts no test checks quiet"
    assert fires | quiet <= alerts, "tests of alerts that do not exist"


def test_every_alert_names_a_runbook_that_exists() -> None:
    for name, rule in _alerts().items():
        runbook = rule["annotations"]["runbook"]
        assert runbook.startswith("docs/runbooks/"), name
        index = (DOCS / "runbooks" / "README.md").read_text()
        assert Path(runbook).name in index, f"{name}: {runbook} is not in the runbook index"


def test_rule_expressions_name_only_contract_metrics() -> None:
    allowed = series_names()
    for name, rule in _alerts().items():
        used = set(NAME.findall(rule["expr"]))
        assert used or 'up{job="featureplane"}' in rule["expr"], f"{name} names no metric"
        assert used <= allowed, f"{name}: {used - allowed}"


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboard_queries_name_only_contract_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    allowed = series_names()
    used: set[str] = set()
    for title, expr in _queries(dashboard):
        names = set(NAME.findall(expr))
        assert names, f"panel {title!r}: {expr} names no featureplane metric"
        assert names <= allowed, f"panel {title!r}: not in the contract: {names - allowed}"
        used |= names
    # Every metric of the contract is on the dashboard somewhere (a histogram by its buckets).
    bases = {n.removesuffix("_bucket") for n in used}
    assert set(CONTRACT) - bases == set()


@pytest.mark.parametrize(
    "words",
    [("latency",), ("quality",), ("resync",), ("parity",), ("canary",), ("staleness",),
     ("lag",), ("kill switch",)],
)  # fmt: skip
def test_dashboard_has_the_panels_operators_need(words: tuple[str, ...]) -> None:
    titles = " | ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    assert all(w in titles for w in words), titles


def test_dashboard_panels_do_not_overlap() -> None:
    cells = set()
    for p in json.loads(DASHBOARD.read_text())["panels"]:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, p["title"]
                cells.add((x, y))
        assert g["x"] + g["w"] <= 24


def test_metrics_page_documents_the_contract() -> None:
    page = (DOCS / "metrics.md").read_text()
    rows = set(re.findall(r"^\| `(featureplane_[a-z0-9_]+)`", page, flags=re.M))
    assert rows == set(CONTRACT)
