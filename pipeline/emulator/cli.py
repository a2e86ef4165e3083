"""`ideopipe emulator`: its options and the serve loop, for whichever CLI module hosts the verb."""

from __future__ import annotations

import argparse
import signal
import threading

from .config import FLAVORS, EmulatorConfig


def add_arguments(em: argparse.ArgumentParser) -> None:
    """Declare the emulator's options on its sub-parser."""
    em.add_argument("--host", default="127.0.0.1")
    em.add_argument("--port", type=int, default=8765)
    em.add_argument(
        "--flavor",
        choices=list(FLAVORS),
        default="ideogram",
        help="ideogram-v2 serves Ideogram's current /v2 API",
    )
    em.add_argument("--latency-ms", type=float, default=0.0)
    em.add_argument("--max-in-flight", type=int, default=10, help="counted in images")
    em.add_argument(
        "--limit-schedule",
        default="",
        metavar="STEPS",
        help="change the in-flight limit as the run goes, e.g. "
        "'requests:300=5,seconds:60=8' (after N requests / seconds)",
    )
    em.add_argument("--fault-rate", type=float, default=0.0)
    em.add_argument(
        "--faults",
        default="429,500,503,drop,accept_drop,truncate,slow",
        help="comma-separated fault kinds the dice choose from",
    )
    em.add_argument("--url-ttl", type=float, default=3600.0, help="seconds result URLs live")
    em.add_argument("--image-scale", type=float, default=0.25)
    em.add_argument(
        "--realistic",
        action="store_true",
        help="photographic-size PNGs (about 1.5 MB at 1024x1024; use --image-scale 1)",
    )
    em.add_argument(
        "--async-delay",
        type=float,
        default=None,
        metavar="SECONDS",
        help="v2: seconds until an async generation completes (default: the latency)",
    )
    em.add_argument(
        "--daily-limit",
        type=int,
        default=None,
        metavar="IMAGES",
        help="v2: images billable per day before 402 daily_limit",
    )
    em.add_argument("--seed", type=int, default=None, help="seed for the fault dice")


def config_from(args: argparse.Namespace) -> EmulatorConfig:
    """The EmulatorConfig the parsed options describe (ValueError if inconsistent)."""
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        flavor=args.flavor,
        latency_ms=args.latency_ms,
        max_in_flight=args.max_in_flight,
        fault_rate=args.fault_rate,
        faults=tuple(f for f in args.faults.split(",") if f),
        url_ttl=args.url_ttl,
        image_scale=args.image_scale,
        rng_seed=args.seed,
        realistic=args.realistic,
        limit_schedule=args.limit_schedule,
        async_delay_s=args.async_delay,
        daily_limit=args.daily_limit,
    )


def serve(config: EmulatorConfig) -> int:
    """Serve until SIGTERM or Ctrl-C, after printing the ready line; returns the exit code."""
    from .server import Emulator

    emulator = Emulator(config).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(
        f"ideopipe emulator ({config.flavor}) at {emulator.base_url} — any non-empty key; "
        f"ledger at {emulator.root_url}/_ledger. Ctrl-C to stop.",
        flush=True,
    )
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0
