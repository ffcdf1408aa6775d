"""The `featureplane` command: a thin layer over the library.

    featureplane schema [--feature-set ID] [--set FILE] [--json]
    featureplane replay FILES... --out OUT [--format auto|binance|...] [--jobs N]
                        [--scheduler local|dask] [--units scaled|real] [--backend python|rust]
    featureplane demo [--out DIR] [--seed N] [--backend python|rust]
    featureplane parity [FILES...] [--generated N] [--messages N] [--seed N]
    featureplane bench [--capture FILE] [--runs N] [--quick] [--json OUT] [--chart OUT.png]
    featureplane bench --scaling [--quick] [--json OUT] [--chart OUT.png]
    featureplane perf-gate --baseline FILE [--config FILE] [--write-baseline FILE]
                           [--binary FILE] [--canary]
    featureplane backtest ab|run [--capture FILE] [--loop numba|python] [--out FILE]
    featureplane ring status NAME [--remove-stale]
    featureplane strategy attach --ring NAME --symbol SYMBOL --strategy MODULE:CLASS
                         [--decision-interval-ms MS] [--start live|oldest] [--spin S]
                         [--cpus N[,N]] [--fifo PRIO] [--lock-memory]
    featureplane bench --transport [--quick] [--pin W,R] [--fifo PRIO] [--load N] [--ring-only]
                       [--json OUT]
    featureplane venue serve CAPTURE... [--port 0] [--speed X|max] [--faults SPEC]
    featureplane live --config FILE [--check] [--out FRAMES.parquet] [--record DIR]
                      [--duration S]
    featureplane live parity CAPTURE... [--faults SPEC]
    featureplane canary evaluate --metrics URL|FILE --criteria FILE [--baseline URL|FILE]
    featureplane feature check FAMILY [--sessions N] [--messages N] [--seed N]

Bad input ends with exit code 1 and one line on stderr (`featureplane: error: ...`, naming this
command's flags where the library names its keywords), never a traceback; a usage error exits
with 2 as argparse does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from featureplane import __version__
from featureplane.backtest import cli as backtest_cli
from featureplane.engine.backends import BACKENDS
from featureplane.errors import FeatureplaneError
from featureplane.live import cli as live_cli
from featureplane.rollout import cli as rollout_cli
from featureplane.schema import (
    DEFAULT_FEATURE_SET_ID,
    FLAG_EXACT,
    FLAG_ROLLING,
    FLAG_SCALED_INT,
    FeatureSet,
    get_feature_set,
)
from featureplane.sources.format import SourceOptions
from featureplane.sources.registry import FORMATS

EXIT_OK = 0
EXIT_ERROR = 1

_FLAG_NAMES = ((FLAG_SCALED_INT, "scaled"), (FLAG_EXACT, "exact"), (FLAG_ROLLING, "rolling"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error: argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    try:
        code: int = args.run(args)
    except BrokenPipeError:
        # Whoever read our stdout went away (`featureplane schema | head`): not an error. Point
        # stdout at /dev/null so the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (FeatureplaneError, OSError, ValueError) as exc:
        print(f"featureplane: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("featureplane: interrupted", file=sys.stderr)
        return 130
    return code


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Each option's default in its help (unless the help tells it already, or there is none
    to tell: a flag, an unset option); examples kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            "default" in text
            or action.default in (None, False, argparse.SUPPRESS)
            or action.option_strings == []
        ):
            return text
        return text + " (default: %(default)s)"


def _help(examples: str) -> dict[str, Any]:
    """Keyword arguments of a subcommand: the formatter and its examples."""
    return {"formatter_class": _Formatter, "epilog": "examples:" + examples}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="featureplane",
        description="Limit-order-book features (lob_shared_v1) for research, backtests and live.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"featureplane {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    schema = sub.add_parser(
        "schema",
        help="print a feature set's schema",
        **_help("""
  featureplane schema                 # ids, dtypes, scales, units, warm-up, flags
  featureplane schema --json | jq .   # the canonical JSON with its schema hash
  featureplane schema --set examples/feature-sets/research_v1.toml  # a declared set"""),
    )
    schema.add_argument("--feature-set", default=DEFAULT_FEATURE_SET_ID, metavar="ID",
                        help="the registered feature set to print")  # fmt: skip
    schema.add_argument("--set", default=None, metavar="FILE",
                        help="a declaration (TOML): its plan, metadata and hash")  # fmt: skip
    schema.add_argument("--json", action="store_true", help="the canonical JSON with its hash")
    schema.set_defaults(run=_cmd_schema)

    replay = sub.add_parser(
        "replay",
        help="recorded files -> Parquet feature files",
        **_help("""
  featureplane replay btcusdt_20240808.gz --out btc.parquet  # real units, nulls
  featureplane replay btcusdt_20240808.gz --out btc.parquet --units scaled  # exact ints
  featureplane replay data/ --out features/              # a file per chain, format detected
  featureplane replay a.gz b.gz --out ab.parquet --symbols BTCUSDT
  featureplane replay esh4.mbo.dbn.zst --out es.parquet  # Databento MBO
  featureplane replay btc.npz --out btc.parquet --instrument BTCUSDT:0.1:0.001"""),
    )
    replay.add_argument(
        "files", nargs="+", type=Path, metavar="FILES",
        help="files, globs or directories, of any supported format",
    )  # fmt: skip
    replay.add_argument(
        "--out", required=True, type=Path, metavar="OUT",
        help="a .parquet file (one chain), else a directory: one feature file per chain",
    )  # fmt: skip
    replay.add_argument(
        "--format",
        choices=("auto", *FORMATS),
        default="auto",
        help="the files' format; auto detects each file from its content",
    )
    replay.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="worker processes; default: sequential unless several chains, "
        "more than 2 CPUs and enough input make workers pay (the run says why)",
    )
    replay.add_argument("--scheduler", choices=("local", "dask"), default="local",
                        help="local worker processes, or a dask.distributed cluster")  # fmt: skip
    replay.add_argument("--scheduler-address", default=None, metavar="HOST:PORT",
                        help="a running dask scheduler (default: a local cluster)")  # fmt: skip
    replay.add_argument(
        "--units",
        choices=("real", "scaled"),
        default="real",
        help="real: prices and sizes as float64 in the instrument's units (mid a price, like "
        "microprice), null where a value is not ready; scaled: the kernel's exact ints (ticks, "
        "lots, mid in half ticks), for exact research and parity; the file states its units "
        "and every reader converts it to real units unless asked",
    )
    replay.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="the kernel; default $FEATUREPLANE_BACKEND, else rust where built",
    )
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")
    replay.add_argument("--symbols", nargs="+", default=None, help="read only these symbols")
    replay.add_argument(
        "--market",
        choices=("usdm", "coinm", "spot"),
        default=None,
        help="binance: the market of every file; default detected per file",
    )
    replay.add_argument(
        "--errors",
        choices=("skip", "raise"),
        default=None,
        help="skip and count bad input, or stop at the first (default: the source's own, "
        "skip for binance, raise for tardis and databento)",
    )
    replay.add_argument(
        "--on-missing-snapshot",
        choices=("raise", "skip"),
        default="raise",
        help="a symbol with depth diffs and no REST snapshot: stop (default) or drop its diffs",
    )
    replay.add_argument(
        "--messages-only",
        action="store_true",
        help="LOBSTER: read a message file without its orderbook file (no book feature ready)",
    )
    replay.add_argument(
        "--chunk-rows",
        type=int,
        default=None,
        metavar="N",
        help="binance: event rows per chunk (memory bound); default 65536",
    )
    replay.add_argument("--parser", choices=("auto", "rust", "python"), default="auto",
                        help="Binance line parser (auto: Rust where built)")  # fmt: skip
    replay.add_argument(
        "--instrument", action="append", type=backtest_cli.instrument_arg, default=None,
        metavar="SYM:TICK:LOT",
        help="tick and lot of a symbol (repeatable); hftbacktest arrays need one",
    )  # fmt: skip
    _feature_set_flag(replay)
    replay.set_defaults(run=_cmd_replay)

    demo = sub.add_parser(
        "demo",
        help="simulated session -> summary and plot",
        **_help("""
  featureplane demo --out out/demo             # summary on stdout, a PNG per symbol
  featureplane demo --seed 3 --backend python  # the Python reference kernel"""),
    )
    demo.add_argument("--out", type=Path, default=Path("featureplane-demo"), metavar="DIR",
                      help="folder for the plots and the summary JSON")  # fmt: skip
    demo.add_argument("--seed", type=int, default=7, help="the simulator's seed")
    demo.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="the kernel; default $FEATUREPLANE_BACKEND, else rust where built",
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(run=_cmd_demo)

    parity = sub.add_parser(
        "parity",
        help="every backend vs the Python reference, frame by frame (exit 1 on drift)",
        **_help("""
  featureplane parity                                  # simulated sessions with faults
  featureplane parity btcusdt.gz ethusdt.gz --verbose  # real captures, every column
  featureplane parity parity-slices/slice-000003-...   # a shadow mismatch, replayed"""),
    )
    parity.add_argument(
        "files", nargs="*", type=Path, metavar="FILES",
        help="recorded files of any venue (Binance and tardis files read together), or "
        "parity slices saved by shadow parity (directories)",
    )  # fmt: skip
    parity.add_argument("--generated", type=int, default=2, metavar="N",
                        help="simulated sessions with injected faults (default 2)")  # fmt: skip
    parity.add_argument("--messages", type=int, default=20_000, metavar="N",
                        help="messages per simulated session")  # fmt: skip
    parity.add_argument("--seed", type=int, default=1, help="seed of the first simulated session")
    parity.add_argument("--candidate", choices=BACKENDS, default=None,
                        help="the backend compared with the Python reference (default rust; "
                        "a slice's own serving backend)")  # fmt: skip
    parity.add_argument("--verbose", action="store_true", help="every column, not only drift")
    _feature_set_flag(parity)
    parity.set_defaults(run=_cmd_parity)

    bench = sub.add_parser(
        "bench",
        help="benchmark matrix (book only, book+features, hftbacktest) or --scaling",
        **_help("""
  featureplane bench --quick                   # a fast smoke run, every row checked
  featureplane bench --json b.json --chart b.png
  featureplane bench --scaling                 # cost per event vs symbols, depth; 100M events"""),
    )
    bench.add_argument("--capture", type=Path, default=None, metavar="FILE",
                       help="a Binance USD-M capture (default: the BTCUSDT sample)")  # fmt: skip
    bench.add_argument("--runs", type=int, default=5, help="timed rounds per row (median kept)")
    bench.add_argument("--quick", action="store_true", help="a fast smoke run")
    bench.add_argument("--scaling", action="store_true",
                       help="scaling curves and a 100M-event session")  # fmt: skip
    bench.add_argument("--transport", action="store_true",
                       help="frame transports side by side: ring, queue, pipe, bus")  # fmt: skip
    bench.add_argument("--pin", default="auto", metavar="W,R",
                       help="--transport: writer and reader cores of the pinned ring rows "
                            "(default: the first two cores; 'none' leaves them out)")  # fmt: skip
    bench.add_argument("--fifo", type=int, default=10, metavar="PRIO",
                       help="--transport: SCHED_FIFO priority of the tuned ring row "
                            "(0: no row)")  # fmt: skip
    bench.add_argument("--load", type=int, default=0, metavar="N",
                       help="--transport: N busy processes beside the run "
                            "(a loaded machine)")  # fmt: skip
    bench.add_argument("--ring-only", action="store_true",
                       help="--transport: the ring's rows alone")  # fmt: skip
    bench.add_argument("--json", type=Path, default=None, metavar="OUT",
                       help="write the figures as JSON")  # fmt: skip
    bench.add_argument("--chart", type=Path, default=None, metavar="OUT.png",
                       help="draw the matrix as a chart")  # fmt: skip
    bench.add_argument(
        "--live", action="store_true",
        help="live path on the loopback venue: latency per stage, throughput",
    )  # fmt: skip
    bench.add_argument("--live-captures", nargs="+", type=Path, default=None, metavar="FILE",
                       help="captures for --live (default: the Binance samples)")  # fmt: skip
    bench.add_argument(
        "--soak", action="store_true",
        help="with --live: every capture, --rounds times, faults, memory sampled",
    )  # fmt: skip
    bench.add_argument("--speed", type=float, default=10.0, help="soak: x real time")
    bench.add_argument("--faults", default=None, metavar="SPEC", help="soak: venue faults")
    bench.add_argument("--rounds", type=int, default=3, help="soak: rounds over the captures")
    bench.add_argument(
        "--feature-set", default=None, metavar="FILE|ID",
        help="rows of this set beside lob_shared_v1's specialised kernels (python and rust)",
    )  # fmt: skip
    bench.add_argument(
        "--metrics", action="store_true",
        help="with --live: the per-message path with runtime metrics off vs on (--runs rounds)",
    )  # fmt: skip
    bench.set_defaults(run=_cmd_bench)

    gate = sub.add_parser(
        "perf-gate",
        help="instruction counts of the Rust kernel vs a stored baseline (exit 1 on regression)",
        **_help("""
  featureplane perf-gate --baseline perf/baseline.json --config perf/gate.toml
  featureplane perf-gate --config perf/gate.toml --write-baseline perf/baseline.json"""),
    )
    gate.add_argument("--baseline", type=Path, default=None, metavar="FILE",
                      help="the stored counts to compare with")  # fmt: skip
    gate.add_argument("--config", type=Path, default=None, metavar="FILE",
                      help="thresholds (TOML, e.g. perf/gate.toml)")  # fmt: skip
    gate.add_argument("--write-baseline", type=Path, default=None, metavar="FILE",
                      help="store this run's counts as the new baseline")  # fmt: skip
    gate.add_argument("--binary", type=Path, default=None, metavar="FILE",
                      help="count this perf_gate build (default: cargo builds it)")  # fmt: skip
    gate.add_argument("--canary", action="store_true",
                      help="count the deliberately slowed perf-canary build")  # fmt: skip
    gate.set_defaults(run=_cmd_perf_gate)
    backtest = sub.add_parser(
        "backtest",
        help="hftbacktest backtests: legacy vs feature A/B (ab), report (run)",
        **_help("""
  featureplane backtest ab                      # legacy vs feature market maker: decisions
  featureplane backtest run --out report.png    # equity, position, fills, features"""),
    )
    backtest_cli.configure(backtest, _Formatter)
    backtest.set_defaults(run=_cmd_backtest)

    ring = sub.add_parser(
        "ring",
        help="shared-memory frame rings: status, stale segments",
        **_help("""
  featureplane ring status fp-btc                 # writer, cursor, readers and their lag
  featureplane ring status fp-btc --remove-stale  # clean up after a crashed writer"""),
    )
    ring_sub = ring.add_subparsers(dest="ring_command", required=True, metavar="COMMAND")
    status = ring_sub.add_parser("status", help="a ring's writer, cursor and readers")
    status.add_argument("name", help="the ring's name (/dev/shm/<name>)")
    status.add_argument("--remove-stale", action="store_true",
                        help="remove the segment if its writer is gone")  # fmt: skip
    status.set_defaults(run=_cmd_ring_status)

    strategy = sub.add_parser("strategy", help="run a strategy in this process on a frame ring",
                              **_help("""
  featureplane strategy attach --ring fp-btc --symbol BTCUSDT \\
      --strategy featureplane.strategy.examples:FeatureImbalanceMM"""))  # fmt: skip
    strategy_sub = strategy.add_subparsers(
        dest="strategy_command", required=True, metavar="COMMAND"
    )
    attach = strategy_sub.add_parser("attach", help="attach to a ring by name and run a strategy")
    attach.add_argument("--ring", required=True, metavar="NAME", help="the ring to attach to")
    attach.add_argument("--symbol", required=True, help="the symbol the strategy trades")
    attach.add_argument("--strategy", required=True, metavar="MODULE:CLASS",
                        help="a BaseStrategy subclass, built with no arguments")  # fmt: skip
    attach.add_argument("--decision-interval-ms", type=float, default=100.0, metavar="MS",
                        help="the strategy's decision interval")  # fmt: skip
    attach.add_argument(
        "--start",
        choices=("live", "oldest"),
        default="live",
        help="from the newest frame, or the oldest the ring still holds",
    )
    attach.add_argument("--spin", type=float, default=0.0, metavar="S",
                        help="seconds each wait spins before parking (latency: spin)")  # fmt: skip
    attach.add_argument("--cpus", default="", metavar="N[,N]",
                        help="pin this process to these cores")  # fmt: skip
    attach.add_argument("--fifo", type=int, default=0, metavar="PRIO",
                        help="SCHED_FIFO priority (0: off; refused is an error)")  # fmt: skip
    attach.add_argument("--lock-memory", action="store_true",
                        help="mlock the ring's segment in this process")  # fmt: skip
    attach.set_defaults(run=_cmd_strategy_attach)

    feature = sub.add_parser(
        "feature", help="feature families: check one (parity fuzz and benchmark)",
        **_help("""
  featureplane feature check ema                # python half; rust where the plan kernel is built
  featureplane feature check vwap --messages 20000"""),
    )  # fmt: skip
    feature_sub = feature.add_subparsers(dest="feature_command", required=True,
                                         metavar="SUBCOMMAND")  # fmt: skip
    fcheck = feature_sub.add_parser("check", help="a family's parity fuzz and benchmark")
    fcheck.add_argument("family", metavar="FAMILY", help="a catalogue family (e.g. ema, vwap)")
    fcheck.add_argument("--sessions", type=int, default=2, help="simulated sessions (faults)")
    fcheck.add_argument("--messages", type=int, default=5_000, help="messages per session")
    fcheck.add_argument("--seed", type=int, default=1, help="seed of the first session")
    fcheck.set_defaults(run=_cmd_feature_check)

    venue = sub.add_parser("venue", help="the loopback venue: captures served as Binance does",
                           **_help("""
  featureplane venue serve btcusdt.gz ethusdt.gz --speed max   # prints the port it bound
  featureplane venue serve btcusdt.gz --speed 10 --faults drop@500"""))  # fmt: skip
    live_cli.configure_venue(venue)
    live = sub.add_parser(
        "live",
        help="the live runtime (venue feed -> features -> strategies)",
        **_help("""
  featureplane live --config examples/live/loopback.toml --check
  featureplane live --config run.toml --out frames.parquet --duration 60
  featureplane live parity btcusdt.gz ethusdt.gz       # live equals research replay"""),
    )
    live_cli.configure_live(live)
    canary = sub.add_parser(
        "canary",
        help="the canary gate: PROMOTE (0), HOLD (10) or ROLLBACK (20) from exported metrics",
        **_help("""
  featureplane canary evaluate --metrics canary.prom --criteria deploy/canary/criteria.toml
  featureplane canary evaluate --metrics http://127.0.0.1:9464/metrics \\
      --baseline http://127.0.0.1:9465/metrics --criteria deploy/canary/criteria.toml"""),
    )
    rollout_cli.configure(canary, _Formatter)
    return parser


# ----- commands -------------------------------------------------------------------------------


def _cmd_schema(args: argparse.Namespace) -> int:
    from featureplane.features.plan import plan_of
    from featureplane.features.resolve import resolve_feature_set

    fs = resolve_feature_set(Path(args.set)) if args.set else get_feature_set(args.feature_set)
    if args.json:
        print(json.dumps(fs.to_json(), indent=2))
    else:
        print(format_schema(fs))
        if args.set:
            print(f"\nplan {plan_of(fs).canonical_json()}")
    return EXIT_OK


def _feature_set_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--feature-set", default=DEFAULT_FEATURE_SET_ID, metavar="FILE|ID",
        help="a declaration (TOML file) or a registered set id (default lob_shared_v1)",
    )  # fmt: skip


def _cmd_replay(args: argparse.Namespace) -> int:
    from featureplane.replay.parallel import replay_files

    if args.scheduler_address is not None and args.scheduler != "dask":
        raise ValueError("--scheduler-address needs --scheduler dask")
    options = SourceOptions(
        symbols=tuple(args.symbols) if args.symbols else None,
        market=args.market,
        errors=args.errors,
        on_missing_snapshot=args.on_missing_snapshot,
        chunk_rows=args.chunk_rows,
        parser=args.parser,
        instruments=tuple(args.instrument) if args.instrument else None,
        messages_only=args.messages_only,
    )
    summary = replay_files(
        args.files,
        args.out,
        format=args.format,
        jobs=args.jobs,
        scheduler=args.scheduler,
        scheduler_address=args.scheduler_address,
        units=args.units,
        backend=args.backend,
        progress=not args.no_progress,
        options=options,
        feature_set=_resolve_set(args.feature_set),
    )
    print(summary.format())
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    # Imported here: the demo pulls in the simulator and matplotlib, which schema and replay
    # do not need.
    from featureplane.demo import run_demo

    run_demo(args.out, seed=args.seed, backend=args.backend, progress=not args.no_progress)
    return EXIT_OK


def _cmd_parity(args: argparse.Namespace) -> int:
    from featureplane.checks.parity import (
        METRIC,
        check_events,
        format_report,
        generated_inputs,
        inputs_from_paths,
    )
    from featureplane.engine.backends import resolve_backend
    from featureplane.rollout.slice import is_slice

    slices = [f for f in args.files if is_slice(f)]
    files = [f for f in args.files if not is_slice(f)]
    candidate = args.candidate or "rust"
    fs = _resolve_set(args.feature_set)
    if resolve_backend(candidate, fs) != candidate:
        raise FeatureplaneError(f"the {candidate} backend is not built: nothing to compare")
    compared, mismatches = _parity_slices(slices, args.candidate, args.verbose)
    inputs = [*inputs_from_paths(files), *generated_inputs(args.generated, args.messages,
                                                           args.seed)]  # fmt: skip
    for item in inputs:
        report = check_events(
            item.name, item.symbols, item.events, candidate=candidate, feature_set=fs
        )
        compared += report.compared
        mismatches += report.mismatches
        if args.verbose or not report.ok:
            print(format_report(report))
        else:
            print(
                f"{item.name}: {report.frames_reference:,} frames x {len(report.columns)} "
                f"columns, 0 mismatches"
            )
        for note in item.notes:
            print(f"  {note}")
    rate = mismatches / max(compared, 1)
    print(f"{METRIC} {rate:.6g} ({mismatches:,} of {compared:,} values)")
    return EXIT_OK if mismatches == 0 else EXIT_ERROR


def _parity_slices(slices: list[Path], candidate: str | None, verbose: bool) -> tuple[int, int]:
    """Replay shadow-parity slices; (values compared, mismatches)."""
    from featureplane.checks.parity import format_report
    from featureplane.rollout.slice import check_slice, load_slice

    compared = mismatches = 0
    for path in slices:
        sl = load_slice(path)
        out = check_slice(sl, candidate)
        report = out.report
        compared += report.compared
        mismatches += report.mismatches
        print(format_report(report) if verbose or not report.ok else
              f"{report.input_name}: {report.frames_reference:,} frames, 0 mismatches")  # fmt: skip
        print(
            f"  recorded mismatch ({', '.join(sl.mismatched)}): "
            f"{'reproduced' if out.reproduced else 'not reproduced'} "
            f"(reference frame {'equal' if out.reference_reproduced else 'differs'}, "
            f"{report.candidate} frame {'equal' if out.candidate_reproduced else 'differs'})"
        )
    return compared, mismatches


def _cmd_feature_check(args: argparse.Namespace) -> int:
    from featureplane.checks.family import check_family
    from featureplane.features.catalogue import CATALOGUE

    if args.family not in CATALOGUE:
        raise FeatureplaneError(f"unknown family {args.family!r}; known: {sorted(CATALOGUE)}")
    if not (1 <= args.sessions <= 100 and 100 <= args.messages <= 1_000_000):
        raise ValueError("--sessions must be in [1, 100] and --messages in [100, 1000000]")
    result = check_family(
        args.family, sessions=args.sessions, messages=args.messages, seed=args.seed
    )
    print(result.format())
    return EXIT_OK if result.ok else EXIT_ERROR


def _cmd_backtest(args: argparse.Namespace) -> int:
    return backtest_cli.main(args)


def _parse_pin(text: str) -> tuple[int, int] | str | None:
    """`--pin`: "auto", "none", or two core numbers "W,R"."""
    if text in ("auto", "none"):
        return None if text == "none" else "auto"
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--pin takes two core numbers W,R (or auto, none), got {text!r}")
    return (int(parts[0]), int(parts[1]))


def _cmd_bench(args: argparse.Namespace) -> int:
    from featureplane.bench import chart

    if args.runs < 1:
        raise ValueError("--runs must be >= 1")
    if args.transport:
        from featureplane.bench import transport

        table = transport.run(
            quick=args.quick,
            progress=_print_block,
            pin=_parse_pin(args.pin),
            fifo_priority=args.fifo,
            load=args.load,
            ring_only=args.ring_only,
        )
        print(table.format())
        if args.json:
            args.json.write_text(json.dumps(table.to_json(), indent=2))
        return EXIT_OK if table.correct else EXIT_ERROR
    if args.live and args.metrics:
        from featureplane.bench import live_metrics

        cost = live_metrics.run(args.live_captures, rounds=args.runs, progress=_print_block)
        print(cost.format())
        if args.json:
            args.json.write_text(json.dumps(cost.to_json(), indent=2))
        return EXIT_OK if cost.correct else EXIT_ERROR
    if args.live:
        from featureplane.bench import live

        if args.soak:
            kwargs = {"faults": args.faults} if args.faults else {}
            outcome: live.Soak | live.LiveBench = live.soak(
                args.rounds, args.speed, captures=args.live_captures, progress=_print_block,
                **kwargs,
            )  # fmt: skip
        else:
            outcome = live.run(args.live_captures, progress=_print_block)
        print(outcome.format())
        if args.json:
            live.write_json(outcome, args.json)
        ok = not isinstance(outcome, live.LiveBench) or outcome.correct
        return EXIT_OK if ok else EXIT_ERROR
    if args.scaling:
        from featureplane.bench import scaling

        curves = scaling.run(quick=args.quick, progress=_print_block)
        print(curves.format().rsplit("\n\n", 1)[-1])
        if args.chart:
            chart.scaling_chart(curves, args.chart)
        if args.json:
            args.json.write_text(json.dumps(curves.to_json(), indent=2))
        return EXIT_OK if curves.ok else EXIT_ERROR
    from featureplane.bench import matrix

    if args.capture is not None and not args.capture.exists():
        raise FeatureplaneError(f"no capture at {args.capture}")
    fs = None if args.feature_set is None else _resolve_set(args.feature_set)
    sections, missing = matrix.sections(
        capture=args.capture, runs=args.runs, quick=args.quick, feature_set=fs
    )
    for name in missing:
        print(f"skipped {name}")
    result = matrix.run(sections, progress=_print_block)
    print(result.format().rsplit("\n\n", 1)[-1])
    if args.chart:
        chart.matrix_chart(result, args.chart)
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=2))
    return EXIT_OK if result.correct else EXIT_ERROR


def _resolve_set(arg: str) -> FeatureSet:
    """`--feature-set FILE|ID`: a registered id, else a declaration file."""
    from featureplane.features.resolve import resolve_feature_set

    return resolve_feature_set(arg)


def _print_block(text: str) -> None:
    print(f"{text}\n", flush=True)


def _cmd_perf_gate(args: argparse.Namespace) -> int:
    from featureplane.bench import gate

    ok = gate.run(args.config, args.baseline, args.write_baseline, args.binary, args.canary)
    return EXIT_OK if ok else EXIT_ERROR


def _cmd_ring_status(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from featureplane.frames import ring

    found = ring.remove_stale(args.name) if args.remove_stale else ring.probe(args.name)
    if found is None:
        print(f"no ring named {args.name!r}")
        return EXIT_ERROR
    print(json.dumps({"removed": args.remove_stale, **asdict(found)}, indent=2))
    return EXIT_ERROR if found.stale and not args.remove_stale else EXIT_OK


def _cmd_strategy_attach(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from featureplane.errors import PlacementError
    from featureplane.frames.placement import Placement, apply_placement, online_cpus
    from featureplane.frames.ring import RingReader
    from featureplane.strategy.ring import load_strategy, run_on_ring

    if args.decision_interval_ms <= 0:
        raise ValueError("--decision-interval-ms must be positive")
    if args.spin < 0:
        raise ValueError("--spin must be >= 0 seconds")
    cpus = [c.strip() for c in args.cpus.split(",") if c.strip()]
    if not all(c.isdigit() for c in cpus):
        raise ValueError(f"--cpus takes core numbers N[,N], got {args.cpus!r}")
    placement = Placement(tuple(map(int, cpus)), args.fifo)
    if args.fifo and args.spin > 0 and not 0 < len(set(placement.cpus)) < len(online_cpus()):
        # A FIFO spinner holds its core against every ordinary process: it must be pinned,
        # and leave at least one core to the rest of the machine.
        raise PlacementError(
            "--fifo with --spin needs --cpus naming fewer cores than the machine has "
            f"({len(online_cpus())} online): a FIFO spinner must leave a core to the system"
        )
    apply_placement(placement, strict=True)
    reader = RingReader(args.ring, start=args.start, lock_memory=args.lock_memory)
    stats = run_on_ring(
        reader,
        load_strategy(args.strategy),
        args.symbol,
        decision_interval_ns=int(args.decision_interval_ms * 1e6),
        spin=args.spin,
    )
    summary = asdict(stats)
    summary.pop("decision_ns")
    summary["gap_frames"] = len(summary["gap_frames"])
    print(json.dumps(summary, indent=2))
    return EXIT_OK


# ----- formatting -----------------------------------------------------------------------------


def format_schema(fs: FeatureSet) -> str:
    """A feature set as a text table with its id, version and schema hash."""
    head = ("id", "name", "dtype", "scale", "unit", "warm-up", "source", "flags")
    rows = [
        (
            str(f.feature_id),
            f.name,
            f.dtype,
            str(f.scale),
            f.unit,
            str(f.warmup_min_events),
            f.source_kind,
            ",".join(name for bit, name in _FLAG_NAMES if f.flags & bit) or "-",
        )
        for f in fs.features
    ]
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    right = {0, 3, 5}  # numbers right-aligned

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [
        f"{fs.feature_set_id} (schema version {fs.feature_schema_version}, {len(fs)} features)",
        f"schema_hash {fs.schema_hash}",
        f"schema_hash64 {fs.schema_hash64:016x}",
        "",
        line(head),
        line(["-" * w for w in widths]),
    ]
    out.extend(line(r) for r in rows)
    return "\n".join(out)


# The library names its options as Python keywords; the command line names its own flags.
_FLAGS = {
    "on_missing_snapshot": "--on-missing-snapshot",
    "market": "--market",
    "parser": "--parser",
    "errors": "--errors",
}
_KEYWORD = re.compile(r"\b(" + "|".join(_FLAGS) + r")='([^']*)'")
_INSTRUMENTS = re.compile(r"\binstruments=(?!\w)")


def cli_wording(text: str) -> str:
    """A library message with its option keywords as this command's flags:
    `on_missing_snapshot='skip'` -> `--on-missing-snapshot skip`, `instruments=` ->
    `--instrument SYMBOL:TICK:LOT`."""
    text = _KEYWORD.sub(lambda m: f"{_FLAGS[m[1]]} {m[2]}", text)
    text = text.replace("messages_only=True", "--messages-only")
    return _INSTRUMENTS.sub("--instrument SYMBOL:TICK:LOT", text)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return cli_wording(text)


if __name__ == "__main__":
    sys.exit(main())
