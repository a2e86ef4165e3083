"""The run-time sub-commands: run, rerun, lock, report, runs, emulator."""

from __future__ import annotations

import argparse
import sys
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any


def add_parsers(sub: Any, selection: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the run-time sub-commands to the CLI's parser."""
    from .cli import command

    r = sub.add_parser("run", help="run a recipe: send, download, journal, manifest, report")
    r.add_argument("recipe", metavar="RECIPE")
    r.add_argument("--relock", action="store_true",
                   help="ignore RECIPE.lock.json and write it afresh after the run")
    _run_flags(r)
    selection(r)

    rr = sub.add_parser("rerun", help="re-create images of a manifest by their recorded seeds")
    rr.add_argument("manifest", metavar="MANIFEST")
    rr.add_argument("--where", metavar="QUERY", help="a pandas query selecting manifest rows")
    rr.add_argument("--step", help="only rows of this step")
    rr.add_argument("--out", metavar="DIR", help="output directory (default: <run>-rerun)")
    _run_flags(rr)
    rr.add_argument("--provider", help="override the provider")

    lk = sub.add_parser("lock", help="write <recipe>.lock.json from its last run")
    lk.add_argument("recipe", metavar="RECIPE")
    lk.add_argument("--out", metavar="DIR", help="override output.dir")
    lk.add_argument("--provider", help="the provider the run used, if not the recipe's")

    rp = sub.add_parser("report", help="regenerate report.html of an output directory")
    rp.add_argument("out_dir", metavar="OUT_DIR")
    rp.add_argument("--open", action="store_true", help="open it in a browser")

    rs = sub.add_parser("runs", help="list the runs recorded in an output directory")
    rs.add_argument("out_dir", metavar="OUT_DIR")

    gc = sub.add_parser("gc", help="remove stored images no task references (shows them first)")
    gc.add_argument("out_dir", metavar="OUT_DIR")
    gc.add_argument("--yes", action="store_true", help="delete without asking")

    dr = sub.add_parser("doctor", help="check an output folder's journal and files")
    dr.add_argument("out_dir", metavar="OUT_DIR")
    dr.add_argument("--repair", action="store_true",
                    help="rebuild what it can from the files, the store and the manifest")

    em = sub.add_parser("emulator", help="serve the embedded Ideogram-compatible API")
    em.add_argument("--host", default="127.0.0.1")
    em.add_argument("--port", type=int, default=8765)
    em.add_argument("--flavor", choices=["ideogram", "aihubmix", "crazyrouter"], default="ideogram")
    em.add_argument("--latency-ms", type=float, default=0.0)
    em.add_argument("--max-in-flight", type=int, default=10, help="counted in images")
    em.add_argument("--fault-rate", type=float, default=0.0)
    em.add_argument("--faults", default="429,500,503,drop,accept_drop,truncate,slow",
                    help="comma-separated fault kinds the dice choose from")
    em.add_argument("--url-ttl", type=float, default=3600.0, help="seconds result URLs live")
    em.add_argument("--image-scale", type=float, default=0.25)
    em.add_argument("--seed", type=int, default=None, help="seed for the fault dice")

    command("run")(_run)
    command("rerun")(_rerun)
    command("lock")(_lock)
    command("report")(_report)
    command("runs")(_runs)
    command("emulator")(_emulator)
    command("gc")(_gc)
    command("doctor")(_doctor)


def _run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base-url", help="override the provider's base URL")
    p.add_argument("--concurrency", type=int, metavar="N", help="images in flight (default 8)")
    p.add_argument("--max-cost", type=float, metavar="USD", help="refuse or stop past this cost")
    p.add_argument("--yes", action="store_true", help="do not ask before spending")
    p.add_argument("--force", action="store_true", help="redo tasks even if done (pays again)")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failure")
    p.add_argument("--retry-failed", action="store_true", help="retry tasks that failed before")
    p.add_argument("--retry-in-doubt", action="store_true",
                   help="resend in_doubt tasks (they may be billed twice)")
    p.add_argument("--quiet", action="store_true", help="no progress or summary")
    p.add_argument("--verify", action="store_true",
                   help="re-hash every finished file instead of trusting its size and mtime")
    p.add_argument("--manifest-format", choices=["csv", "parquet", "jsonl"])
    p.add_argument("--open", action="store_true", help="open the report when done")


def _options(args: argparse.Namespace, **extra: Any) -> Any:
    from .runner import RunOptions

    return RunOptions(base_url=args.base_url, concurrency=args.concurrency,
                      max_cost=args.max_cost, yes=args.yes, force=args.force,
                      fail_fast=args.fail_fast, retry_failed=args.retry_failed,
                      retry_in_doubt=args.retry_in_doubt, quiet=args.quiet,
                      manifest_format=args.manifest_format, verify=args.verify, **extra)


def _finish(result: Any, open_report: bool) -> int:
    if open_report and result.report:
        webbrowser.open(result.report.as_uri())
    return int(result.exit_code)


def _run(args: argparse.Namespace) -> int:
    from . import api
    from .cli import load_and_plan

    plan = load_and_plan(args, args.recipe)
    for warning in plan.warnings:
        print(warning, file=sys.stderr)
    from .console import run_in_terminal

    locked = {} if args.relock else api.lock_entries(plan)
    result = run_in_terminal(lambda o: api.run_plan(plan, o), _options(args, reproduce=locked))
    if args.relock:
        path, count = api.write_lock(args.recipe, out=args.out, provider=args.provider)
        print(f"{path}: {count} task(s) locked", file=sys.stderr)
    return _finish(result, args.open)


def _rerun(args: argparse.Namespace) -> int:
    from . import api
    from .console import run_in_terminal

    result = run_in_terminal(lambda o: api.rerun(
        args.manifest, where=args.where, step=args.step, out=args.out, provider=args.provider,
        options=o), _options(args))
    return _finish(result, args.open)


def _lock(args: argparse.Namespace) -> int:
    from . import api

    path, count = api.write_lock(args.recipe, out=args.out, provider=args.provider)
    print(f"{path}: {count} task(s) locked")
    return 0


def _report(args: argparse.Namespace) -> int:
    from . import api

    path = api.regenerate_report(Path(args.out_dir))
    print(f"report: {path}")
    if args.open:
        webbrowser.open(path.as_uri())
    return 0


def _runs(args: argparse.Namespace) -> int:
    from . import api

    runs = api.list_runs(Path(args.out_dir))
    print(f"{'run_id':<26} {'started':<26} {'images':>7} {'USD':>9}  status")
    for r in runs:
        print(f"{r['run_id']:<26} {r['started_at'] or '':<26} {r['images']:>7} "
              f"{r['spent_usd'] or 0:>9.4f}  {r['status']}")
    return 0


def _gc(args: argparse.Namespace) -> int:
    from .upkeep import collect_garbage

    found = collect_garbage(Path(args.out_dir), remove=False)
    print(found.describe())
    if not found.objects:
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            print("dry run: pass --yes to delete them")
            return 0
        if input("Delete them? [y/N] ").strip().lower() not in ("y", "yes"):
            return 0
    print(collect_garbage(Path(args.out_dir), remove=True).describe())
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from .upkeep import doctor

    found = doctor(Path(args.out_dir), repair=args.repair)
    for line in found.problems:
        print(f"problem: {line}")
    for line in found.repaired:
        print(f"repaired: {line}")
    print(f"{found.images} image(s) checked; " + ("healthy" if not found.problems else
          "repaired" if found.healthy else f"run `ideopipe doctor {args.out_dir} --repair` to fix"))
    return 0 if found.healthy else 1


def _emulator(args: argparse.Namespace) -> int:
    from .emulator import Emulator, EmulatorConfig

    config = EmulatorConfig(host=args.host, port=args.port, flavor=args.flavor,
                            latency_ms=args.latency_ms, max_in_flight=args.max_in_flight,
                            fault_rate=args.fault_rate,
                            faults=tuple(f for f in args.faults.split(",") if f),
                            url_ttl=args.url_ttl, image_scale=args.image_scale,
                            rng_seed=args.seed)
    import signal
    import threading

    emulator = Emulator(config).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(f"ideopipe emulator ({args.flavor}) at {emulator.base_url} — any non-empty key; "
          f"ledger at {emulator.root_url}/_ledger. Ctrl-C to stop.", flush=True)
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0
