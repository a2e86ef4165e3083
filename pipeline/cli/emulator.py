"""`ideopipe emulator`: serve the embedded Ideogram-compatible API until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse

from ..errors import UsageError

HELP = "serve the embedded Ideogram-compatible API (no key, no cost)"
EXAMPLE = "ideopipe emulator --port 8765 --latency-ms 300 --fault-rate 0.1"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """emulator's arguments (declared by the emulator package itself)."""
    from ..emulator.cli import add_arguments as emulator_arguments

    emulator_arguments(p)


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
