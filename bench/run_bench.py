"""Throughput against the provider's limit, a sequential baseline, and resume time.

    python bench/run_bench.py                  # 2,000 images (1,000 generate + 1,000 remix)
    python bench/run_bench.py --images 400     # a quicker check
    python bench/run_bench.py --resume 10000   # time to resume a finished 10,000-task run

The emulator runs in its own process with --latency-ms 300 and --max-in-flight 10
(counted in images, as Ideogram counts them), so the limit is 10 / 0.3 s = 33.3 images/s.
Everything talks to 127.0.0.1 only.
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


def start_emulator(latency_ms: float, in_flight: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "emulator", "--port", str(port),
                             "--latency-ms", str(latency_ms), "--max-in-flight", str(in_flight),
                             "--image-scale", "0.125"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(root + "/_ledger", timeout=1)
            return proc, root
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("the emulator did not start")


def batch(folder: Path, rows: int, remix: bool) -> Path:
    return write_batch(folder, "bench-run", GENERATE + (REMIX if remix else ""), rows,
                       provider="emulator")


def run_ideopipe(recipe: Path, base_url: str, concurrency: int) -> tuple[float, float, int]:
    """Run `ideopipe run` as a child; (wall seconds, CPU seconds user+sys, peak RSS KiB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(recipe), "--yes",
                             "--quiet", "--base-url", base_url, "--concurrency",
                             str(concurrency)])
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
        r = s.post(root + "/v1/ideogram-v3/generate", headers={"Api-Key": "k"},
                   files={"prompt": (None, f"baseline {i}"), "rendering_speed": (None, "TURBO")})
        r.raise_for_status()
        s.get(r.json()["data"][0]["url"]).raise_for_status()
    return images / (time.perf_counter() - t0)


def throughput(images: int) -> None:
    proc, root = start_emulator(LATENCY_MS, IN_FLIGHT)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            recipe = batch(Path(tmp), images // 2, remix=True)
            wall, cpu, rss = run_ideopipe(recipe, root, IN_FLIGHT)
        ledger = requests.get(root + "/_ledger", timeout=5).json()
        base = baseline(root, 30)
    finally:
        proc.terminate()
        proc.wait()
    limit = IN_FLIGHT / (LATENCY_MS / 1000)
    rate = images / wall
    rejected = sum(ledger["rejected"].values())
    print(json.dumps({
        "images": images, "wall_s": round(wall, 2), "images_per_s": round(rate, 2),
        "limit_images_per_s": round(limit, 2), "ratio_to_limit": round(rate / limit, 3),
        "http_429": ledger["rejected"].get("inflight_limit", 0) + ledger["rejected"].get("429", 0),
        "rejected_share": round(rejected / max(ledger["requests"], 1), 4),
        "billed_images": ledger["billed_total"],
        "cpu_ms_per_image": round(1000 * cpu / images, 2), "peak_rss_mb": round(rss / 1024),
        "baseline_images_per_s": round(base, 2), "ideopipe_over_baseline": round(rate / base, 1),
    }, indent=1))


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
    print(json.dumps({"resume_tasks": tasks, "resume_wall_s": round(wall, 2),
                      "resume_cpu_s": round(cpu, 2), "peak_rss_mb": round(rss / 1024)}, indent=1))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--resume", type=int, metavar="TASKS")
    args = p.parse_args()
    if args.resume:
        resume(args.resume)
    else:
        throughput(args.images)


if __name__ == "__main__":
    main()
