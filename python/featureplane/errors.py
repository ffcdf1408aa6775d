"""Every exception and warning class of featureplane, in one hierarchy.

Every error the package raises derives from `FeatureplaneError`, and also from the builtin a
caller would naturally catch (`ValueError`, `KeyError`, `ImportError`, ...), so both styles
work::

    FeatureplaneError
    ├── InvalidMessageError (ValueError)       a message breaks the message model
    │   └── OffGridError                       a price or size off its tick/lot grid
    ├── UnknownSymbolError (KeyError)          a symbol the table does not hold
    ├── SchemaMismatchError (ValueError)       frames or state of another feature set
    ├── FeatureSetDeclarationError (ValueError) a feature-set declaration that cannot compile
    ├── ResearchOnlyError (ValueError)         a research-only feature asked of the live plane
    ├── InvalidStateError (ValueError)         a malformed engine state or checkpoint
    ├── SourceFormatError (ValueError)         a recorded file that cannot be read as its format
    ├── InputDamage                            a line or stream a reader skips, with its reason
    │   ├── UnreadableLineError                one line or message (a skip reason)
    │   └── StreamDamageError                  a compressed stream cut short or corrupt
    ├── SyncError                              a book that cannot be synchronised
    ├── ParserMismatchError (RuntimeError)     the two Binance parsers disagreed (a bug)
    ├── ChainReplayError                       one chain of a many-file replay failed
    ├── BackendUnavailableError (ImportError)  a backend or extension not built here
    │   └── HftbacktestMissingError            the optional hftbacktest package is missing
    ├── DebugBuildError (RuntimeError)         benchmarks refuse a debug build
    ├── FeaturesUnavailableError (LookupError) a feature read in a run without features
    ├── OrderError (ValueError)                an order call refused or that cannot be sent
    │   └── NotStartedError                    an order before the backtest's first step
    ├── BacktestError (RuntimeError)           hftbacktest failed, or a session used after its end
    │   └── NumbaLoopError                     a compiled backtest loop stopped early
    ├── TransportError                         frames that cannot reach another process
    │   ├── RingNotFoundError (FileNotFoundError) no ring of that name
    │   ├── RingBusyError                      a live writer holds the ring's name
    │   ├── StaleRingError                     the ring's writer is gone without closing it
    │   ├── BusError (ConnectionError)         the Redis bus cannot be reached
    │   └── PlacementError (ValueError)        a CPU pinning or real-time setting refused
    ├── ConfigError (ValueError)               a live config file with errors (all of them listed)
    ├── VenueError (ValueError)                a loopback venue that cannot serve its captures
    ├── FeedError (ConnectionError)            a venue feed that cannot connect or stay in sync
    └── MetricsSourceError (ValueError)        a metrics URL or file the canary gate cannot read

    RustBackendWarning (RuntimeWarning)        the Rust backend is missing; Python runs instead
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


class SchemaMismatchError(FeatureplaneError, ValueError):
    """A consumer built for one feature set (id or schema hash) met frames of another."""


class FeatureSetDeclarationError(FeatureplaneError, ValueError):
    """A feature-set declaration that cannot be compiled into a plan; `problems` lists every
    one (unknown family or input, bad parameter, wrong input kind, cycle, duplicate id, ...)."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        n = len(self.problems)
        super().__init__(f"{source}: {n} error{'s' if n != 1 else ''}: " + "; ".join(problems))


class ResearchOnlyError(FeatureplaneError, ValueError):
    """A research-only feature (a Python function computed after the kernel) was asked of the
    live plane, which runs promoted kernel features only."""


class InvalidStateError(FeatureplaneError, ValueError):
    """An engine state that is malformed, of an unknown format, or for other symbols."""


class SourceFormatError(FeatureplaneError, ValueError):
    """A recorded input file cannot be read as its format; names the file and line/record."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class InputDamage(FeatureplaneError):
    """Input a reader skips (or, in "raise" mode, reports): `reason` is a skip-counter key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class UnreadableLineError(InputDamage):
    """A line or message that cannot be read."""


class StreamDamageError(InputDamage):
    """The file's compressed stream ends early (`truncated`) or is corrupt (`gzip_error`).

    Raised by `iter_line_blocks` after every complete line before the damage was yielded.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.args = (f"{reason}: {detail}",)


class SyncError(FeatureplaneError):
    """A book cannot be synchronised (for example a depth stream with no snapshot to start from)."""


class ParserMismatchError(FeatureplaneError, RuntimeError):
    """The Rust and the reference parser judged a line differently (a bug; read with
    `parser="python"` meanwhile)."""


class ChainReplayError(FeatureplaneError):
    """A chain of a many-file replay failed; the message names the chain and its file(s)."""


class BackendUnavailableError(FeatureplaneError, ImportError):
    """The requested backend is not built in this installation."""


class HftbacktestMissingError(BackendUnavailableError):
    """hftbacktest (an optional dependency) is not installed."""


class DebugBuildError(FeatureplaneError, RuntimeError):
    """Benchmarks refuse a debug build of the extension: its numbers would mislead."""


class FeaturesUnavailableError(FeatureplaneError, LookupError):
    """A feature read in a run without features (hftbacktest's `stats_only` mode)."""


class OrderError(FeatureplaneError, ValueError):
    """An order call the venue refused or that cannot be sent (bad size, unknown order)."""


class NotStartedError(OrderError):
    """An order call before the first step of the backtest: its clock has no time yet."""


class BacktestError(FeatureplaneError, RuntimeError):
    """hftbacktest returned an error code, or the session was used after its end."""


class NumbaLoopError(BacktestError):
    """A compiled loop stopped early: its decision log filled up, or hftbacktest failed."""


class RustBackendWarning(RuntimeWarning):
    """The Rust backend was asked for (or is the default) but is not available."""


class TransportError(FeatureplaneError):
    """Frames cannot be carried to or from another process (a ring segment that is not a ring,
    an operating-system refusal, a ring used after its writer closed it)."""


class RingNotFoundError(TransportError, FileNotFoundError):
    """No shared-memory frame ring of that name (`/dev/shm/<name>`)."""


class RingBusyError(TransportError):
    """A live writer already holds the ring name (one writer per ring)."""


class StaleRingError(TransportError):
    """The ring's writer is gone (crashed or killed) without closing the ring; the message
    names its pid and the age of its last heartbeat."""


class BusError(TransportError, ConnectionError):
    """The message bus cannot be reached, or refused a command."""


class PlacementError(TransportError, ValueError):
    """A ring process's placement that cannot be applied: a core this machine does not have,
    a real-time priority out of range, or a knob the kernel refused (when asked to be strict)."""


class ConfigError(FeatureplaneError, ValueError):
    """A live configuration with errors; `problems` lists every one, each with its key path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        n = len(self.problems)
        super().__init__(f"{source}: {n} error{'s' if n != 1 else ''}: " + "; ".join(problems))


class VenueError(FeatureplaneError, ValueError):
    """The loopback venue cannot serve what it was given (no capture, a bad fault spec)."""


class FeedError(FeatureplaneError, ConnectionError):
    """A venue feed that cannot connect, or cannot get a symbol in sync, within its limits."""


class MetricsSourceError(FeatureplaneError, ValueError):
    """A metrics URL or file the canary gate cannot read or parse (`featureplane canary`)."""
