"""The `featureplane venue` and `featureplane live` commands.

featureplane venue serve CAPTURE... [--host 127.0.0.1] [--port 0] [--speed X|max]
                         [--faults SPEC] [--max-connection-s S] [--ping-interval-s S]
featureplane live --config FILE [--check] [--out FRAMES.parquet] [--record DIR]
                  [--duration S]
featureplane live parity CAPTURE... [--faults SPEC] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from featureplane.errors import FeatureplaneError

EXIT_OK = 0
EXIT_ERROR = 1


def configure_venue(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="venue_command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="serve captures as a Binance-like venue on loopback")
    serve.add_argument(
        "captures",
        nargs="+",
        type=Path,
        metavar="CAPTURE",
        help="Binance recorder captures (USD-M or spot), served together",
    )
    serve.add_argument("--host", default="127.0.0.1", help="a loopback address")
    serve.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    serve.add_argument("--speed", default="max",
                       help="x real time by the recorded times, or 'max' (default)")  # fmt: skip
    serve.add_argument("--faults", default=None, metavar="SPEC",
                       help="e.g. 'drop@500,stall@3000:2' (docs/live.md)")  # fmt: skip
    serve.add_argument("--max-connection-s", type=float, default=None,
                       help="close connections older than this (the 24 h cut, scaled)")  # fmt: skip
    serve.add_argument("--ping-interval-s", type=float, default=20.0,
                       help="seconds between websocket pings")  # fmt: skip
    serve.add_argument(
        "--barrier-timeout-s",
        type=float,
        default=2.0,
        help="at max speed: how long to wait for the client to drain a message",
    )
    serve.add_argument("--wait-for-client-s", type=float, default=300.0,
                       help="stop serving when no client comes within this time")  # fmt: skip
    serve.set_defaults(run=cmd_venue)


def configure_live(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="the live TOML config (examples/live/)")  # fmt: skip
    parser.add_argument(
        "--check", action="store_true",
        help="validate the config (and import the strategies); connect nothing",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, metavar="FRAMES.parquet",
                        help="write every frame to a feature file, in scaled units (exact, "
                        "as replay --units scaled; readers give real units)")  # fmt: skip
    parser.add_argument("--record", type=Path, default=None, metavar="DIR",
                        help="record the venue messages as replayable captures")  # fmt: skip
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="stop after this many seconds (default: until the feed ends)",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="the summary")
    parser.set_defaults(run=cmd_live)
    sub = parser.add_subparsers(dest="live_command", required=False, metavar="COMMAND")
    parity = sub.add_parser(
        "parity", help="loopback venue + live path vs research replay (exit 1 on a mismatch)"
    )
    parity.add_argument(
        "captures",
        nargs="+",
        type=Path,
        metavar="CAPTURE",
        help="captures served by a loopback venue and replayed for research",
    )
    parity.add_argument("--faults", default=None, metavar="SPEC",
                        help="venue faults to inject (docs/live.md)")  # fmt: skip
    parity.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="write the comparison as JSON")  # fmt: skip
    parity.set_defaults(run=cmd_parity)
    kill = sub.add_parser(
        "kill", help="pull (or, with --reset, release) a running run's kill switch"
    )
    kill.add_argument("--config", dest="kill_config", type=Path, required=True, metavar="FILE",
                      help="the config of the run whose switch to pull")  # fmt: skip
    kill.add_argument("--by", required=True, help="who pulls or resets it (audited)")
    kill.add_argument("--reason", default="manual kill switch", help="recorded in the audit log")
    kill.add_argument("--reset", action="store_true", help="release the switch (a person's act)")
    kill.set_defaults(run=cmd_kill)


# The runtime (asyncio, the venue, the service) is imported by the command that runs it: every
# other command of the CLI reads this module for its options only.


def cmd_venue(args: argparse.Namespace) -> int:
    import asyncio

    from featureplane.live.venue.server import LoopbackVenue

    speed = None if args.speed == "max" else float(args.speed)
    venue = LoopbackVenue(
        args.captures,
        host=args.host,
        port=args.port,
        speed=speed,
        faults=args.faults,
        barrier_timeout_s=args.barrier_timeout_s,
        ping_interval_s=args.ping_interval_s or None,
        max_connection_s=args.max_connection_s,
        wait_for_client_s=args.wait_for_client_s,
    )

    async def serve() -> None:
        import signal

        port = await venue.start()
        markets = ", ".join(f"{s} ({m})" for s, m in venue.capture.markets.items())
        print(f"venue listening on {venue.host}:{port}", flush=True)
        print(f"ws {venue.ws_url}/stream?streams=...  rest {venue.rest_url}  symbols {markets}",
              flush=True)  # fmt: skip
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        done = asyncio.create_task(venue.finished.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({done, stopping}, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.sleep(0.2)  # the closing frames go out
        await venue.aclose()
        print(json.dumps(venue.stats.to_dict()), flush=True)

    asyncio.run(serve())
    return EXIT_OK


def cmd_live(args: argparse.Namespace) -> int:
    from featureplane.live import loop
    from featureplane.live.bootstrap import SystemBootstrapper
    from featureplane.live.config import load_config
    from featureplane.live.runner import check_strategies

    if args.config is None:
        raise FeatureplaneError("featureplane live needs --config FILE (or the parity command)")
    config = load_config(args.config)
    if args.check:
        check_strategies(config)
        boot = SystemBootstrapper(config)
        registry = boot.build()
        print(
            f"{args.config}: ok ({len(config.symbols)} symbols, {len(config.strategies)} "
            f"strategies; services {', '.join(registry)}; config sha256 {config.config_hash})"
        )
        return EXIT_OK
    boot = SystemBootstrapper(
        config, out=args.out, record_dir=args.record, announce=lambda line: print(line, flush=True)
    )
    summary = loop.run(boot.run(duration_s=args.duration))
    print(summary.format())
    if args.json:
        args.json.write_text(json.dumps(asdict(summary), indent=2, default=str))
    return EXIT_OK


def cmd_parity(args: argparse.Namespace) -> int:
    from featureplane.live.parity import live_parity

    report = live_parity(args.captures, faults=args.faults)
    print(report.format())
    if report.live is not None:
        print(report.live.format())
    if args.json:
        out = {
            "frames": report.frames,
            "mismatches": report.mismatches,
            "order_equal": report.order_equal,
            "symbols": [asdict(s) for s in report.symbols],
        }
        args.json.write_text(json.dumps(out, indent=2))
    sys.stdout.flush()
    return EXIT_OK if report.ok else EXIT_ERROR


def cmd_kill(args: argparse.Namespace) -> int:
    from featureplane.live.config import load_config
    from featureplane.live.risk import request_kill, request_reset

    config = load_config(args.kill_config)
    path = config.risk.kill_switch_file
    if not path:
        raise FeatureplaneError(f"{args.kill_config}: [risk] kill_switch_file is not set")
    if args.reset:
        request_reset(path, args.by)
        print(f"kill switch reset requested by {args.by} ({path}.reset)")
    else:
        request_kill(path, args.by, args.reason)
        print(f"kill switch pulled by {args.by}: {args.reason} ({path})")
    return EXIT_OK
