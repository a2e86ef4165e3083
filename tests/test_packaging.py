"""The installed package works from any folder: schemas, prices and templates ship inside it."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_installed_package_finds_its_schemas_from_another_folder(tmp_path):
    # Run outside the checkout, so the installed package (a wheel in CI) is what imports.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import pipeline, pipeline.spec as s; print(pipeline.__file__);"
            "print(s.schema_file('recipe.schema.json'));"
            "print(s.schema_file('ideogram-openapi.json'))",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    package, recipe_schema, openapi = done.stdout.split()
    assert Path(recipe_schema).is_file() and Path(openapi).is_file()
    assert Path(recipe_schema).parent.parent in (Path(package).parent, REPO)
    schema = subprocess.run(
        [sys.executable, "-m", "pipeline", "schema"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert json.loads(schema.stdout)["title"] == "ideopipe recipe"
    plan = subprocess.run(
        [sys.executable, "-m", "pipeline", "plan", str(REPO / "recipes" / "spring-launch.yaml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert plan.returncode == 0, plan.stderr
    assert "price table 2026-11-01" in plan.stdout
