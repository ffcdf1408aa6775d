"""The `featureplane` command: a thin layer over the library.

    featureplane schema [--feature-set ID] [--json]
    featureplane replay FILES... --out OUT [--format auto|binance|...] [--jobs N]
                        [--scheduler local|dask] [--units scaled|real] [--backend python|rust]
    featureplane demo [--out DIR] [--seed N] [--backend python|rust]
    featureplane parity [FILES...] [--generated N] [--messages N] [--seed N]
    featureplane bench [--capture FILE] [--runs N] [--quick] [--json OUT] [--chart OUT.png]
    featureplane bench --scaling [--quick] [--json OUT] [--chart OUT.png]
    featureplane perf-gate --baseline FILE [--config FILE] [--write-baseline FILE]
                           [--binary FILE] [--canary]
    featureplane backtest ab|run [--capture FILE] [--loop numba|python] [--out FILE]
    featureplane venue serve CAPTURE... [--port 0] [--speed X|max] [--faults SPEC]
    featureplane live --config FILE [--check] [--out FRAMES.parquet] [--record DIR]
                      [--duration S]
    featureplane live parity CAPTURE... [--faults SPEC]

Bad input ends with exit code 1 and one line on stderr (`featureplane: error: ...`), never a
traceback; a usage error exits with 2 as argparse does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from featureplane import __version__
from featureplane.backtest import cli as backtest_cli
from featureplane.engine.backends import BACKENDS
from featureplane.errors import FeatureplaneError
from featureplane.instruments import InstrumentSpec
from featureplane.live import cli as live_cli
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="featureplane",
        description="Limit-order-book features (lob_shared_v1) for research, backtests and live.",
    )
    parser.add_argument("--version", action="version", version=f"featureplane {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    schema = sub.add_parser("schema", help="print a feature set's schema")
    schema.add_argument("--feature-set", default=DEFAULT_FEATURE_SET_ID, metavar="ID")
    schema.add_argument("--json", action="store_true", help="the canonical JSON with its hash")
    schema.set_defaults(run=_cmd_schema)

    replay = sub.add_parser("replay", help="recorded files -> Parquet feature files")
    replay.add_argument(
        "files", nargs="+", type=Path, metavar="FILES",
        help="files, globs or directories, of any supported format",
    )  # fmt: skip
    replay.add_argument(
        "--out", required=True, type=Path, metavar="OUT",
        help="a .parquet file (one chain), else a directory: one feature file per chain",
    )  # fmt: skip
    replay.add_argument("--format", choices=("auto", *FORMATS), default="auto")
    replay.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="worker processes (default: one per chain, <= CPUs)")  # fmt: skip
    replay.add_argument("--scheduler", choices=("local", "dask"), default="local")
    replay.add_argument("--scheduler-address", default=None, metavar="HOST:PORT",
                        help="a running dask scheduler (default: a local cluster)")  # fmt: skip
    replay.add_argument("--units", choices=("scaled", "real"), default="scaled")
    replay.add_argument("--backend", choices=BACKENDS, default=None)
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")
    replay.add_argument("--symbols", nargs="+", default=None, help="read only these symbols")
    replay.add_argument("--market", choices=("usdm", "spot"), default=None)
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
    replay.add_argument("--chunk-rows", type=int, default=None, metavar="N")
    replay.add_argument("--parser", choices=("auto", "rust", "python"), default="auto",
                        help="Binance line parser (auto: Rust where built)")  # fmt: skip
    replay.add_argument(
        "--instrument", action="append", type=_instrument, default=None, metavar="SYM:TICK:LOT",
        help="tick and lot of a symbol (repeatable); hftbacktest arrays need one",
    )  # fmt: skip
    replay.set_defaults(run=_cmd_replay)

    demo = sub.add_parser("demo", help="simulated session -> summary and plot")
    demo.add_argument("--out", type=Path, default=Path("featureplane-demo"), metavar="DIR")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--backend", choices=BACKENDS, default=None)
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(run=_cmd_demo)

    parity = sub.add_parser(
        "parity", help="every backend vs the Python reference, frame by frame (exit 1 on drift)"
    )
    parity.add_argument(
        "files", nargs="*", type=Path, metavar="FILES",
        help="Binance captures (.gz, read together) and LOBSTER archives (.zip)",
    )  # fmt: skip
    parity.add_argument("--generated", type=int, default=2, metavar="N",
                        help="simulated sessions with injected faults (default 2)")  # fmt: skip
    parity.add_argument("--messages", type=int, default=20_000, metavar="N")
    parity.add_argument("--seed", type=int, default=1)
    parity.add_argument("--candidate", choices=BACKENDS, default="rust")
    parity.add_argument("--verbose", action="store_true", help="every column, not only drift")
    parity.set_defaults(run=_cmd_parity)

    bench = sub.add_parser(
        "bench", help="benchmark matrix (book only, book+features, hftbacktest) or --scaling"
    )
    bench.add_argument("--capture", type=Path, default=None, metavar="FILE",
                       help="a Binance USD-M capture (default: the BTCUSDT sample)")  # fmt: skip
    bench.add_argument("--runs", type=int, default=5)
    bench.add_argument("--quick", action="store_true", help="a fast smoke run")
    bench.add_argument("--scaling", action="store_true",
                       help="scaling curves and a 100M-event session")  # fmt: skip
    bench.add_argument("--json", type=Path, default=None, metavar="OUT")
    bench.add_argument("--chart", type=Path, default=None, metavar="OUT.png")
    bench.add_argument(
        "--live", action="store_true",
        help="live path on the loopback venue: latency per stage, throughput",
    )  # fmt: skip
    bench.add_argument("--live-captures", nargs="+", type=Path, default=None, metavar="FILE")
    bench.add_argument(
        "--soak", action="store_true",
        help="with --live: every capture, --rounds times, faults, memory sampled",
    )  # fmt: skip
    bench.add_argument("--speed", type=float, default=10.0, help="soak: x real time")
    bench.add_argument("--faults", default=None, metavar="SPEC", help="soak: venue faults")
    bench.add_argument("--rounds", type=int, default=3, help="soak: rounds over the captures")
    bench.set_defaults(run=_cmd_bench)

    gate = sub.add_parser(
        "perf-gate",
        help="instruction counts of the Rust kernel vs a stored baseline (exit 1 on regression)",
    )
    gate.add_argument("--baseline", type=Path, default=None, metavar="FILE")
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
        "backtest", help="hftbacktest backtests: legacy vs feature A/B (ab), report (run)"
    )
    backtest_cli.configure(backtest)
    backtest.set_defaults(run=_cmd_backtest)
    venue = sub.add_parser("venue", help="the loopback venue: captures served as Binance does")
    live_cli.configure_venue(venue)
    live = sub.add_parser("live", help="the live runtime (venue feed -> features -> strategies)")
    live_cli.configure_live(live)
    return parser


# ----- commands -------------------------------------------------------------------------------


def _cmd_schema(args: argparse.Namespace) -> int:
    fs = get_feature_set(args.feature_set)
    if args.json:
        print(json.dumps(fs.to_json(), indent=2))
    else:
        print(format_schema(fs))
    return EXIT_OK


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

    if resolve_backend(args.candidate) != args.candidate:
        raise FeatureplaneError(f"the {args.candidate} backend is not built: nothing to compare")
    inputs = [*inputs_from_paths(args.files), *generated_inputs(args.generated, args.messages,
                                                                 args.seed)]  # fmt: skip
    compared = mismatches = 0
    for item in inputs:
        report = check_events(item.name, item.symbols, item.events, candidate=args.candidate)
        compared += report.compared
        mismatches += report.mismatches
        if args.verbose or not report.ok:
            print(format_report(report))
        else:
            print(
                f"{item.name}: {report.frames_reference:,} frames x {len(report.columns)} "
                f"columns, 0 mismatches"
            )
    rate = mismatches / max(compared, 1)
    print(f"{METRIC} {rate:.6g} ({mismatches:,} of {compared:,} values)")
    return EXIT_OK if mismatches == 0 else EXIT_ERROR


def _cmd_backtest(args: argparse.Namespace) -> int:
    return backtest_cli.main(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    from featureplane.bench import chart

    if args.runs < 1:
        raise ValueError("--runs must be >= 1")
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
    sections, missing = matrix.sections(capture=args.capture, runs=args.runs, quick=args.quick)
    for name in missing:
        print(f"skipped {name}")
    result = matrix.run(sections, progress=_print_block)
    print(result.format().rsplit("\n\n", 1)[-1])
    if args.chart:
        chart.matrix_chart(result, args.chart)
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=2))
    return EXIT_OK if result.correct else EXIT_ERROR


def _print_block(text: str) -> None:
    print(f"{text}\n", flush=True)


def _cmd_perf_gate(args: argparse.Namespace) -> int:
    from featureplane.bench import gate

    ok = gate.run(args.config, args.baseline, args.write_baseline, args.binary, args.canary)
    return EXIT_OK if ok else EXIT_ERROR


def _instrument(text: str) -> InstrumentSpec:
    """`SYMBOL:TICK:LOT` as an `InstrumentSpec` (argparse reports a bad one as a usage error)."""
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected SYMBOL:TICK:LOT, got {text!r}")
    try:
        return InstrumentSpec(*parts)
    except (ValueError, ArithmeticError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


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


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return text


if __name__ == "__main__":
    sys.exit(main())
