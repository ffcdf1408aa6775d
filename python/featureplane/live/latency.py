"""Per-stage times of the live path, recorded in the hot path at the cost of a list append.

Each applied message leaves five `perf_counter_ns` stamps: off the websocket (`wire`), released
by the parser (`parsed`), taken from the inbox (`dequeued`), framed by the engine (`framed`),
delivered to every listener, the strategy included (`delivered`). Percentiles are computed from
them when asked (`summary`), never on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STAGES = ("parse", "queue", "engine", "deliver", "wire_to_frame", "wire_to_strategy")
"""parse: wire -> parsed; queue: parsed -> dequeued; engine: dequeued -> framed; deliver:
framed -> delivered; wire_to_frame: wire -> framed; wire_to_strategy: wire -> delivered."""


@dataclass(frozen=True)
class StageSummary:
    stage: str
    n: int
    p50_us: float
    p99_us: float
    p999_us: float
    max_us: float


class LatencyRecorder:
    """Stage stamps of up to `capacity` messages (later ones are counted, not kept)."""

    def __init__(self, capacity: int = 1 << 21) -> None:
        self.capacity = capacity
        self._rows: list[tuple[int, int, int, int, int]] = []
        self.overflow = 0

    def add(self, wire: int, parsed: int, dequeued: int, framed: int, delivered: int) -> None:
        if len(self._rows) < self.capacity:
            self._rows.append((wire, parsed, dequeued, framed, delivered))
        else:
            self.overflow += 1

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        self._rows.clear()
        self.overflow = 0

    def durations_ns(self) -> dict[str, np.ndarray]:
        """Per stage, the duration of every recorded message (ns)."""
        a = np.array(self._rows, dtype=np.int64).reshape(-1, 5)
        w, p, q, f, d = (a[:, i] for i in range(5))
        return {
            "parse": p - w,
            "queue": q - p,
            "engine": f - q,
            "deliver": d - f,
            "wire_to_frame": f - w,
            "wire_to_strategy": d - w,
        }

    def summary(self) -> list[StageSummary]:
        out = []
        for stage, d in self.durations_ns().items():
            if not len(d):
                out.append(StageSummary(stage, 0, *(float("nan"),) * 4))
                continue
            q = np.percentile(d, [50, 99, 99.9]) / 1e3
            out.append(
                StageSummary(stage, len(d), float(q[0]), float(q[1]), float(q[2]), d.max() / 1e3)
            )
        return out


def format_summary(rows: list[StageSummary]) -> str:
    head = f"{'stage':<18}{'n':>10}{'p50 us':>10}{'p99 us':>10}{'p99.9 us':>10}{'max us':>10}"
    lines = [head, "-" * len(head)]
    lines.extend(
        f"{r.stage:<18}{r.n:>10,}{r.p50_us:>10.1f}{r.p99_us:>10.1f}{r.p999_us:>10.1f}"
        f"{r.max_us:>10.1f}"
        for r in rows
    )
    return "\n".join(lines)
