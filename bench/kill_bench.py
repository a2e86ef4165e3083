"""kill -9 the runner at random moments during a chained batch, resume each time, check.

    python bench/kill_bench.py                # 30 kills during a 300-image batch
    python bench/kill_bench.py --kills 10 --rows 25

The runner is killed 0.2-2.5 s into each attempt, which lands between sending and
response, mid-download, mid-journal-write and, near the end, mid-manifest-write. After the
last, unkilled run it checks: every planned image is ok on disk with a matching sha256 or
listed as in_doubt; no request was billed twice; the manifest parses with pandas; no
partial file sits at a final path. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import write_batch

from pipeline.emulator import Emulator
from pipeline.journal import file_sha256
from pipeline.manifest import read_manifest

STEPS = """  - id: hero
    op: generate
    prompt: "{{ product }} poster"
    num_images: 2
  - id: remixed
    op: remix
    input: hero
    prompt: "{{ product }} as a linocut"
"""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=75, help="each row makes 4 images")
    p.add_argument("--kills", type=int, default=30)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    rng = random.Random(args.seed)
    with Emulator(latency_ms=400, rng_seed=args.seed) as emulator, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        recipe = write_batch(folder, "kill-bench", STEPS, args.rows)
        before = {p.name for p in folder.rglob("*") if p.is_file()}
        cmd = [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            str(recipe),
            "--yes",
            "--quiet",
            "--base-url",
            emulator.base_url,
            "--concurrency",
            "4",
        ]
        env = {**os.environ, "IDEOGRAM_API_KEY": "bench-key"}
        killed = finished_early = 0
        for _ in range(args.kills):
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.2, 2.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            else:
                finished_early += 1
            proc.wait()
        final = subprocess.run(cmd, env=env, capture_output=True, text=True)
        out = folder / "out"
        frame = read_manifest(out / "manifest.csv")
        statuses = Counter(frame["status"])
        ok = frame[frame["status"] == "ok"]
        bad_files = sum(file_sha256(out / f) != h for f, h in zip(ok["file"], ok["sha256"]))
        known = set(frame["sha256"].dropna())
        partial = sum(1 for png in out.rglob("*.png") if file_sha256(png) not in known)
        leftovers = sum(1 for _ in out.rglob("*.part"))
        # answered (so paid) images must keep a file or at least the URL to fetch it again
        answered = frame[~frame["status"].isin(["in_doubt", "pending", "skipped_parent"])]
        paid_lost = int((answered["file"].isna() & answered["url"].isna()).sum())
        outside = sorted(
            str(p.relative_to(folder))
            for p in folder.rglob("*")
            if p.is_file() and out not in p.parents and p.name not in before
        )
        ledger = emulator.ledger()
        billed = Counter(e["request_sha256"] for e in ledger["entries"] if e["billed"])
        twice = sum(n - 1 for n in billed.values() if n > 1)
        planned = args.rows * 4
        print(
            json.dumps(
                {
                    "planned_images": planned,
                    "kills": killed,
                    "runs_that_finished_first": finished_early,
                    "final_exit_code": final.returncode,
                    "manifest_rows": len(frame),
                    "statuses": dict(statuses),
                    "ok_with_matching_sha256": len(ok) - bad_files,
                    "in_doubt": statuses.get("in_doubt", 0),
                    "billed_images": ledger["billed_total"],
                    "requests_billed_twice": twice,
                    "partial_files_at_final_paths": partial,
                    "temp_files_left": leftovers,
                    "paid_images_without_file_or_url": paid_lost,
                    "files_written_outside_output_dir": outside,
                    "all_accounted_for": len(frame) == planned
                    and bad_files == 0
                    and partial == 0
                    and twice == 0
                    and paid_lost == 0
                    and not outside
                    and set(statuses) <= {"ok", "in_doubt", "skipped_parent"},
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
