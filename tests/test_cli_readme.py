"""The README's library example runs as written, on a fresh copy, with no key."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def readme_block(section: str, lang: str = "python") -> str:
    """The first ```lang block under the README heading `## section`."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(rf"```{lang}\n(.*?)```", body, re.DOTALL)
    assert found, f"no {lang} block under '## {section}'"
    return found.group(1)


def copy_recipes(dest: Path) -> Path:
    """The repository's recipes, without any output a user's runs left beside them."""
    return Path(
        shutil.copytree(
            REPO / "recipes", dest / "recipes", ignore=shutil.ignore_patterns("out", "*.lock.json")
        )
    )


def test_the_library_example_runs_as_written(tmp_path: Path):
    copy_recipes(tmp_path)
    code = readme_block("Library")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("IDEOPIPE_BASE_URL", None)
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "1.2"
    manifest = tmp_path / "recipes" / "out" / "spring-launch" / "manifest.csv"
    assert lines[1] == f"ok {manifest}"
    for step in ("hero", "print", "stylized"):
        assert re.search(rf"^{step}\s+ok\s+8$", done.stdout, re.MULTILINE), done.stdout
    assert manifest.is_file()


def test_the_library_example_names_only_public_api():
    code = readme_block("Library")
    import pipeline

    used = set(re.findall(r"pipeline\.(\w+)", code))
    assert used <= set(pipeline.__all__), used - set(pipeline.__all__)
