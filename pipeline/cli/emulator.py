"""`ideopipe emulator`: serve the embedded Ideogram-compatible API until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import threading

from ..errors import UsageError
from .common import non_negative, port_number, positive_int

HELP = "serve the embedded Ideogram-compatible API (no key, no cost)"
EXAMPLE = "ideopipe emulator --port 8765 --latency-ms 300 --fault-rate 0.1"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """emulator's arguments."""
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port_number, default=8765, help="0 picks a free port")
    p.add_argument("--flavor", choices=["ideogram", "aihubmix", "crazyrouter"], default="ideogram")
    p.add_argument("--latency-ms", type=non_negative, default=0.0)
    p.add_argument("--max-in-flight", type=positive_int, default=10, help="counted in images")
    p.add_argument("--fault-rate", type=non_negative, default=0.0, help="a probability, 0 to 1")
    p.add_argument(
        "--faults",
        default="429,500,503,drop,accept_drop,truncate,slow",
        help="comma-separated fault kinds the dice choose from",
    )
    p.add_argument("--url-ttl", type=non_negative, default=3600.0, help="seconds result URLs live")
    p.add_argument("--image-scale", type=non_negative, default=0.25)
    p.add_argument("--seed", type=int, default=None, help="seed for the fault dice")


def handle(args: argparse.Namespace) -> int:
    """Start the emulator, print where it listens, and serve until Ctrl-C or SIGTERM."""
    from ..emulator import Emulator, EmulatorConfig

    try:
        config = EmulatorConfig(
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
        )
        emulator = Emulator(config).start()
    except ValueError as exc:
        raise UsageError(f"emulator: {exc}") from exc
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(
        f"ideopipe emulator ({args.flavor}) at {emulator.base_url} — any non-empty key; "
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
