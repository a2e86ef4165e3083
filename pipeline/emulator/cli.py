"""`ideopipe emulator`: the config its options describe, and the serve loop."""

from __future__ import annotations

import argparse
import signal
import threading

from .config import EmulatorConfig


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
