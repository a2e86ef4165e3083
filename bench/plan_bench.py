"""Plan N CSV rows through a three-step chain; print rows/s, tasks/s and peak memory.

    python bench/plan_bench.py            # 100,000 rows
    python bench/plan_bench.py --rows 50000 --rows 100000   # linearity check
"""

from __future__ import annotations

import argparse
import csv
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = """
version: 1
name: bench-plan
provider: ideogram
rows:
  csv: rows.csv
  key: "{{ sku }}"
seed: derive
defaults: {model: V_3, rendering_speed: TURBO, magic_prompt: "OFF"}
steps:
  - id: hero
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
output:
  dir: out
  file: "{{ key }}/{{ step }}-{{ index }}-{{ seed }}.png"
"""


def one(rows: int) -> None:
    """Plan `rows` rows in this process and print one line of figures."""
    from pipeline.api import plan_file

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with open(folder / "rows.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["sku", "product", "colour", "headline"])
            for i in range(rows):
                w.writerow([f"SKU-{i:06d}", f"product {i}", "teal", f"Launch day {i % 97}"])
        (folder / "bench.yaml").write_text(RECIPE)
        t0 = time.perf_counter()
        plan = plan_file(folder / "bench.yaml")
        elapsed = time.perf_counter() - t0
        s = plan.summary()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows={rows} tasks={s['requests']} cost=${s['cost_usd']:.2f} "
          f"time={elapsed:.2f}s rows/s={rows / elapsed:,.0f} tasks/s={s['requests'] / elapsed:,.0f} "
          f"peak_rss={peak_mb:.0f}MB", flush=True)


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
