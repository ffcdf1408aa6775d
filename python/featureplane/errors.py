"""Exception classes of featureplane.

Every error the package raises on bad input derives from `FeatureplaneError`, and also from the
builtin a caller would naturally catch (`ValueError`, `KeyError`), so both styles work.
"""

from __future__ import annotations


class FeatureplaneError(Exception):
    """Base class of every featureplane error."""


class InvalidMessageError(FeatureplaneError, ValueError):
    """A normalized message breaks the message model (bad kind, negative size, mixed symbols)."""


class OffGridError(InvalidMessageError):
    """A price or size is not a whole number of ticks or lots of its instrument."""


class UnknownSymbolError(FeatureplaneError, KeyError):
    """A symbol name or id that the symbol table does not hold."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else "unknown symbol"


class SchemaMismatchError(FeatureplaneError):
    """A consumer built for one feature set (id or schema hash) met frames of another."""


class SourceFormatError(FeatureplaneError, ValueError):
    """A recorded input file cannot be read as its format; names the file and line/record."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class SyncError(FeatureplaneError):
    """A book cannot be synchronised (for example a depth stream with no snapshot to start from)."""


class BackendUnavailableError(FeatureplaneError, ImportError):
    """The requested backend is not built in this installation."""
