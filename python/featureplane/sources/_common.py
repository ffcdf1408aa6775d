"""What every venue's reader shares: skip counting and the `errors` policy, the one-shot
read, the result record.

A reader in "skip" mode counts each bad line, record or message under a reason, with a few
examples; in "raise" mode the first one is a `SourceFormatError` naming the file and line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from featureplane.errors import SourceFormatError
from featureplane.instruments import InstrumentSpec, SymbolTable

EventArray = npt.NDArray[np.void]
"""An array of `EVENT_DTYPE` rows."""
PathArg = str | PathLike[str]
Instruments = SymbolTable | Mapping[str, InstrumentSpec] | Iterable[InstrumentSpec]
"""Tick and lot per symbol: a `SymbolTable` (its ids are kept), a mapping symbol -> spec, or
specs."""

MAX_EXAMPLES = 5
"""Examples kept per reason."""


class SkipStats:
    """A mixin of the readers' stats: `skipped` (and, where a venue warns, `warnings`) counted
    by reason, `examples` kept per reason. The venue's dataclass declares the fields."""

    skipped: dict[str, int]
    examples: dict[str, list[str]]

    def note(self, table: dict[str, int], reason: str, where: str, detail: str, n: int = 1) -> None:
        """Count `n` occurrences of `reason` in `table`; keep `where` as an example."""
        table[reason] = table.get(reason, 0) + n
        examples = self.examples.setdefault(reason, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(f"{where}: {detail}" if detail else where)

    def skipped_total(self) -> int:
        """Everything skipped, over every reason."""
        return sum(self.skipped.values())


class Reporter:
    """Applies the `errors` policy: raise `SourceFormatError`, or count the skip and go on."""

    def __init__(self, stats: SkipStats, errors: str) -> None:
        self.stats = stats
        self.raise_errors = errors == "raise"

    def skip(self, reason: str, path: str, line: int | None, detail: str) -> None:
        if self.raise_errors:
            raise SourceFormatError(path, line, f"{reason}: {detail}")
        self.stats.note(self.stats.skipped, reason, _where(path, line), detail)

    def warn(self, reason: str, path: str, line: int | None, detail: str) -> None:
        """Count a repaired or doubtful input that is kept (a venue with `warnings`)."""
        warnings: dict[str, int] = getattr(self.stats, "warnings")  # noqa: B009
        self.stats.note(warnings, reason, _where(path, line), detail)


def source_notes(stats: object) -> list[str]:
    """One line per skip or warning reason of a source's stats, with its first example: what a
    run that writes many files must still show."""
    out: list[str] = []
    examples: dict[str, list[str]] = getattr(stats, "examples", None) or {}
    for title in ("skipped", "warnings"):
        table = getattr(stats, title, None)
        if not isinstance(table, dict):
            continue
        for reason, n in sorted(table.items()):
            first = examples.get(reason, [""])[0]
            out.append(f"{title} {reason}: {n}" + (f" (first: {first})" if first else ""))
    return out


def _where(path: str, line: int | None) -> str:
    return f"{path}:{line}" if line is not None else path


StatsT = TypeVar("StatsT")


@dataclass(frozen=True)
class SourceData(Generic[StatsT]):
    """A whole read of a venue: its event rows, the symbol table they refer to, its stats."""

    events: EventArray
    """`EVENT_DTYPE` rows of every emitted message, in output order."""
    symbols: SymbolTable
    stats: StatsT


class ReadOnce:
    """A reader of a file or a stream: its input is read once (the stats describe that read)."""

    _read_started = False

    def _start_read(self) -> None:
        if self._read_started:
            raise RuntimeError(f"a {type(self).__name__} reads its input once; make a new one")
        self._read_started = True
