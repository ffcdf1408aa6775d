"""`RuntimeMetrics`: the stage ring, the collector and the `/metrics` HTTP endpoint of a run.

The endpoint is `prometheus_client`'s own server on its own thread, bound to 127.0.0.1 unless
`[metrics] host` says otherwise (the library's default is every interface). Port 0 takes any
free port; the bound one is `RuntimeMetrics.port` and is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, start_http_server

from featureplane.errors import ConfigError
from featureplane.live.metrics.collector import RuntimeCollector
from featureplane.live.metrics.stages import StageRing

log = logging.getLogger("featureplane.metrics")


class RuntimeMetrics:
    """Metrics of one live run (see the module doc).

    Parameters
    ----------
    registry
        The run's `ServiceRegistry`, complete (`attach` wires the services in it).
    latency_samples
        Rows of the stage ring: messages recorded between two scrapes before the oldest are
        overwritten (and counted).
    """

    def __init__(self, registry: Any, latency_samples: int = 1 << 17) -> None:
        self.ring = StageRing(latency_samples)
        self.collector = RuntimeCollector(registry, self.ring)
        self.prometheus = CollectorRegistry(auto_describe=False)
        self.prometheus.register(self.collector)
        self.registry = registry
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None
        self.host: str | None = None

    def attach(self) -> None:
        """Start recording: the service writes the ring, risk gates and paper adapters add
        their time to the service's per-message `StageTimes`."""
        service = self.registry.get("service")
        service.stages = self.ring
        for runner in self.registry.runners():
            for gate in getattr(runner, "gates", {}).values():
                gate.times = service.stage_times
            for paper in getattr(runner, "adapters", {}).values():
                paper.times = service.stage_times

    def mark_start(self) -> None:
        """The run starts now: a symbol's frame age counts from here until its first frame."""
        self.registry.get("service").symbol_metrics.start_ns = time.time_ns()

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve `/metrics` on `host:port` (0: a free port); returns the port.

        Raises
        ------
        ConfigError
            The address cannot be bound (in use, not local, ...).
        """
        try:
            server, thread = start_http_server(port, addr=host, registry=self.prometheus)
        except OSError as exc:
            raise ConfigError("[metrics]", [f"cannot serve on {host}:{port}: {exc}"]) from None
        self._server, self._thread = server, thread
        self.host, self.port = host, int(server.server_port)
        log.info("metrics on http://%s:%d/metrics", host, self.port)
        return self.port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def text(self) -> str:
        """One scrape in the text exposition format, without HTTP (tests, the benchmark)."""
        return generate_latest(self.prometheus).decode()

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
