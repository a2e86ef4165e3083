"""Throughput against the provider's limit, a sequential baseline, and resume time.

    python bench/run_bench.py                  # 2,000 images (1,000 generate + 1,000 remix)
    python bench/run_bench.py --images 400     # a quicker check
    python bench/run_bench.py --real-size      # 1024x1024 PNGs of ~1.5 MB (report included)
    python bench/run_bench.py --max-in-flight 5 --concurrency 8   # account limit below ours
    python bench/run_bench.py --limit-schedule requests:600=5      # the limit drops partway
    python bench/run_bench.py --resume 10000   # time to resume a finished 10,000-task run

The emulator runs in its own process with --latency-ms 300 and --max-in-flight 10
(counted in images, as Ideogram counts them), so the limit is 10 / 0.3 s = 33.3 images/s.
With --limit-schedule (request counts only) the limit is the one each request met, and
the ratio compares the wall time with the time the schedule allows. Everything talks to
127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from common import write_batch

LATENCY_MS = 300
IN_FLIGHT = 10

GENERATE = """  - id: hero
    op: generate
    prompt: "{{ product }} poster"
    aspect_ratio: 1x1
"""
REMIX = """  - id: remixed
    op: remix
    input: hero
    prompt: "{{ product }} as a linocut"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_emulator(
    latency_ms: float, in_flight: int, real_size: bool = False, schedule: str = ""
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    size = ["--realistic", "--image-scale", "1"] if real_size else ["--image-scale", "0.125"]
    extra = ["--limit-schedule", schedule] if schedule else []
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "emulator",
            "--port",
            str(port),
            "--latency-ms",
            str(latency_ms),
            "--max-in-flight",
            str(in_flight),
            *size,
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    root = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(root + "/_ledger", timeout=1)
            return proc, root
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("the emulator did not start")


def batch(folder: Path, rows: int, remix: bool) -> Path:
    return write_batch(folder, "bench-run", GENERATE + (REMIX if remix else ""), rows, provider="emulator")


def run_ideopipe(recipe: Path, base_url: str, concurrency: int) -> tuple[float, float, int]:
    """Run `ideopipe run` as a child; (wall seconds, CPU seconds user+sys, peak RSS KiB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            str(recipe),
            "--yes",
            "--quiet",
            "--base-url",
            base_url,
            "--concurrency",
            str(concurrency),
        ]
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"ideopipe run exited {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def baseline(root: str, images: int) -> float:
    """The provider documents' way: one request at a time, then download; images/s."""
    s = requests.Session()
    t0 = time.perf_counter()
    for i in range(images):
        r = s.post(
            root + "/v1/ideogram-v3/generate",
            headers={"Api-Key": "k"},
            files={"prompt": (None, f"baseline {i}"), "rendering_speed": (None, "TURBO")},
        )
        r.raise_for_status()
        s.get(r.json()["data"][0]["url"]).raise_for_status()
    return images / (time.perf_counter() - t0)


def ideal_seconds(images: int, in_flight: int, schedule: str) -> float:
    """The shortest wall time the account's limit allows (request-count schedules only)."""
    steps = sorted(
        (float(at), int(lim))
        for unit, at, lim in (_step(s) for s in schedule.split(",") if s.strip())
        if unit == "requests"
    )
    seconds, done, limit = 0.0, 0, in_flight
    for at, nxt in steps:
        upto = min(images, int(at))
        if upto > done:
            seconds += (upto - done) * LATENCY_MS / 1000 / limit
            done = upto
        limit = nxt
    return seconds + max(0, images - done) * LATENCY_MS / 1000 / limit


def _step(text: str) -> tuple[str, str, str]:
    unit, rest = text.strip().split(":", 1)
    at, limit = rest.split("=", 1)
    return unit, at, limit


def throughput(images: int, in_flight: int, concurrency: int, real_size: bool, schedule: str) -> None:
    proc, root = start_emulator(LATENCY_MS, in_flight, real_size, schedule)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            recipe = batch(Path(tmp), images // 2, remix=True)
            wall, cpu, rss = run_ideopipe(recipe, root, concurrency)
        ledger = requests.get(root + "/_ledger", timeout=5).json()
        base = baseline(root, 30) if not real_size and not schedule else None
    finally:
        proc.terminate()
        proc.wait()
    ideal = ideal_seconds(images, in_flight, schedule)
    limit = images / ideal
    rate = images / wall
    rejected = sum(ledger["rejected"].values())
    print(
        json.dumps(
            {
                "images": images,
                "real_size": real_size,
                "max_in_flight": in_flight,
                "concurrency": concurrency,
                "limit_schedule": schedule,
                "wall_s": round(wall, 2),
                "images_per_s": round(rate, 2),
                "limit_images_per_s": round(limit, 2),
                "ratio_to_limit": round(rate / limit, 3),
                "http_429": ledger["rejected"].get("inflight_limit", 0) + ledger["rejected"].get("429", 0),
                "rejected_share": round(rejected / max(ledger["requests"], 1), 4),
                "billed_images": ledger["billed_total"],
                "cpu_ms_per_image": round(1000 * cpu / images, 2),
                "peak_rss_mb": round(rss / 1024),
                "baseline_images_per_s": base and round(base, 2),
                "ideopipe_over_baseline": base and round(rate / base, 1),
            },
            indent=1,
        )
    )


def resume(tasks: int) -> None:
    proc, root = start_emulator(0, 64)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            recipe = batch(Path(tmp), tasks, remix=False)
            run_ideopipe(recipe, root, 32)
            wall, cpu, rss = run_ideopipe(recipe, root, 32)
    finally:
        proc.terminate()
        proc.wait()
    print(
        json.dumps(
            {
                "resume_tasks": tasks,
                "resume_wall_s": round(wall, 2),
                "resume_cpu_s": round(cpu, 2),
                "peak_rss_mb": round(rss / 1024),
            },
            indent=1,
        )
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--resume", type=int, metavar="TASKS")
    p.add_argument("--real-size", action="store_true", help="1024x1024 PNGs of ~1.5 MB")
    p.add_argument("--max-in-flight", type=int, default=IN_FLIGHT, help="the account's limit")
    p.add_argument("--concurrency", type=int, default=None, help="ideopipe's (default: the limit)")
    p.add_argument(
        "--limit-schedule", default="", metavar="STEPS", help="e.g. requests:600=5 (request counts only)"
    )
    args = p.parse_args()
    if args.resume:
        resume(args.resume)
    else:
        throughput(
            args.images,
            args.max_in_flight,
            args.concurrency or args.max_in_flight,
            args.real_size,
            args.limit_schedule,
        )


if __name__ == "__main__":
    main()
