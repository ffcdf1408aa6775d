"""Where a ring process runs: CPU pinning and real-time scheduling (docs/transport.md).

A ring hands a frame from one core to another in a cache-line transfer (0.1 to 0.2 us); what
makes its tail is the operating system: a reader that shares its core with other work waits
for a time slice, and one whose core is taken by another process is preempted mid-spin.
`Placement` names the two deployment knobs the kernel gives a process for that. On Linux both
are a thread's: `apply_placement` places the calling thread (the one that runs the ring loop),
and threads it starts later inherit it; threads already running keep theirs.

- `cpus`: the cores it may run on (`sched_setaffinity`). The writer and a spinning reader
  each need a core of their own; on the same core every hand-off waits for a context switch.
- `fifo_priority`: `SCHED_FIFO` at this priority (1 to 99), so ordinary (CFS) processes
  never preempt it. It needs `CAP_SYS_NICE` (root) or an `RLIMIT_RTPRIO`; refused, it is
  reported, never silently dropped. A FIFO process that spins holds its core against every
  ordinary process: bound its spin (`RingReader.read(spin=...)` then parks), and never run
  FIFO spinners on every core (the kernel's RT throttling, `sched_rt_runtime_us`, leaves
  others 5% of each second, which is a stall for them, not a share).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from featureplane.errors import PlacementError

__all__ = ["Placement", "PlacementReport", "apply_placement", "check_cpus", "online_cpus", "placed"]

FIFO_MAX = 99


@dataclass(frozen=True)
class Placement:
    """Where and how a process runs.

    Parameters
    ----------
    cpus
        The cores the process may run on; empty leaves its affinity as it is.
    fifo_priority
        `SCHED_FIFO` priority, 1 to 99; 0 leaves the ordinary scheduler.
    """

    cpus: tuple[int, ...] = ()
    fifo_priority: int = 0

    def __post_init__(self) -> None:
        problems = []
        if any(not isinstance(c, int) or c < 0 for c in self.cpus):
            problems.append(f"cpus must be core numbers >= 0, got {list(self.cpus)}")
        if not isinstance(self.fifo_priority, int) or not 0 <= self.fifo_priority <= FIFO_MAX:
            problems.append(
                f"fifo_priority must be 0 (off) to {FIFO_MAX}, got {self.fifo_priority!r}"
            )
        if problems:
            raise PlacementError("; ".join(problems))

    @property
    def tuned(self) -> bool:
        """Whether this asks for anything at all."""
        return bool(self.cpus) or self.fifo_priority > 0


@dataclass(frozen=True)
class PlacementReport:
    """What `apply_placement` did: the affinity and scheduler in force after it, and what the
    kernel refused (with its reason)."""

    cpus: tuple[int, ...]
    fifo_priority: int
    refused: tuple[str, ...] = field(default=())

    @property
    def complete(self) -> bool:
        return not self.refused


def online_cpus() -> set[int]:
    """The cores this machine has online (an affinity may name only these)."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            spec = f.read().strip()
    except OSError:
        return set(range(os.cpu_count() or 1))
    cpus: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def check_cpus(cpus: tuple[int, ...]) -> None:
    """Raise `PlacementError` unless every core of `cpus` is online here."""
    missing = set(cpus) - online_cpus()
    if missing:
        raise PlacementError(
            f"cpus {sorted(missing)} are not online here (online: {sorted(online_cpus())})"
        )


def apply_placement(placement: Placement, *, strict: bool = False) -> PlacementReport:
    """Pin the calling thread and set its scheduler as `placement` says.

    Parameters
    ----------
    placement
        What to apply.
    strict
        Raise when the kernel refuses a knob; otherwise the refusal is in the report.

    Returns
    -------
    PlacementReport

    Raises
    ------
    PlacementError
        A core this machine does not have (always), or a refused knob when `strict`.
    """
    refused: list[str] = []
    if placement.cpus:
        check_cpus(placement.cpus)
        try:
            os.sched_setaffinity(0, set(placement.cpus))
        except OSError as e:
            refused.append(f"cpu affinity {list(placement.cpus)}: {e.strerror}")
    if placement.fifo_priority:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(placement.fifo_priority))
        except OSError as e:
            refused.append(
                f"SCHED_FIFO {placement.fifo_priority}: {e.strerror} (needs CAP_SYS_NICE or "
                "an RLIMIT_RTPRIO of the priority)"
            )
    if refused and strict:
        raise PlacementError("; ".join(refused))
    fifo = os.sched_getscheduler(0) == os.SCHED_FIFO
    return PlacementReport(
        cpus=tuple(sorted(os.sched_getaffinity(0))),
        fifo_priority=os.sched_getparam(0).sched_priority if fifo else 0,
        refused=tuple(refused),
    )


@contextmanager
def placed(placement: Placement) -> Iterator[PlacementReport]:
    """`apply_placement` for the `with` block; the thread's affinity and scheduler are put
    back as they were after it (a benchmark's writer runs in the calling thread)."""
    cpus = os.sched_getaffinity(0)
    policy = os.sched_getscheduler(0)
    param = os.sched_getparam(0)
    try:
        yield apply_placement(placement)
    finally:
        os.sched_setscheduler(0, policy, param)
        os.sched_setaffinity(0, cpus)
