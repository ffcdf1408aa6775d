"""LOBSTER message and orderbook files as a venue of the registry: sniff, plan, open."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from featureplane.errors import SourceFormatError
from featureplane.sources.format import (
    Chain,
    OpenedSource,
    Peek,
    SourceFormat,
    SourceOptions,
    file_stem,
)

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_NAME = re.compile(r"_(message|orderbook)_\d+\.csv$")


def sniff(peek: Peek) -> bool:
    """A zip with a `*_message_N.csv` member, or a CSV of numeric columns: 6 (a message file;
    newer exports add a 7th, attribution column), or 4 per level in a file named like an
    orderbook file."""
    # The file rules (dates, time zones, fractions) load with the first LOBSTER-looking input:
    # a replay of another venue's capture never needs them.
    from featureplane.sources.lobster.files import parse_lobster_name

    if peek.container == "zip":
        with zipfile.ZipFile(peek.path) as zf:
            names = [parse_lobster_name(n) for n in zf.namelist()]
        return any(n is not None and n.kind == "message" for n in names)
    row = peek.csv_row()
    numeric = bool(row) and all(_NUMBER.match(c.strip()) for c in row[:6])
    named = _NAME.search(peek.path.name.removesuffix(".gz")) is not None
    if not numeric:
        return False
    if len(row) == 7:  # a message file of a newer export: named like one
        return named
    return len(row) == 6 or (named and len(row) % 4 == 0 and all(_NUMBER.match(c) for c in row))


def plan(files: Sequence[str], options: SourceOptions) -> list[Chain]:
    """One chain per zip archive, or per message CSV with its orderbook CSV when given too."""
    from featureplane.sources.lobster.files import lobster_zip_members, parse_lobster_name

    chains: list[Chain] = []
    pairs: dict[tuple[Any, ...], dict[str, str]] = {}
    for f in files:
        if f.endswith(".zip"):
            name = parse_lobster_name(lobster_zip_members(f)[0].name)
            chains.append(Chain("lobster", f"lobster-{file_stem(f)}", (f,), _ticker(name)))
            continue
        name = parse_lobster_name(Path(f).name.removesuffix(".gz"))
        key = (name.ticker, name.date, name.start_ms, name.end_ms) if name else (f,)
        pairs.setdefault(key, {})[name.kind if name else "message"] = f
    for members in pairs.values():
        if "message" not in members:
            raise SourceFormatError(
                members["orderbook"], None, "a LOBSTER orderbook file without its message file"
            )
        msg = members["message"]
        name = parse_lobster_name(Path(msg).name.removesuffix(".gz"))
        files_ = (msg, members["orderbook"]) if "orderbook" in members else (msg,)
        chains.append(Chain("lobster", f"lobster-{file_stem(msg)}", files_, _ticker(name)))
    return chains


def _ticker(name: Any) -> tuple[str, ...]:
    return (name.ticker,) if name is not None else ()


def open_files(files: Sequence[str], options: SourceOptions) -> OpenedSource:
    """A chain: a zip, a message CSV, or a message CSV and its orderbook CSV (any order)."""
    from featureplane.sources.lobster.files import lobster_zip_members, parse_lobster_name
    from featureplane.sources.lobster.reader import iter_lobster

    kinds = {getattr(parse_lobster_name(_csv_name(f)), "kind", "message"): f for f in files}
    if len(files) > 2 or len(kinds) != len(files) or "message" not in kinds:
        raise SourceFormatError(
            files[0], None, f"a LOBSTER chain is one message file and its orderbook file: {files}"
        )
    message: Any = kinds["message"]
    orderbook: Any = kinds.get("orderbook")
    if message.endswith(".zip"):
        message, orderbook = lobster_zip_members(message)
    # str() of a zip member is "archive.zip/member.csv": its name is the member's.
    ticker = getattr(parse_lobster_name(Path(str(message)).name), "ticker", None)
    given = [s for s in options.instruments or () if s.symbol == ticker]
    reader = iter_lobster(
        message,
        orderbook,
        instrument=given[0] if given else None,
        errors=FORMAT.errors(options),
        messages_only=options.messages_only,
    )
    return OpenedSource("lobster", reader, reader.symbols, reader.stats, list(files))


def _csv_name(path: str) -> str:
    return Path(path).name.removesuffix(".gz")


FORMAT = SourceFormat("lobster", sniff, open_files, plan)
