"""Chains: which recorded files one engine must replay in order, and where their output goes.

A chain (`featureplane.sources.format.Chain`) is a list of files one engine replays in order,
the book carrying across them: a Binance symbol's consecutive captures, a LOBSTER message file
and its orderbook file, tardis files sharing a symbol; each venue plans its own files
(`SourceFormat.plan`). Chains share no symbol stream, so they replay independently, each into
its own feature file (`featureplane.replay.parallel`). docs/research-replay.md has the rules.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from os import PathLike, fspath
from pathlib import Path

from featureplane.errors import UnknownSymbolError
from featureplane.sources.format import DATA_SUFFIXES, Chain, SourceOptions
from featureplane.sources.registry import REGISTRY, detect_format, source_format

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


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
        chains.extend(source_format(fmt).plan(members, options))
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
