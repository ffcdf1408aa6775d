"""`featureplane backtest ab|run`: the command-line face of `featureplane.backtest.ab`.

    featureplane backtest ab  [--capture FILE ...] [--loop numba|python]
                              [--feed precomputed|streaming] [--symbol SYM ...] [--lead SYM]
    featureplane backtest run [--capture FILE ...] [--variant feature|legacy]
                              [--symbol SYM ...] [--out report.png|.html]

Both read recorded files of any venue the source registry opens (Binance, LOBSTER, tardis,
Databento, hftbacktest `.npz`; `--format` to name it, `--instrument SYM:TICK:LOT` where the
files carry no grid), several at once (default: the BTCUSDT USD-M sample beside the
repository). `ab --lead SYM` runs the cross-asset market maker on a two-asset backtest: it
trades `--symbol` and leans on the lead's imbalance. `--symbol A B ...` quotes every symbol
named in one backtest (`featureplane.backtest.each`, the Python runner). `ab` exits with 1 when
the legacy and feature strategies decide differently.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from featureplane.engine.backends import BACKENDS
from featureplane.errors import FeatureplaneError

if TYPE_CHECKING:
    from featureplane.adapters.hftbacktest.adapter import ExecutionModel
    from featureplane.backtest.feeds import SymbolFeed
    from featureplane.instruments import InstrumentSpec
    from featureplane.schema import FeatureSet
    from featureplane.strategy.examples import ImbalanceMMParams

DEFAULT_CAPTURE = Path("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"
"""The BTCUSDT USD-M capture, under the data root (`featureplane.bench.datasets.data_root`)."""


def _default_capture() -> Path:
    from featureplane.bench.datasets import DATA_ENV, data_root

    path = data_root() / DEFAULT_CAPTURE
    if not path.exists():
        raise FileNotFoundError(
            2,
            f"no --capture given and no default capture (set ${DATA_ENV} to a data folder)",
            str(path),
        )
    return path


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--capture",
        type=Path,
        action="append",
        default=None,
        metavar="FILE",
        help="a recorded file of any venue, a directory or a glob; repeat for several "
        "(default: the BTCUSDT USD-M sample)",
    )
    p.add_argument(
        "--format",
        choices=("auto", *_venues()),
        default="auto",
        help="the files' venue (default: detected from each file's content)",
    )
    p.add_argument(
        "--instrument",
        action="append",
        type=instrument_arg,
        default=None,
        metavar="SYM:TICK:LOT",
        help="tick and lot of a symbol whose files carry none (LOBSTER, hftbacktest .npz)",
    )
    p.add_argument(
        "--symbol",
        nargs="+",
        default=None,
        metavar="SYM",
        help="the traded symbol, or several: the market maker quotes each in one backtest "
        "(Python runner); default: the first found",
    )
    p.add_argument("--interval-ms", type=float, default=100.0, help="decision interval, ms")
    p.add_argument("--k-ticks", type=float, default=2.0, help="fair = mid + k * imbalance_l5")
    p.add_argument("--half-spread-ticks", type=float, default=0.5, help="quote half spread, ticks")
    p.add_argument(
        "--skew-ticks-per-lot", type=float, default=0.05, help="quote skew per lot of position"
    )
    p.add_argument("--order-lots", type=int, default=1, help="size of each quote, lots")
    p.add_argument(
        "--max-position-lots", type=int, default=10, help="no quote that would pass this position"
    )
    p.add_argument(
        "--latency-ms", type=float, default=1.0, help="order entry and response latency, ms"
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="the feature kernel; default $FEATUREPLANE_BACKEND, else rust where built",
    )
    p.add_argument(
        "--feature-set", default="lob_shared_v1", metavar="FILE|ID",
        help="the features computed (a declaration file or a registered id); the feature "
        "strategy reads bid_px, ask_px and imbalance_l5 by name",
    )  # fmt: skip


def _venues() -> tuple[str, ...]:
    from featureplane.sources.registry import VENUES

    return VENUES


def instrument_arg(text: str) -> InstrumentSpec:
    """`SYMBOL:TICK:LOT` as an `InstrumentSpec` (argparse reports a bad one as a usage error).
    Here, and not in `featureplane.cli` (which uses it too), because that module configures
    this one: the option parser of both commands lives below both."""
    # Imported here: building the CLI's parsers must not load numpy (`featureplane --help`).
    from featureplane.instruments import InstrumentSpec

    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected SYMBOL:TICK:LOT, got {text!r}")
    symbol, tick, lot = parts
    try:
        return InstrumentSpec(symbol, tick, lot)
    except (ValueError, ArithmeticError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def configure(parser: argparse.ArgumentParser, formatter: type[argparse.HelpFormatter]) -> None:
    """Add the `ab` and `run` subcommands to the `backtest` parser."""
    sub = parser.add_subparsers(dest="backtest_command", required=True, metavar="SUBCOMMAND")
    ab = sub.add_parser(
        "ab",
        help="legacy vs feature market maker: identical decisions?",
        formatter_class=formatter,
        epilog="examples:\n  featureplane backtest ab --loop python --capture btcusdt.gz\n"
        "  featureplane backtest ab --loop python --symbol BTCUSDT ETHUSDT "
        "--capture btc.gz --capture eth.gz",
    )
    _common(ab)
    ab.add_argument(
        "--loop",
        choices=("numba", "python"),
        default="numba",
        help="both strategies as compiled hftbacktest loops, or on the Python runner",
    )
    ab.add_argument(
        "--feed",
        choices=("precomputed", "streaming"),
        default=None,
        help="feature feed (default: precomputed for numba, streaming for python)",
    )
    ab.add_argument(
        "--lead",
        default=None,
        metavar="SYM",
        help="a second symbol of the files: a two-asset backtest where the market maker "
        "trades --symbol and leans on the lead's imbalance_l5",
    )
    ab.add_argument(
        "--k-lead-ticks",
        type=float,
        default=1.0,
        help="with --lead: fair += k_lead * the lead's imbalance_l5 (ticks)",
    )
    run = sub.add_parser(
        "run",
        help="one backtest -> summary and a PNG/HTML report",
        formatter_class=formatter,
        epilog="examples:\n  featureplane backtest run --variant legacy --out legacy.html\n"
        "  featureplane backtest run --symbol BTCUSDT ETHUSDT --capture btc.gz --capture eth.gz",
    )
    _common(run)
    run.add_argument(
        "--variant",
        choices=("feature", "legacy"),
        default="feature",
        help="the strategy: lob_shared_v1 features, or its own signal from the depth",
    )
    run.add_argument(
        "--feed",
        choices=("streaming", "precomputed"),
        default="streaming",
        help="features computed as the clock advances, or all at once up front",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=Path("featureplane-backtest.png"),
        metavar="FILE",
        help=".png or .html",
    )


def _ns(flag: str, ms: float, *, least: int) -> int:
    """`ms` as whole ns in [least, MAX_TIMEOUT_NS], or a ValueError naming `flag`."""
    from featureplane.strategy.runner import MAX_TIMEOUT_NS

    ns = round(ms * 1e6) if math.isfinite(ms) else None
    if ns is None or not least <= ns <= MAX_TIMEOUT_NS:
        raise ValueError(
            f"{flag} must be in [{least / 1e6:g}, {MAX_TIMEOUT_NS / 1e6:g}] ms, got {ms}"
        )
    return ns


def main(args: argparse.Namespace) -> int:
    from featureplane.adapters.hftbacktest.adapter import ExecutionModel, FeatureFeed
    from featureplane.backtest.ab import run_ab, run_backtest
    from featureplane.backtest.feeds import load_feeds, pick
    from featureplane.backtest.report import write_report
    from featureplane.sources.format import SourceOptions
    from featureplane.strategy.examples import ImbalanceMMParams

    # Arguments first (cheap), then the capture.
    interval = _ns("--interval-ms", args.interval_ms, least=1)
    latency = _ns("--latency-ms", args.latency_ms, least=0)
    execution = ExecutionModel(entry_latency_ns=latency, response_latency_ns=latency)
    params = ImbalanceMMParams(
        args.k_ticks,
        args.half_spread_ticks,
        args.skew_ticks_per_lot,
        args.order_lots,
        args.max_position_lots,
    )
    from featureplane.features.resolve import resolve_feature_set

    fs = resolve_feature_set(args.feature_set)
    lead = getattr(args, "lead", None)
    if lead is not None and not math.isfinite(args.k_lead_ticks):
        raise ValueError(f"--k-lead-ticks must be finite, got {args.k_lead_ticks}")
    captures = args.capture or [_default_capture()]
    for capture in captures:
        if not capture.exists() and not any(c in str(capture) for c in "*?["):
            raise FileNotFoundError(f"no capture at {capture} (pass --capture FILE)")
    options = SourceOptions(instruments=tuple(args.instrument) if args.instrument else None)
    feeds = load_feeds(captures, format=args.format, options=options)
    if args.symbol is not None and len(args.symbol) > 1:
        return _each(args, pick(feeds, args.symbol), fs, params, interval, execution)
    wanted = args.symbol[0] if args.symbol else None
    chosen = pick(feeds, [wanted, *([lead] if lead is not None else [])])
    if lead is not None and len(chosen) != 2:
        raise FeatureplaneError(f"--lead {lead} is the traded symbol: give another one")
    traded = chosen[0]
    symbol = traded.symbol
    if lead is not None and fs.feature_set_id != "lob_shared_v1":
        raise FeatureplaneError("--lead runs the cross-asset A/B on lob_shared_v1 only")
    if args.backtest_command == "ab":
        feed: FeatureFeed = args.feed or ("precomputed" if args.loop == "numba" else "streaming")
        if lead is not None:
            from featureplane.backtest.cross import run_cross_ab

            report = run_cross_ab(
                traded,
                chosen[1],
                k_lead_ticks=args.k_lead_ticks,
                loop=args.loop,
                feed=feed,
                params=params,
                interval_ns=interval,
                execution=execution,
                backend=args.backend,
            )
            print(report.format())
            return 0 if report.diff.match else 1
        report = run_ab(
            traded.events,
            traded.symbols,
            symbol,
            loop=args.loop,
            feed=feed,
            params=params,
            interval_ns=interval,
            execution=execution,
            backend=args.backend,
            feature_set=fs,
        )
        print(report.format())
        return 0 if report.diff.match else 1
    run = run_backtest(
        traded.events,
        traded.symbols,
        symbol,
        variant=args.variant,
        feed=args.feed,
        params=params,
        interval_ns=interval,
        execution=execution,
        backend=args.backend,
        feature_set=fs,
    )
    print(run.summary())
    print(f"report: {write_report(run, args.out)}")
    return 0


def _each(
    args: argparse.Namespace,
    chosen: list[SymbolFeed],
    fs: FeatureSet,
    params: ImbalanceMMParams,
    interval: int,
    execution: ExecutionModel,
) -> int:
    """`--symbol A B ...`: the market maker quoting every symbol in one backtest."""
    from featureplane.backtest.each import run_each_ab, run_each_backtest
    from featureplane.backtest.report import write_report

    if len(chosen) < 2:
        raise ValueError(f"--symbol names {chosen[0].symbol} more than once: name each once")
    if getattr(args, "lead", None) is not None:
        raise ValueError("--lead leans one traded --symbol on another: give one --symbol")
    if args.backtest_command == "ab":
        if args.loop != "python":
            raise ValueError("several symbols are quoted on the Python runner: add --loop python")
        report = run_each_ab(
            chosen,
            feed=args.feed or "streaming",
            params=params,
            interval_ns=interval,
            execution=execution,
            backend=args.backend,
            feature_set=fs,
        )
        print(report.format())
        return 0 if report.match else 1
    run = run_each_backtest(
        chosen,
        variant=args.variant,
        feed=args.feed,
        params=params,
        interval_ns=interval,
        execution=execution,
        backend=args.backend,
        feature_set=fs,
    )
    print(run.summary())
    print(f"report: {write_report(run, args.out)}")
    return 0
