"""Binance recorder captures as a venue of the registry: sniff, plan, open."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
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

# The start of a line too long for the peek (a REST snapshot of 1000 levels a side).
_LINE = re.compile(rb'^\d+ \{\s*"(stream|lastUpdateId)"\s*:')


def sniff(peek: Peek) -> bool:
    """`<int> <json>` lines with Binance stream or REST-snapshot keys."""
    for raw in peek.lines():
        if _LINE.match(raw):
            return True
        ts, _, rest = raw.partition(b" ")
        try:
            obj = json.loads(rest)
        except ValueError:
            continue
        if ts.isdigit() and isinstance(obj, dict) and _binance_keys(obj.keys()):
            return True
    return False


def _binance_keys(keys: Any) -> bool:
    """A combined-stream envelope, a REST snapshot, a raw event or a raw bookTicker."""
    return (
        {"stream", "data"} <= keys
        or "lastUpdateId" in keys
        or {"e", "s"} <= keys
        or {"u", "s", "b", "a"} <= keys
    )


def plan(files: Sequence[str], options: SourceOptions) -> list[Chain]:
    """One chain per (market, symbol): its files in order of their first local timestamp."""
    from featureplane.sources.binance.probe import probe_file

    groups: dict[tuple[str, str | None], list[tuple[int, int, str]]] = {}
    chains: list[Chain] = []
    probes = [probe_file(f, i) for i, f in enumerate(files)]
    known: dict[str, set[str]] = {}
    for p in probes:
        if p.symbol is not None and p.market is not None:
            known.setdefault(p.symbol, set()).add(p.market)
    for p in probes:
        if p.symbol is None:  # unreadable or no stream: a chain of its own, the reader reports
            chains.append(Chain("binance", f"binance-{file_stem(p.path)}", (p.path,)))
            continue
        seen = known.get(p.symbol, set())
        # A file whose probe saw no market hint joins the symbol's one known market.
        market = options.market or p.market or (next(iter(seen)) if len(seen) == 1 else None)
        groups.setdefault((p.symbol, market), []).append(
            (p.first_local_ts if p.first_local_ts is not None else -1, p.index, p.path)
        )
    for (symbol, market), members in groups.items():
        paths = tuple(path for _, _, path in sorted(members))
        chains.append(Chain("binance", f"binance-{market or 'unknown'}-{symbol}", paths, (symbol,)))
    return chains


def open_files(files: Sequence[str], options: SourceOptions) -> OpenedSource:
    """Every file of the chains given, merged into one local-time stream."""
    from featureplane.sources.binance.reader import DEFAULT_CHUNK_ROWS, iter_binance

    # Literal-typed arguments: the reader checks the strings and names a bad one.
    market: Any = options.market
    on_missing: Any = options.on_missing_snapshot
    parser: Any = options.parser
    reader = iter_binance(
        files,
        symbols=options.symbols,
        market=market,
        instruments=options.instruments,
        errors=FORMAT.errors(options),
        on_missing_snapshot=on_missing,
        chunk_rows=options.chunk_rows or DEFAULT_CHUNK_ROWS,
        parser=parser,
    )
    if not len(reader.symbols):
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(reader.stats.skipped.items()))
        raise SourceFormatError(
            files[0] if len(files) == 1 else f"{len(files)} files",
            None,
            "no Binance stream found" + (f" (skipped: {skipped})" if skipped else ""),
        )
    return OpenedSource("binance", reader, reader.symbols, reader.stats, list(files))


# Recorder captures keep a line that does not parse and go on: one bad line of a day-long
# capture should not lose the day, and every skip is counted with its reason.
FORMAT = SourceFormat("binance", sniff, open_files, plan, default_errors="skip", merges=True)
