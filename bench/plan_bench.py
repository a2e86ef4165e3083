"""Plan N CSV rows through a three-step chain; print rows/s, tasks/s and peak memory.

`time` is wall-clock; `cpu` is this process's CPU time, the steadier figure on a busy machine.

    python bench/plan_bench.py            # 100,000 rows
    python bench/plan_bench.py --rows 50000 --rows 100000   # linearity check
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_batch

STEPS = """  - id: hero
    op: generate
    prompt: "{{ product }} on a {{ colour }} background, headline {{ headline }}"
    aspect_ratio: 16x9
  - id: stylized
    op: remix
    input: hero
    prompt: "{{ product }} as a paper-cut illustration"
    image_weight: 60
  - id: print
    op: upscale
    input: stylized
    resemblance: 80
"""


def one(rows: int) -> None:
    """Plan `rows` rows in this process and print one line of figures."""
    from pipeline.api import plan_file

    with tempfile.TemporaryDirectory() as tmp:
        recipe = write_batch(
            Path(tmp),
            "bench-plan",
            STEPS,
            rows,
            lambda i: {"colour": "teal", "headline": f"Launch day {i % 97}"},
        )
        t0, c0 = time.perf_counter(), time.process_time()
        plan = plan_file(recipe)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        s = plan.summary()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"rows={rows} tasks={s['requests']} cost=${s['cost_usd']:.2f} "
        f"time={elapsed:.2f}s cpu={cpu:.2f}s rows/s={rows / elapsed:,.0f} "
        f"tasks/s={s['requests'] / elapsed:,.0f} "
        f"peak_rss={peak_mb:.0f}MB",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, action="append")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        one(args.one)
        return
    for rows in args.rows or [100_000]:
        # a fresh process per size, so that peak memory is each size's own
        subprocess.run([sys.executable, __file__, "--one", str(rows)], check=True)


if __name__ == "__main__":
    main()
