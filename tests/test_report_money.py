"""The report's money and statuses: the three totals of `money.totals`, reuse, placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from report_sample import (
    ROWS,
    RUN,
    parse,
    sample_manifest,
    sample_report,
)

from pipeline.money import totals, usd
from pipeline.report import write_report


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def report(out: Path) -> Path:
    return sample_report(out)


def _money_cell(html: str, attribute: str, name: str) -> str:
    found = re.search(rf'{attribute}="{name}">(\$[0-9,.]+)<', html)
    assert found, f"no {attribute}={name} figure"
    return found.group(1)


def test_header_and_step_table_show_the_three_money_totals(out: Path) -> None:
    manifest = sample_manifest(out)
    html = write_report(out, manifest, RUN, ROWS).read_text(encoding="utf-8")
    money = totals(manifest, RUN["run_id"])
    # Worked by hand: 2 rows x (0.03 + 0.06 + 0.06), less one unknown price (0.06), plus the
    # unsafe remix (0.06), the failed generate (0.03) and the describe (0.01).
    assert money.run_spent == pytest.approx(0.64)
    assert money.batch_cost == pytest.approx(0.64)
    assert money.in_doubt == pytest.approx(0.06)
    for name in ("run_spent", "batch_cost", "in_doubt"):
        figure = usd(getattr(money, name))
        assert _money_cell(html, "data-money", name) == figure  # the header
        assert _money_cell(html, "data-total", name) == figure  # the step table's total
    assert money.describe() in html
    assert "simulated" not in money.describe()
    assert "planned $1.20" in html
    assert "budget $5.00" in html
    assert "3 min 12 s" in html
    assert "2025-11-21 15:41:03 UTC" in html
    assert "+?" in html  # the entry with an unknown price


def test_step_rows_add_up_to_the_totals(out: Path) -> None:
    html = write_report(out, sample_manifest(out), RUN, ROWS).read_text(encoding="utf-8")
    rows = re.findall(r'<tr data-step="([^"]+)">(.*?)</tr>', html)
    assert [step for step, _ in rows] == ["hero", "variant", "big", "describe"]
    spent = [re.findall(r"\$([0-9.]+)", cells)[0] for _, cells in rows]
    assert sum(float(v) for v in spent) == pytest.approx(
        float(_money_cell(html, "data-total", "run_spent")[1:])
    )


@pytest.mark.parametrize("style", ["columns", "legacy cached"])
def test_images_reused_from_earlier_runs_are_ok_and_not_spent_again(out: Path, style: str) -> None:
    manifest = sample_manifest(out)
    earlier = manifest["step_id"].eq("hero") & manifest["status"].eq("ok")
    if style == "columns":
        manifest["reused"] = earlier.astype("boolean")
        manifest["produced_by_run"] = manifest["run_id"].mask(earlier, "20251120-090000-old1")
    else:
        manifest.loc[earlier, "status"] = "cached"
    html = write_report(out, manifest, RUN, ROWS).read_text(encoding="utf-8")
    cards = parse(out / "report.html").cards
    assert cards["mug-blue-g1"]["status"] == "ok"
    assert cards["mug-blue-g1"]["img"]
    assert "cached" not in {c["status"] for c in cards.values()}
    # The four hero images (4 x $0.03) were paid for by the earlier run.
    assert _money_cell(html, "data-money", "run_spent") == "$0.5200"
    assert _money_cell(html, "data-money", "batch_cost") == "$0.6400"
    assert "4 reused from earlier runs" in html
    if style == "columns":
        assert "reused from run 20251120-090000-old1" in html


def test_emulator_runs_are_labelled_simulated(out: Path) -> None:
    html = write_report(out, sample_manifest(out), {**RUN, "provider": "emulator"}, ROWS).read_text(
        encoding="utf-8"
    )
    assert "simulated: spent this run $0.6400 · batch $0.6400" in html
    assert ", no real charge" in html
    assert 'data-simulated="true"' in html


@pytest.mark.parametrize(
    ("status", "label"),
    [
        ("pending", "Pending"),
        ("not_saved", "Not saved"),
        ("skipped_parent", "Skipped: no input"),
    ],
)
def test_pending_and_not_saved_are_labelled_placeholders(out: Path, status: str, label: str) -> None:
    manifest = sample_manifest(out)
    manifest.loc[3, "status"] = status
    manifest.loc[3, ["error", "file"]] = pd.NA
    html = write_report(out, manifest, RUN, ROWS).read_text(encoding="utf-8")
    card = parse(out / "report.html").cards["mug-blue-g1"]
    assert card["img"] is None
    assert f'<strong class="ph-label">{label}</strong>' in html
