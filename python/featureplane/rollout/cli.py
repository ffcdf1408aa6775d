"""`featureplane canary evaluate`: the gate's decision as an exit code (0 PROMOTE, 10 HOLD,
20 ROLLBACK), with every reason on stdout."""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser, formatter: type[argparse.HelpFormatter]) -> None:
    """Add the `evaluate` subcommand to the `canary` parser."""
    sub = parser.add_subparsers(dest="canary_command", required=True, metavar="SUBCOMMAND")
    ev = sub.add_parser(
        "evaluate",
        help="PROMOTE (exit 0), HOLD (10) or ROLLBACK (20) from criteria and metrics",
        formatter_class=formatter,
        epilog=(
            "examples:\n"
            "  featureplane canary evaluate --metrics http://127.0.0.1:9464/metrics \\\n"
            "      --baseline http://127.0.0.1:9465/metrics \\\n"
            "      --criteria deploy/canary/criteria.toml\n"
            "  featureplane canary evaluate --metrics canary.prom --criteria criteria.toml"
        ),
    )
    ev.add_argument("--metrics", required=True, metavar="URL|FILE",
                    help="the canary's Prometheus text exposition")  # fmt: skip
    ev.add_argument("--criteria", required=True, metavar="FILE", help="criteria (TOML)")
    ev.add_argument("--baseline", default=None, metavar="URL|FILE",
                    help="the incumbent's exposition, scraped in the same window")  # fmt: skip
    ev.add_argument("--timeout", type=float, default=5.0, metavar="S",
                    help="per URL (default 5 s)")  # fmt: skip
    ev.add_argument("--json", action="store_true", help="the verdict as JSON")
    ev.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    from featureplane.rollout.canary import evaluate, load_criteria, read_metrics

    if not 0 < args.timeout <= 60:
        raise ValueError("--timeout: between 0 and 60 s")
    criteria = load_criteria(args.criteria)
    canary = read_metrics(args.metrics, args.timeout)
    baseline = read_metrics(args.baseline, args.timeout) if args.baseline else None
    verdict = evaluate(criteria, canary, baseline)
    if args.json:
        print(json.dumps({"decision": verdict.decision.name, "exit_code": verdict.exit_code,
                          "reasons": verdict.reasons, "evidence": verdict.evidence}))  # fmt: skip
    else:
        print(verdict.format())
    return verdict.exit_code
