"""Faults a loopback venue injects, from a short text spec.

A spec is a comma-separated list of items `NAME@AT[:ARG[:ARG]]`, where `AT` is the index of a
line in the merged capture stream (`Capture.lines`, 0-based), so a fault lands on the same
message in every run:

- `drop@N[:SYMBOL]`: the first depth diff at or after line N is not sent (a gap);
- `dup@N[:SYMBOL]`: that diff is sent twice;
- `reorder@N[:SYMBOL]`: that diff is sent after the symbol's next diff;
- `disconnect@N[:SKIP]`: every connection is cut (no close frame) before line N; the next SKIP
  lines are lost (the market moves on), then the market waits for a new connection;
- `stall@N:SECONDS`: nothing is sent for SECONDS before line N (connections stay open);
- `shutdown@N`: `serverShutdown` before line N, the connections closed after a grace;
- `slow@N:BYTES`: from line N on the venue never waits for a client: a connection with more
  than BYTES unsent is closed (1008), as an exchange drops a slow consumer;
- `snapshot-old@N:SYMBOL`: the first snapshot of SYMBOL asked for at or after line N is an
  older one;
- `snapshot-new@N:SYMBOL:M`: the first fresh snapshot of SYMBOL at or after line N is taken M
  diffs ahead of the stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from featureplane.errors import VenueError

_ONE_DIFF = ("drop", "dup", "reorder")
NAMES = (*_ONE_DIFF, "disconnect", "stall", "shutdown", "slow", "snapshot-old", "snapshot-new")


@dataclass
class Fault:
    name: str
    at: int
    symbol: str | None = None
    seconds: float = 0.0
    count: int = 0
    done: bool = False

    def __str__(self) -> str:
        parts = [f"{self.name}@{self.at}"]
        if self.symbol:
            parts.append(self.symbol)
        if self.name == "stall":
            parts.append(f"{self.seconds:g}")
        elif self.name in ("disconnect", "slow", "snapshot-new"):
            parts.append(str(self.count))
        return ":".join(parts)


@dataclass
class FaultPlan:
    """The faults of a venue run; each fires once."""

    faults: list[Fault] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.faults)

    def __str__(self) -> str:
        return ",".join(str(f) for f in self.faults)

    def pending(self, name: str) -> list[Fault]:
        return [f for f in self.faults if f.name == name and not f.done]

    def due(self, name: str, index: int, symbol: str | None = None) -> Fault | None:
        """The first pending fault `name` due at line `index` (of `symbol`, where it names one)."""
        for f in self.faults:
            if f.name != name or f.done or f.at > index:
                continue
            if f.symbol is not None and symbol is not None and f.symbol != symbol:
                continue
            return f
        return None


def parse_faults(spec: str | None) -> FaultPlan:
    """Parse a fault spec (see the module doc); every problem is reported at once.

    Raises
    ------
    VenueError
        A malformed item, naming each one.
    """
    plan = FaultPlan()
    if not spec:
        return plan
    problems: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        try:
            plan.faults.append(_parse_item(item))
        except ValueError as exc:
            problems.append(f"{item!r}: {exc}")
    if problems:
        raise VenueError("bad fault spec: " + "; ".join(problems))
    return plan


def _parse_item(item: str) -> Fault:
    head, *args = item.split(":")
    name, sep, at_text = head.partition("@")
    if name not in NAMES:
        raise ValueError(f"unknown fault {name!r} (known: {', '.join(NAMES)})")
    if not sep or not at_text.isdigit():
        raise ValueError("expected NAME@LINE with a line index")
    fault = Fault(name, int(at_text))
    if name in _ONE_DIFF:
        if len(args) > 1:
            raise ValueError("takes at most a symbol")
        fault.symbol = args[0].upper() if args else None
    elif name == "disconnect":
        if len(args) > 1 or (args and not args[0].isdigit()):
            raise ValueError("takes at most a number of lines lost")
        fault.count = int(args[0]) if args else 0
    elif name == "stall":
        if len(args) != 1:
            raise ValueError("takes the seconds of silence")
        fault.seconds = float(args[0])
        if not 0 < fault.seconds <= 3600:
            raise ValueError("seconds must be in (0, 3600]")
    elif name == "shutdown":
        if args:
            raise ValueError("takes no argument")
    elif name == "slow":
        if len(args) != 1 or not args[0].isdigit() or int(args[0]) <= 0:
            raise ValueError("takes the unsent bytes a connection may hold")
        fault.count = int(args[0])
    elif name == "snapshot-old":
        if len(args) != 1:
            raise ValueError("takes a symbol")
        fault.symbol = args[0].upper()
    elif name == "snapshot-new":
        if len(args) != 2 or not args[1].isdigit() or int(args[1]) <= 0:
            raise ValueError("takes a symbol and a number of diffs ahead")
        fault.symbol, fault.count = args[0].upper(), int(args[1])
    return fault
