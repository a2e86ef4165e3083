"""What the benchmark scripts share: the recipe header and the rows file."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

HEADER = """version: 1
name: {name}
provider: {provider}
rows:
  csv: rows.csv
  key: "{{{{ sku }}}}"
seed: derive
defaults: {{model: V_3, rendering_speed: TURBO, magic_prompt: "OFF"}}
output:
  dir: out
  file: "{{{{ key }}}}/{{{{ step }}}}-{{{{ index }}}}-{{{{ seed }}}}.png"
steps:
"""


def write_batch(
    folder: Path,
    name: str,
    steps: str,
    rows: int,
    columns: Callable[[int], dict[str, str]] | None = None,
    provider: str = "ideogram",
) -> Path:
    """Write rows.csv (sku, product and any extra columns) and a recipe; return its path."""
    with open(folder / "rows.csv", "w", newline="") as f:
        writer = None
        for i in range(rows):
            row = {"sku": f"S{i:06d}", "product": f"product {i}", **(columns(i) if columns else {})}
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
    path = folder / f"{name}.yaml"
    path.write_text(HEADER.format(name=name, provider=provider) + steps)
    return path
