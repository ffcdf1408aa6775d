"""Replay of many files: chains replayed in parallel, one feature file per chain.

`replay_files` groups the inputs into chains (`featureplane.replay.chains`: files one engine
replays in order, the book carrying across them), spreads the chains over worker processes
(`concurrent.futures`, or `dask.distributed`) and each chain writes its own feature file. A
chain's file depends on the chain only, never on the scheduler or the worker count, so a
parallel run is byte-identical to a sequential one. docs/research-replay.md.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featureplane import _lazy
from featureplane.engine.backends import resolve_backend
from featureplane.errors import ChainReplayError
from featureplane.features.resolve import resolve_feature_set
from featureplane.frames import DEFAULT_UNITS
from featureplane.replay.chains import expand_inputs, output_paths, plan_chains
from featureplane.schema import DEFAULT_FEATURE_SET_ID, FeatureSet
from featureplane.sources.format import Chain, SourceOptions
from featureplane.sources.registry import open_source

if TYPE_CHECKING:
    from concurrent.futures import Future

    from featureplane.engine.config import EngineConfig
    from featureplane.replay.run import ReplaySummary

SCHEDULERS: tuple[str, ...] = ("local", "dask")


# ----- replaying one chain --------------------------------------------------------------------


@dataclass(frozen=True)
class ReplaySettings:
    """What every chain of a run shares (picklable: sent to the workers)."""

    units: str = DEFAULT_UNITS
    backend: str | None = None
    options: SourceOptions = field(default_factory=SourceOptions)
    config: EngineConfig | None = None
    feature_set: FeatureSet | None = None
    """The set to compute (None: the default); resolved once, so every worker runs it."""


def replay_chain(
    chain: Chain,
    out: str | PathLike[str],
    settings: ReplaySettings | None = None,
    *,
    progress: bool = False,
    on_messages: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Replay one chain into one feature file (in this process); `on_messages` as for
    `replay_events`."""
    # Imported here, where a chain is replayed: the engine and the Parquet writer (pyarrow)
    # load while the command has already planned its chains and read their heads.
    from featureplane.replay.run import portable, replay_events
    from featureplane.sources._common import source_notes

    settings = settings or ReplaySettings()
    options = settings.options
    if chain.symbols:
        # Only what concerns this chain: a reader asked for a symbol its files do not hold
        # raises (another chain holds it), and one given extra instruments lists them.
        have = {s.upper() for s in chain.symbols}
        if options.symbols is not None:
            wanted = {s.upper() for s in options.symbols}
            options = replace(
                options, symbols=tuple(s for s in chain.symbols if s.upper() in wanted)
            )
        if options.instruments is not None:
            mine = tuple(i for i in options.instruments if i.symbol.upper() in have)
            options = replace(options, instruments=mine)
    source = open_source(chain.format, chain.files, options)
    summary = replay_events(
        source,
        source.symbols,
        out,
        units=settings.units,
        backend=settings.backend,
        progress=progress,
        feature_set=settings.feature_set or DEFAULT_FEATURE_SET_ID,
        config=settings.config,
        sources=source.files,
        source_stats=lambda: portable(source.stats, source.files),
        on_messages=on_messages,
    )
    summary.source_summary = source.summary()
    summary.notes = source_notes(source.stats)
    return summary


@dataclass(frozen=True)
class _Outcome:
    """A worker's answer: a summary, or the error as text (exceptions with required arguments,
    such as `SourceFormatError`, do not survive pickling)."""

    index: int
    summary: ReplaySummary | None
    error: str = ""


_progress_queue: Any = None
"""In a local worker: where its message counts go (set by `_init_worker`), for the parent's bar."""


def _init_worker(queue: Any) -> None:
    global _progress_queue
    _progress_queue = queue


def _run_chain(index: int, chain: Chain, out: str, settings: ReplaySettings) -> _Outcome:
    """The task a worker process runs (module level: spawn and dask import it by name)."""
    report = _progress_queue.put if _progress_queue is not None else None
    try:
        return _Outcome(index, replay_chain(chain, out, settings, on_messages=report))
    except Exception as exc:  # reported to the parent, which raises ChainReplayError
        return _Outcome(index, None, _failure(chain, exc))


def _failure(chain: Chain, exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    named = any(Path(f).name in text for f in chain.files)
    where = "" if named else f" ({', '.join(Path(f).name for f in chain.files)})"
    return f"chain {chain.name}{where}: {type(exc).__name__}: {text}"


# ----- replaying many chains ------------------------------------------------------------------


@dataclass
class ParallelSummary:
    """What `replay_files` did: one `ReplaySummary` per chain, in chain order."""

    chains: list[Chain]
    outputs: list[Path]
    summaries: list[ReplaySummary]
    scheduler: str
    workers: int
    seconds: float
    """Wall time of the whole run (planning, workers starting, every chain)."""
    plan: str = ""
    """How the run was scheduled, and why (`choose_workers`)."""

    def __repr__(self) -> str:
        # The dataclass repr would print every chain's file list and summary.
        flags = ", ".join(f"{k} {v:,}" for k, v in self.flag_counts().items() if v) or "none"
        return (
            f"<ParallelSummary {len(self.chains)} chains, {self.files} files: "
            f"{self.total('frames'):,} frames from {self.total('messages'):,} messages, "
            f"{self.workers} worker(s) ({self.scheduler}), {self.seconds:.2f} s, flags: {flags}>"
        )

    @property
    def files(self) -> int:
        """Input files replayed, over every chain."""
        return sum(len(c.files) for c in self.chains)

    def total(self, name: str) -> int:
        """A count summed over the chains: "messages", "events" or "frames"."""
        return sum(int(getattr(s, name)) for s in self.summaries)

    @property
    def events_per_s(self) -> float:
        """Event rows of every chain per second of the run's wall time (NaN for a zero time)."""
        return self.total("events") / self.seconds if self.seconds > 0 else float("nan")

    def flag_counts(self) -> dict[str, int]:
        """Frames carrying each quality flag, summed over the chains."""
        return _sum_counts(s.flag_counts for s in self.summaries)

    def counters(self) -> dict[str, int]:
        """The engines' counters (duplicates, out_of_order, gaps, ...), summed over the
        chains."""
        return _sum_counts(s.counters for s in self.summaries)

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON values (per chain: name, files, output, its summary)."""
        return {
            "files": self.files,
            "chains": [
                {"name": c.name, "files": list(c.files), "out": str(o), **s.to_dict()}
                for c, o, s in zip(self.chains, self.outputs, self.summaries, strict=True)
            ],
            **{k: self.total(k) for k in ("messages", "events", "frames")},
            "flag_counts": self.flag_counts(),
            "counters": self.counters(),
            "scheduler": self.scheduler,
            "workers": self.workers,
            "plan": self.plan,
            "seconds": self.seconds,
            "events_per_s": self.events_per_s,
        }

    def format(self) -> str:
        """What the CLI prints: one chain as `ReplaySummary.format()`, several as totals plus
        a line per chain."""
        if len(self.summaries) == 1:
            return self.summaries[0].format() + (f"\nscheduling: {self.plan}" if self.plan else "")
        flags = ", ".join(f"{k} {v}" for k, v in self.flag_counts().items())
        counters = ", ".join(f"{k} {v}" for k, v in sorted(self.counters().items()))
        lines = [
            f"replayed {self.files} files in {len(self.chains)} chains on {self.workers} "
            f"worker(s) ({self.scheduler}) in {self.seconds:.2f} s",
            f"scheduling: {self.plan}",
            f"{self.total('messages')} messages, {self.total('events')} event rows, "
            f"{self.total('frames')} frames ({self.events_per_s:,.0f} events/s)",
            f"frames flagged: {flags}",
            f"engine: {counters}",
        ]
        for chain, out, s in zip(self.chains, self.outputs, self.summaries, strict=True):
            lines.append(
                f"  {chain.name}: {len(chain.files)} file(s), {s.events} events, {s.frames} "
                f"frames, {s.seconds:.2f} s -> {out}"
            )
            # Each chain's skips and warnings: a run of many files must not hide them.
            lines.extend(f"    {note}" for note in s.notes)
        return "\n".join(lines)


def _sum_counts(items: Iterable[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for counts in items:
        for k, v in counts.items():
            out[k] = out.get(k, 0) + v
    return out


def replay_files(
    paths: Iterable[str | PathLike[str]],
    out: str | PathLike[str],
    *,
    format: str = "auto",
    jobs: int | None = None,
    scheduler: str = "local",
    scheduler_address: str | None = None,
    units: str = DEFAULT_UNITS,
    backend: str | None = None,
    progress: bool = True,
    options: SourceOptions | None = None,
    config: EngineConfig | None = None,
    dask_processes: bool = True,
    feature_set: str | PathLike[str] | FeatureSet = DEFAULT_FEATURE_SET_ID,
) -> ParallelSummary:
    """Replay many files, chain by chain, over worker processes; see `output_paths` for `out`.

    Parameters
    ----------
    paths
        Files, globs and directories (`expand_inputs`), of one or several formats.
    out
        A directory (one feature file per chain) or a `.parquet` file (see `output_paths`).
    format
        "auto" (detect each file) or a `featureplane.sources.registry.REGISTRY` name for every file.
    jobs
        Worker processes (default: one per chain, at most the CPU count). With one worker the
        local scheduler runs in this process.
    scheduler
        "local" (`ProcessPoolExecutor`, spawned workers) or "dask" (`dask.distributed`).
    scheduler_address
        dask only: `HOST:PORT` of a running scheduler whose workers import this featureplane
        and see the same paths; default a `LocalCluster` on 127.0.0.1, closed at the end.
    units, backend, config
        As for `replay_events`; the backend is resolved here, so every worker runs the same.
    progress
        A tqdm bar on stderr: messages for one chain, files for several.
    options
        Reader options (`SourceOptions`).
    dask_processes
        The `LocalCluster`'s workers are processes (default) or threads of this process.
    feature_set
        A registered id, a declaration TOML file or a `FeatureSet` (default lob_shared_v1).

    Raises
    ------
    ChainReplayError
        A chain failed (several chains); names the chain and its files. Chains still queued
        are cancelled; finished chains keep their (complete) files.
    SourceFormatError, ValueError, FeatureplaneError
        Bad input found while planning, or the error of the only chain.
    """
    if scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {scheduler!r}")
    if jobs is not None and jobs < 1:
        raise ValueError("jobs must be positive")
    start = time.perf_counter()
    fs = resolve_feature_set(
        Path(feature_set) if isinstance(feature_set, PathLike) else feature_set
    )
    settings = ReplaySettings(
        units, resolve_backend(backend, fs), options or SourceOptions(), config, fs
    )
    inputs = expand_inputs(paths)
    chains, outs = output_paths(
        plan_chains(inputs, format=format, options=settings.options), out, inputs
    )
    if outs != [Path(out)]:  # a directory of chain files (made here); a file's folder must exist
        Path(out).mkdir(parents=True, exist_ok=True)
    if scheduler == "dask" and len(chains) == 1 and scheduler_address is None:
        workers, plan = (
            1,
            "one chain: replayed in this process (a local dask cluster would only add start-up)",
        )
        scheduler = "local"
    elif scheduler == "dask":
        workers, plan = min(jobs or _cpus(), len(chains)), "dask"
    else:
        workers, plan = choose_workers(chains, jobs)
    if scheduler == "dask":
        summaries, workers = _run_dask(
            chains, outs, settings, workers, scheduler_address, dask_processes, progress
        )
        plan = f"dask: {workers} worker(s)"
    elif workers == 1:
        summaries = _run_here(chains, outs, settings, progress)
    else:
        summaries = _run_pool(chains, outs, settings, workers, progress)
    seconds = time.perf_counter() - start
    return ParallelSummary(chains, outs, summaries, scheduler, workers, seconds, plan)


PARALLEL_MIN_BYTES = 256 << 20
"""Compressed input below which worker processes cannot pay for their start-up (each spawned
worker imports numpy, pyarrow and featureplane: about a second on a small machine)."""


def choose_workers(chains: list[Chain], jobs: int | None) -> tuple[int, str]:
    """How many worker processes replay `chains`, and why (the summary and the CLI say it).

    `jobs` given: that many (at most one per chain). Default: sequential unless parallelism can
    pay: several chains, more than two CPUs (on two, the workers and the parent share them and
    measured runs were slower), and enough input to outweigh the workers' start-up.
    """
    if jobs is not None:
        n = min(jobs, len(chains))
        return n, f"{n} worker(s), as asked" if n > 1 else "sequential, as asked"
    cpus = _cpus()
    size = sum(Path(f).stat().st_size for c in chains for f in c.files)
    if len(chains) == 1:
        return 1, "sequential: one chain"
    if cpus <= 2:
        return 1, f"sequential: {cpus} CPU(s), parallel workers would not pay (--jobs N to force)"
    if size < PARALLEL_MIN_BYTES:
        mb = size / (1 << 20)
        return 1, f"sequential: {mb:.0f} MB of input is too little to pay for worker start-up"
    n = min(cpus, len(chains))
    return n, f"{n} workers: {len(chains)} chains, {cpus} CPUs"


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def _run_here(
    chains: list[Chain], outs: list[Path], settings: ReplaySettings, progress: bool
) -> list[ReplaySummary]:
    if len(chains) == 1:  # the plain replay: its own errors, its message bar
        return [replay_chain(chains[0], outs[0], settings, progress=progress)]
    summaries = []
    with _FileBar(progress, chains) as bar:
        for chain, out in zip(chains, outs, strict=True):
            try:
                summaries.append(replay_chain(chain, out, settings, on_messages=bar.messages))
            except Exception as exc:
                raise ChainReplayError(_failure(chain, exc)) from exc
            bar.done(chain)
    return summaries


def _largest_first(chains: list[Chain]) -> list[int]:
    """Submission order: the biggest chains start first, so no long chain starts last."""
    size = [sum(Path(f).stat().st_size for f in c.files) for c in chains]
    return sorted(range(len(chains)), key=lambda i: (-size[i], i))


def _collect(
    outcomes: Iterator[_Outcome], chains: list[Chain], bar: _FileBar
) -> list[ReplaySummary]:
    """Summaries in chain order, whatever order the workers finish in."""
    done: dict[int, ReplaySummary] = {}
    for outcome in outcomes:
        if outcome.summary is None:
            raise ChainReplayError(f"{outcome.error} ({len(done)} other chain(s) written)")
        done[outcome.index] = outcome.summary
        bar.done(chains[outcome.index])
    return [done[i] for i in range(len(chains))]


def _run_pool(
    chains: list[Chain], outs: list[Path], settings: ReplaySettings, workers: int, progress: bool
) -> list[ReplaySummary]:
    # Imported here: a replay on one process (the command line's default) never pays for them.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # spawn, not fork: the parent may hold threads (pyarrow, tqdm) that fork would copy mid-state,
    # and spawn behaves the same on every platform.
    _refuse_while_bootstrapping()
    context = multiprocessing.get_context("spawn")
    queue = context.SimpleQueue() if progress else None
    with (
        ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(queue,)
        ) as pool,
        _FileBar(progress, chains, queue) as bar,
    ):
        futures = [
            pool.submit(_run_chain, i, chains[i], str(outs[i]), settings)
            for i in _largest_first(chains)
        ]
        try:
            return _collect(_as_completed(futures), chains, bar)
        except BrokenProcessPool as exc:
            raise ChainReplayError(
                f"a replay worker process died ({exc}); killed for memory, or a script that "
                "calls replay_files with jobs > 1 lacks `if __name__ == '__main__':` (workers "
                "are spawned and import the main module)"
            ) from exc
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _refuse_while_bootstrapping() -> None:
    """A spawned worker imports the main module: a script that calls `replay_files` without the
    `if __name__ == "__main__":` guard would start workers from each worker. Stop that worker
    with one line (the parent then reports the broken pool with the same hint) instead of
    multiprocessing's traceback per worker."""
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        sys.stderr.write(
            "featureplane: replay_files with jobs > 1 ran while a worker imported the main "
            "module; put the call under `if __name__ == '__main__':`\n"
        )
        raise SystemExit(1)


def _as_completed(futures: list[Future[_Outcome]]) -> Iterator[_Outcome]:
    from concurrent.futures import FIRST_COMPLETED, wait

    pending = set(futures)
    while pending:
        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
        for f in sorted(finished, key=futures.index):
            yield f.result()


def _run_dask(
    chains: list[Chain],
    outs: list[Path],
    settings: ReplaySettings,
    workers: int,
    address: str | None,
    processes: bool,
    progress: bool,
) -> tuple[list[ReplaySummary], int]:
    # Imported here (only `--scheduler dask` needs it) and as Any: distributed is untyped.
    dd: Any = _lazy.optional("distributed", "dask", "--scheduler dask")
    import logging

    cluster = None
    if address is None:
        # Processes listen on loopback only; threads talk in-process. The scheduler's HTTP
        # server (no dashboard) takes a free loopback port: a fixed one clashes with any other
        # cluster on the machine (and dask then warns).
        network = {"host": "127.0.0.1"} if processes else {}
        cluster = dd.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            worker_dashboard_address="127.0.0.1:0",  # else in-process workers listen on 0.0.0.0
            silence_logs=logging.ERROR,
            **network,
        )
    client = dd.Client(cluster if address is None else _dask_address(address))
    try:
        n_workers = len(client.scheduler_info()["workers"])
        futures = [
            client.submit(
                _run_chain, i, chains[i], str(outs[i]), settings, key=f"fp-{i}-{chains[i].name}"
            )
            for i in _largest_first(chains)
        ]
        with _FileBar(progress, chains) as bar:
            try:
                return _collect(
                    (f.result() for f in dd.as_completed(futures)), chains, bar
                ), n_workers
            except BaseException:
                client.cancel(futures)
                raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _dask_address(address: str) -> str:
    return address if "://" in address else f"tcp://{address}"


class _FileBar:
    """A tqdm bar of the messages replayed over all chains, with the files finished beside it
    (or nothing). Workers send their message counts through `queue`, read by a thread here."""

    def __init__(self, enabled: bool, chains: list[Chain], queue: Any = None) -> None:
        self._bar: Any = None
        self._files = sum(len(c.files) for c in chains)
        self._done = 0
        self._queue = queue
        self._reader: threading.Thread | None = None
        if enabled:
            from tqdm.auto import tqdm

            desc = f"replay {len(chains)} chains"
            self._bar = tqdm(unit=" msg", unit_scale=True, file=sys.stderr, desc=desc)
            self._bar.set_postfix_str(f"files 0/{self._files}")
            if queue is not None:
                self._reader = threading.Thread(target=self._read, daemon=True)
                self._reader.start()

    def messages(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def _read(self) -> None:
        while (n := self._queue.get()) is not None:
            self.messages(n)

    def done(self, chain: Chain) -> None:
        self._done += len(chain.files)
        if self._bar is not None:
            self._bar.set_postfix_str(f"files {self._done}/{self._files}, {chain.name}")

    def __enter__(self) -> _FileBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._queue.put(None)  # after every worker's counts: the pool has shut down
            self._reader.join(timeout=10)
        if self._bar is not None:
            self._bar.close()
