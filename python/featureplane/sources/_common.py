"""What every venue's reader shares: skip counting and the `errors` policy.

A reader in "skip" mode counts each bad line, record or message under a reason, with a few
examples; in "raise" mode the first one is a `SourceFormatError` naming the file and line.
"""

from __future__ import annotations

from featureplane.errors import SourceFormatError

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


def _where(path: str, line: int | None) -> str:
    return f"{path}:{line}" if line is not None else path
