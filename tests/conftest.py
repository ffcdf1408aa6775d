"""Shared fixtures: the `backend` fixture runs a test on every backend that is built."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.redis_server import running_redis
from tests.support.rust import require_rust


@pytest.fixture(params=["python", "rust"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "rust":
        require_rust("engine")
    return name


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on 127.0.0.1, started for the test session and stopped after it."""
    workdir: Path = tmp_path_factory.mktemp("redis")
    with running_redis(workdir) as url:
        yield url


_REPORT: list[str] = []


@pytest.fixture
def report() -> Callable[[str], None]:
    """Record a measured figure (agreement rate, counts) for the end-of-run summary."""
    return _REPORT.append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REPORT:
        terminalreporter.section("measured on real data")
        for line in _REPORT:
            terminalreporter.write_line(line)
