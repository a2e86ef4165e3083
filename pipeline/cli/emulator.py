"""`ideopipe emulator`: serve the embedded Ideogram-compatible API until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse

from ..errors import UsageError
from .common import non_negative, port_number, positive_int

HELP = "serve the embedded Ideogram-compatible API (no key, no cost)"
EXAMPLE = "ideopipe emulator --port 8765 --latency-ms 300 --fault-rate 0.1"
FLAVORS = ("ideogram", "ideogram-v2", "aihubmix", "crazyrouter")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """emulator's arguments."""
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port_number, default=8765, help="0 picks a free port")
    p.add_argument(
        "--flavor", choices=FLAVORS, default="ideogram", help="ideogram-v2 serves Ideogram's current /v2 API"
    )
    p.add_argument("--latency-ms", type=non_negative, default=0.0)
    p.add_argument("--max-in-flight", type=positive_int, default=10, help="counted in images")
    p.add_argument(
        "--limit-schedule",
        default="",
        metavar="STEPS",
        help="change the in-flight limit as the run goes, e.g. 'requests:300=5,seconds:60=8'",
    )
    p.add_argument("--fault-rate", type=non_negative, default=0.0, help="a probability, 0 to 1")
    p.add_argument(
        "--faults",
        default="429,500,503,drop,accept_drop,truncate,slow",
        help="comma-separated fault kinds the dice choose from",
    )
    p.add_argument("--url-ttl", type=non_negative, default=3600.0, help="seconds result URLs live")
    p.add_argument("--image-scale", type=non_negative, default=0.25)
    p.add_argument(
        "--realistic", action="store_true", help="photographic-size PNGs (about 1.5 MB at 1024x1024)"
    )
    p.add_argument(
        "--async-delay",
        type=non_negative,
        default=None,
        metavar="SECONDS",
        help="v2: seconds until an async generation completes (default: the latency)",
    )
    p.add_argument(
        "--daily-limit", type=positive_int, default=None, metavar="IMAGES", help="v2: images/day, then 402"
    )
    p.add_argument("--seed", type=int, default=None, help="seed for the fault dice")


def handle(args: argparse.Namespace) -> int:
    """Start the emulator, print where it listens, and serve until Ctrl-C or SIGTERM."""
    from ..emulator.cli import config_from, serve

    try:
        config = config_from(args)
    except ValueError as exc:
        raise UsageError(f"emulator: {exc}") from exc
    try:
        return serve(config)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
