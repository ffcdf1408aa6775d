"""Chains: which recorded files one engine must replay in order, and where their output goes.

A chain is a list of files one engine replays in order, the book carrying across them: a
Binance symbol's consecutive captures, a LOBSTER message file and its orderbook file, tardis
files sharing a symbol. Chains share no symbol stream, so they replay independently, each into
its own feature file (`featureplane.parallel`). docs/research-replay.md has the rules.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from os import PathLike, fspath
from pathlib import Path
from typing import Any

from featureplane.errors import SourceFormatError, UnknownSymbolError
from featureplane.formats import REGISTRY, SourceOptions, detect_format, file_stem

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")

DATA_SUFFIXES: tuple[str, ...] = (".gz", ".zip", ".csv", ".dbn", ".zst", ".npz")
"""Files a directory contributes (sorted by name); other files must be named explicitly."""


@dataclass(frozen=True)
class Chain:
    """Files replayed in order by one engine: the book carries across them.

    `name` is unique within a plan and names the chain's feature file (`name + ".parquet"`).
    """

    format: str
    name: str
    files: tuple[str, ...]
    symbols: tuple[str, ...] = ()
    """Symbols the planner saw (empty: not known before reading)."""


Planner = Callable[[Sequence[str], SourceOptions], list[Chain]]


def _plan_binance(files: Sequence[str], options: SourceOptions) -> list[Chain]:
    """One chain per (market, symbol): its files in order of their first local timestamp."""
    from featureplane.sources.binance_probe import probe_file

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


def _plan_lobster(files: Sequence[str], options: SourceOptions) -> list[Chain]:
    """One chain per zip archive, or per message CSV with its orderbook CSV when given too."""
    from featureplane.sources.lobster import lobster_zip_members, parse_lobster_name

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


def _plan_tardis(files: Sequence[str], options: SourceOptions) -> list[Chain]:
    """Files sharing a symbol form one chain (book and trades files of a symbol merge)."""
    from featureplane.sources.tardis import DEFAULT_PROBE_ROWS
    from featureplane.sources.tardis_parse import SymbolProbe, probe

    owner: dict[str, int] = {}
    parent = list(range(len(files)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    symbols: list[set[str]] = []
    for i, f in enumerate(files):
        found: dict[str, SymbolProbe] = {}
        # A bad header: a chain of its own, the reader reports it.
        with contextlib.suppress(SourceFormatError):
            probe(f, DEFAULT_PROBE_ROWS, found)
        symbols.append(set(found))
        for s in found:
            j = owner.setdefault(s, i)
            parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(files)):
        groups.setdefault(root(i), []).append(i)
    return [
        Chain(
            "tardis",
            f"tardis-{file_stem(files[members[0]])}",
            tuple(files[i] for i in members),
            tuple(sorted(set().union(*(symbols[i] for i in members)))),
        )
        for members in groups.values()
    ]


def _each_file(fmt: str) -> Planner:
    def plan(files: Sequence[str], options: SourceOptions) -> list[Chain]:
        return [Chain(fmt, f"{fmt}-{file_stem(f)}", (f,)) for f in files]

    return plan


PLANNERS: dict[str, Planner] = {
    "binance": _plan_binance,
    "lobster": _plan_lobster,
    "tardis": _plan_tardis,
}
"""How a format's files group into chains; a format not listed: each file is its own chain."""


def expand_inputs(paths: Iterable[str | PathLike[str]]) -> list[str]:
    """Files named, globs expanded, directories as their `DATA_SUFFIXES` files; no duplicates."""
    out: list[str] = []
    for item in paths:
        text = fspath(item)
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and _is_data(p.name))
            out.extend(str(p) for p in found)
        elif not path.exists() and glob.has_magic(text):
            matches = sorted(glob.glob(text))
            if not matches:
                raise FileNotFoundError(2, "no file matches", text)
            out.extend(matches)
        else:
            out.append(text)
    seen: set[str] = set()
    unique: list[str] = []
    for f in out:  # the first mention of a file counts (a dir and a name in it: once)
        if (key := os.path.abspath(f)) not in seen:
            seen.add(key)
            unique.append(f)
    if not unique:
        raise ValueError("no input files")
    return unique


def _is_data(name: str) -> bool:
    return not name.startswith(".") and name.endswith(DATA_SUFFIXES)


def plan_chains(
    paths: Iterable[str | PathLike[str]],
    *,
    format: str = "auto",
    options: SourceOptions | None = None,
) -> list[Chain]:
    """Detect (or take) each file's format and group the files into chains.

    Chains come sorted by name; names are unique (a clash gets `-2`, `-3`, ...).

    Raises
    ------
    SourceFormatError
        A file of no known format (naming it and the formats tried).
    UnknownSymbolError
        `options.symbols` names a symbol no chain holds (when every chain's symbols are known).
    """
    options = options or SourceOptions()
    files = expand_inputs(paths)
    if format != "auto" and format not in REGISTRY:
        raise ValueError(f"unknown format {format!r}; known: auto, {', '.join(REGISTRY)}")
    by_format: dict[str, list[str]] = {}
    for f in files:
        by_format.setdefault(detect_format(f) if format == "auto" else format, []).append(f)
    chains: list[Chain] = []
    for fmt, members in by_format.items():
        chains.extend(PLANNERS.get(fmt, _each_file(fmt))(members, options))
    if options.symbols is not None:
        wanted = {s.upper() for s in options.symbols}
        chains = [c for c in chains if not c.symbols or wanted & {s.upper() for s in c.symbols}]
        if chains and all(c.symbols for c in chains):
            have = {s.upper() for c in chains for s in c.symbols}
            if missing := wanted - have:
                raise UnknownSymbolError(f"symbol(s) {sorted(missing)} not found in the files")
        if not chains:
            raise UnknownSymbolError(f"symbol(s) {sorted(wanted)} not found in the files")
    # Names become file names: symbols such as "XBT/USD" must not make directories.
    chains = [replace(c, name=_UNSAFE.sub("_", c.name)) for c in chains]
    chains.sort(key=lambda c: (c.name, c.files))
    names: dict[str, int] = {}
    for i, c in enumerate(chains):
        names[c.name] = names.get(c.name, 0) + 1
        if names[c.name] > 1:
            chains[i] = replace(c, name=f"{c.name}-{names[c.name]}")
    return chains


def output_paths(
    chains: Sequence[Chain], out: str | PathLike[str], inputs: Sequence[str] = ()
) -> tuple[list[Chain], list[Path]]:
    """Where each chain's feature file goes.

    `out` is a directory (it exists as one, or its name does not end in `.parquet`): one file
    per chain, `out/<chain name>.parquet`. `out` is a `.parquet` file: the one chain's file;
    several chains of a format whose reader merges them (binance, tardis) become one merged
    chain read as one stream in local-time order (one engine, so not parallel); any other set
    of several chains is an error. A merged chain lists its files in `inputs` order (the
    caller's), as the reader was given them before chains existed.
    """
    path = Path(out)
    if path.is_dir() or path.suffix != ".parquet":
        return list(chains), [path / f"{c.name}.parquet" for c in chains]
    if len(chains) == 1:
        return list(chains), [path]
    formats = {c.format for c in chains}
    fmt = formats.pop()
    if formats or not REGISTRY[fmt].merges:
        names = ", ".join(c.name for c in chains)
        raise ValueError(
            f"{len(chains)} independent chains ({names}) cannot share {path.name}: give a "
            "directory as the output, one feature file per chain"
        )
    files = [f for c in chains for f in c.files]
    rank = {f: i for i, f in enumerate(inputs)}
    files.sort(key=lambda f: rank.get(f, len(rank)))
    symbols = tuple(s for c in chains for s in c.symbols)
    return [Chain(fmt, path.stem, tuple(files), symbols)], [path]
