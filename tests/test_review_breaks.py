"""An outside review: each test tries to break one of ideopipe's promises for real.

The review found 19 breaks (each first written as a strict xfail that failed on the code
of the day) and 51 attempts that held. Every break is now fixed at its root, so every
test here must pass: together they guard the promises.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from badserver import BadServer, Reply
from review_kit import GEN, IMG, KEY, ONE, answer, options, png, posts, rows, serve_one

from pipeline import api
from pipeline.manifest import read_manifest


def _run_or_refuse(start):
    """The run's result, or None when it was refused up front with exit 2 (which is fine)."""
    from pipeline.errors import IdeopipeError

    try:
        return start()
    except IdeopipeError as exc:
        if exc.exit_code != 2:
            raise
        return None


@pytest.fixture
def bad():
    with BadServer() as server:
        yield server


# == 1. never lose what was paid for / 2. never pay twice ===============================


def test_deeply_nested_200_answer_is_journaled_and_never_resent(bad, write_recipe):
    body = answer(bad.url(IMG))
    nested = "[" * 900 + "]" * 900
    text = json.dumps(body)[:-1] + ', "extra": ' + nested + "}"
    serve_one(bad, text)
    path = write_recipe(ONE)
    first = api.run_file(path, options(bad.base_url))
    assert posts(bad) == 1
    assert rows(first.out_dir, "SELECT count(*) FROM responses")[0][0] == 1  # answer recorded
    api.run_file(path, options(bad.base_url, retry_failed=True))
    assert posts(bad) == 1  # a paid request is never sent again


def test_odd_types_in_a_200_answer_do_not_lose_the_image(bad, write_recipe):
    body = answer(
        bad.url(IMG),
        seed=-(2**80),
        prompt={"not": "text"},
        resolution=12,
        is_image_safe="yes",
        style_type=None,
    )
    serve_one(bad, body)
    path = write_recipe(ONE)
    first = api.run_file(path, options(bad.base_url))
    again = api.run_file(path, options(bad.base_url, retry_failed=True))
    assert posts(bad) == 1
    assert rows(first.out_dir, "SELECT count(*) FROM responses")[0][0] == 1
    assert again.exit_code in (0, 1)


def test_a_200_with_empty_data_is_paid_and_never_resent(bad, write_recipe):
    serve_one(bad, {"created": "x", "data": []})
    path = write_recipe(ONE)
    api.run_file(path, options(bad.base_url))
    api.run_file(path, options(bad.base_url, retry_failed=True))
    assert posts(bad) == 1


def test_connection_dropped_after_the_request_is_in_doubt_not_resent(bad, write_recipe):
    bad.script(GEN, Reply(drop=True))
    path = write_recipe(ONE)
    first = api.run_file(path, options(bad.base_url))
    assert read_manifest(first.manifest)["status"].tolist() == ["in_doubt"]
    api.run_file(path, options(bad.base_url, retry_failed=True))
    assert posts(bad) == 1


def test_a_500_is_in_doubt_and_retry_failed_does_not_resend_it(bad, write_recipe):
    bad.script(GEN, Reply(500, {"error": "boom"}))
    path = write_recipe(ONE)
    first = api.run_file(path, options(bad.base_url))
    assert read_manifest(first.manifest)["status"].tolist() == ["in_doubt"]
    api.run_file(path, options(bad.base_url, retry_failed=True))
    assert posts(bad) == 1


# == 3. never leak the key ================================================================


def test_a_307_from_the_api_does_not_carry_the_key_elsewhere(bad, write_recipe):
    with BadServer() as other:
        other.script(GEN, Reply(200, answer(other.url(IMG))))
        bad.script(GEN, Reply(307, b"", {"Location": other.url(GEN, host="localhost")}))
        first = api.run_file(write_recipe(ONE), options(bad.base_url))
        assert other.seen == []  # the redirect was not followed
    frame = read_manifest(first.manifest)
    assert "redirect" in frame["error"].iloc[0] and "localhost" in frame["error"].iloc[0]


def test_the_key_echoed_by_the_server_is_redacted_everywhere(bad, write_recipe, tmp_path):
    from review_kit import everything_under

    body = answer(bad.url(IMG), prompt=f"echo {KEY} and a fragment {KEY[3:14]}")
    serve_one(bad, body)
    path = write_recipe(ONE)
    api.run_file(path, options(bad.base_url))
    bad.script(GEN, Reply(400, {"error": f"bad key {KEY}"}))
    api.run_file(path, options(bad.base_url, force=True))
    blob = everything_under(tmp_path)
    for n in range(0, len(KEY) - 8):
        assert KEY[n : n + 8].encode() not in blob, KEY[n : n + 8]


def test_a_json_escaped_key_in_the_answer_is_not_stored(bad, write_recipe):
    escaped = "".join(f"\\u{ord(c):04x}" for c in KEY)
    text = json.dumps(answer(bad.url(IMG)))[:-1] + f', "note": "{escaped}"}}'
    serve_one(bad, text)
    first = api.run_file(write_recipe(ONE), options(bad.base_url))
    raw = rows(first.out_dir, "SELECT raw FROM responses")[0][0]
    assert KEY not in json.loads(raw).get("note", "")  # decoding what was stored gives the key


def test_a_malformed_key_is_refused_without_echo(write_recipe, tmp_path):
    from review_kit import cli

    recipe = write_recipe(ONE)
    for bad_key in (KEY[:8] + "\x01" + KEY[8:], KEY[:8] + " " + KEY[8:], KEY[:8] + "é" + KEY[8:]):
        done = cli(
            "run",
            str(recipe),
            "--yes",
            "--base-url",
            "https://api.example.invalid",
            env={"IDEOGRAM_API_KEY": bad_key},
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert KEY[8:16] not in done.stderr + done.stdout and KEY[:8] not in done.stderr


def test_run_options_and_client_reprs_hide_the_key():
    from pipeline import providers
    from pipeline.client import Client

    o = options("http://127.0.0.1:9")
    c = Client(providers.get("ideogram", "http://127.0.0.1:9"), KEY)
    for text in (repr(o), str(o), repr(c), repr(c._key), str(c.__dict__)):
        assert KEY[:10] not in text and KEY[-10:] not in text


def test_plain_http_to_a_remote_host_is_refused(write_recipe, tmp_path):
    from review_kit import cli

    done = cli(
        "run",
        str(write_recipe(ONE)),
        "--yes",
        "--base-url",
        "http://203.0.113.5",
        env={"IDEOGRAM_API_KEY": KEY},
    )
    assert done.returncode == 2 and "--allow-http" in done.stderr, done.stderr


def test_a_refused_key_or_base_url_writes_nothing(write_recipe, tmp_path):
    from review_kit import cli

    recipe = write_recipe(ONE)
    for env, url in (
        ({"IDEOGRAM_API_KEY": KEY[:8] + "\x01" + KEY[8:]}, "https://api.x.invalid"),
        ({"IDEOGRAM_API_KEY": KEY}, "http://203.0.113.5"),
    ):
        done = cli("run", str(recipe), "--yes", "--base-url", url, env=env)
        assert done.returncode == 2, done.stderr
        assert not (tmp_path / "out").exists(), "exit 2, yet the output folder was created"


# == 4. never touch what isn't yours ======================================================


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://0x7f000001/",
        "http://10.1/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://[fd00::1]/",
    ],
)
def test_result_urls_on_private_addresses_are_refused(url):
    from pipeline.fetch import FetchRefused, Guard, check

    with pytest.raises(FetchRefused):
        check(url, Guard.for_base_url("https://api.ideogram.ai"))


def test_a_nat64_address_of_the_metadata_service_is_refused():
    from pipeline.fetch import FetchRefused, Guard, check

    with pytest.raises(FetchRefused):
        check("http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", Guard.for_base_url("https://api.ideogram.ai"))


def test_an_ipv4_translated_address_is_refused():
    from pipeline.fetch import FetchRefused, Guard, check

    with pytest.raises(FetchRefused):
        check("http://[::ffff:0:a9fe:a9fe]/", Guard.for_base_url("https://api.ideogram.ai"))


def test_a_result_url_redirecting_to_metadata_is_refused_and_kept(bad, write_recipe):
    serve_one(bad)
    bad.script(IMG, Reply(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"}))
    path = write_recipe(ONE)
    first = api.run_file(path, options(bad.base_url))
    frame = read_manifest(first.manifest)
    assert frame["status"].iloc[0] != "ok"
    assert "not a public address" in frame["error"].iloc[0]
    api.run_file(path, options(bad.base_url, retry_failed=True))
    assert posts(bad) == 1


# == 5. bounded in time =====================================================================

TIMED = ONE.replace("output:", "timeouts: {connect: 2, read: 10, total: 3}\noutput:")


def test_a_trickling_api_answer_is_cut_at_total(bad, write_recipe):
    text = json.dumps(answer(bad.url(IMG)))
    bad.script(GEN, Reply(200, text, trickle=0.1))
    bad.script(IMG, Reply(200, png()))
    t0 = time.monotonic()
    first = api.run_file(write_recipe(TIMED), options(bad.base_url))
    assert time.monotonic() - t0 < 3 + 3
    assert read_manifest(first.manifest)["status"].tolist() == ["in_doubt"]


def test_total_bounds_request_and_download_together(bad, write_recipe):
    text = json.dumps(answer(bad.url(IMG)))
    bad.script(GEN, Reply(200, text, trickle=2.4 / len(text)))
    image = png()
    bad.script(IMG, Reply(200, image, trickle=4.0 / len(image)))
    marks: dict[str, float] = {}

    def on_event(event) -> None:
        marks.setdefault(event.kind, time.monotonic())

    api.run_file(write_recipe(TIMED), options(bad.base_url, on_event=on_event))
    took = time.monotonic() - marks["started"]
    assert took < 3 + 1.5, f"the exchange took {took:.1f} s against timeouts.total = 3 s"


def test_retry_after_as_an_http_date_is_honoured(bad, write_recipe):
    from email.utils import formatdate

    seen: list[float] = []
    when = formatdate(time.time() + 3, usegmt=True)
    bad.script(
        GEN,
        Reply(429, {"error": "slow down"}, {"Retry-After": when}, hook=lambda: seen.append(time.monotonic())),
        Reply(200, answer(bad.url(IMG)), hook=lambda: seen.append(time.monotonic())),
    )
    bad.script(IMG, Reply(200, png()))
    first = api.run_file(
        write_recipe(ONE.replace("output:", "timeouts: {total: 20}\noutput:")), options(bad.base_url)
    )
    assert len(seen) == 2 and seen[1] - seen[0] >= 1.5
    assert read_manifest(first.manifest)["status"].tolist() == ["ok"]


def test_a_retry_after_beyond_total_gives_up_at_once(bad, write_recipe):
    bad.script(GEN, Reply(429, {"error": "later"}, {"Retry-After": "3600"}))
    t0 = time.monotonic()
    first = api.run_file(write_recipe(TIMED), options(bad.base_url))
    assert time.monotonic() - t0 < 3 + 3
    assert posts(bad) == 1
    assert read_manifest(first.manifest)["status"].iloc[0] != "ok"


# == 1b. the files: names, the store, the manifest beside them ============================


def test_an_output_name_that_is_the_report_or_manifest_is_refused_or_kept(emulator, write_recipe):
    from pipeline.store import file_sha256

    recipe = write_recipe(
        ONE.replace("provider: ideogram", "provider: emulator")
        .replace('prompt: "A {{ product }}"', 'prompt: "A {{ product }}"\n    num_images: 2')
        .replace(
            "dir: out", 'dir: out\n  file: "{% if index == 0 %}report.html{% else %}manifest.csv{% endif %}"'
        )
    )
    result = _run_or_refuse(lambda: api.run_file(recipe, options(emulator.base_url)))
    if result is None:  # refused up front with exit 2: the promise is kept
        return
    frame = read_manifest(result.manifest)
    for row in frame.itertuples():
        if row.status == "ok":
            assert file_sha256(result.out_dir / row.file) == row.sha256, row.file


def test_editing_an_output_in_place_keeps_the_stored_original(bad, write_recipe):
    serve_one(bad)
    path = write_recipe(ONE)
    first = api.run_file(path, options(bad.base_url))
    row = read_manifest(first.manifest).iloc[0]
    target = first.out_dir / row["file"]
    with open(target, "r+b") as f:  # what `mogrify` and many tools do: rewrite in place
        f.seek(0)
        f.write(b"\x00" * 16)
    bad.script(IMG, Reply(404, {"error": "expired"}))  # the provider's URL has expired
    again = api.run_file(path, options(bad.base_url))
    assert posts(bad) == 1
    assert read_manifest(again.manifest)["status"].tolist() == ["ok"]  # back from the store


def test_a_file_versus_folder_clash_and_case_collisions_are_refused_at_plan(tmp_path):
    from review_kit import cli

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        ONE.replace(
            "  - {sku: A1, product: kettle}",
            '  - {sku: "Caf\\u00e9", product: a}\n  - {sku: "Cafe\\u0301", product: b}\n'
            '  - {sku: "x.png", product: c}\n  - {sku: "x.png/y", product: d}\n'
            '  - {sku: "AB", product: e}\n  - {sku: "ab", product: f}',
        ).replace("dir: out", 'dir: out\n  file: "{{ sku }}"'),
        encoding="utf-8",
    )
    done = cli("plan", str(recipe))
    assert done.returncode == 2
    assert done.stderr.count("same file on case-insensitive") == 2
    assert "would be a file and also the folder" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_name_too_long_with_the_temporary_suffix_is_refused_at_plan(tmp_path):
    from review_kit import cli

    name = "é" * 121  # 242 bytes: fits 255 alone, not with the 15-byte temporary suffix
    recipe = tmp_path / "r.yaml"
    recipe.write_text(ONE.replace("dir: out", f'dir: out\n  file: "{name}"'), encoding="utf-8")
    done = cli("plan", str(recipe))
    assert done.returncode == 2 and "bytes" in done.stderr, done.stderr


def test_stale_part_cleanup_does_not_follow_links_out(bad, write_recipe, tmp_path):
    serve_one(bad)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / ".precious.part").write_bytes(b"mine")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(outside, target_is_directory=True)
    api.run_file(write_recipe(ONE), options(bad.base_url))
    assert (outside / ".precious.part").read_bytes() == b"mine"


# == 1c. signals ============================================================================

TWO = ONE.replace(
    "  - {sku: A1, product: kettle}", "  - {sku: A1, product: kettle}\n  - {sku: B2, product: teapot}"
)


def _stderr_reader(proc):
    import threading

    lines: list[str] = []
    seen = threading.Condition()

    def pump() -> None:
        for line in proc.stderr:
            with seen:
                lines.append(line)
                seen.notify_all()

    threading.Thread(target=pump, daemon=True).start()

    def wait_for(text: str, timeout: float = 20) -> bool:
        with seen:
            return seen.wait_for(lambda: any(text in x for x in lines), timeout)

    return lines, wait_for


@pytest.mark.parametrize(("sig", "code"), [("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", 130)])
def test_a_stop_signal_lets_the_paid_request_finish_and_journal(bad, tmp_path, sig, code):
    import os
    import signal
    import subprocess
    import sys
    import threading

    arrived, release = threading.Event(), threading.Event()

    def hold() -> None:
        arrived.set()
        release.wait(20)

    bad.script(GEN, Reply(200, answer(bad.url(IMG)), hook=hold), Reply(200, answer(bad.url(IMG))))
    bad.script(IMG, Reply(200, png()))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(TWO)
    cmd = [
        sys.executable,
        "-m",
        "pipeline",
        "run",
        str(recipe),
        "--yes",
        "--concurrency",
        "1",
        "--base-url",
        bad.base_url,
    ]
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, "IDEOGRAM_API_KEY": KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines, wait_for = _stderr_reader(proc)
    try:
        assert arrived.wait(30), "the request never arrived"
        proc.send_signal(getattr(signal, sig))
        assert wait_for("stopping"), "".join(lines)
        release.set()
        assert proc.wait(30) == code, "".join(lines)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    out = tmp_path / "out"
    assert posts(bad) == 1
    assert rows(out, "SELECT count(*) FROM responses")[0][0] == 1  # the paid answer is kept
    assert rows(out, "SELECT status FROM runs")[0][0] != "running"
    assert "Traceback" not in "".join(lines)
    again = subprocess.run(
        cmd, env={**os.environ, "IDEOGRAM_API_KEY": KEY}, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0, again.stderr
    assert posts(bad) == 2  # only the task never sent


# == 4b. manifests are untrusted input (rerun, report) ====================================

EMU_ONE = ONE.replace("provider: ideogram", "provider: emulator")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A real emulator run whose output folder each test copies and tampers with."""
    from pipeline.emulator import Emulator
    from pipeline.runner import RunOptions

    folder = tmp_path_factory.mktemp("finished")
    recipe = folder / "r.yaml"
    recipe.write_text(EMU_ONE)
    with Emulator(rng_seed=3) as em:
        result = api.run_file(recipe, RunOptions(base_url=em.base_url, yes=True, quiet=True))
    assert result.exit_code == 0
    return result.out_dir


def _tampered(finished_run, tmp_path, column, value):
    import shutil

    import pandas as pd

    out = tmp_path / "out"
    shutil.copytree(finished_run, out)
    frame = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    if value is None:
        frame = frame.drop(columns=[column])
    else:
        frame.loc[0, column] = value
    frame.to_csv(out / "manifest.csv", index=False)
    return out


def _verb_argv(verb, out, tmp_path):
    if verb == "rerun":
        return ["rerun", str(out / "manifest.csv"), "--out", str(tmp_path / "again"), "--yes", "--quiet"]
    return ["report", str(out)]


MANIFEST_CASES = [
    pytest.param("rerun", "file", "../../etc/passwd", id="rerun-file-escapes"),
    pytest.param("report", "file", "/etc/passwd", id="report-file-absolute"),
    pytest.param("rerun", "matrix", "{bad", id="rerun-matrix-malformed"),
    pytest.param("report", "status", "weird", id="report-status-unknown"),
    pytest.param(
        "rerun",
        "seed",
        "1e400",
        id="rerun-seed-infinite",
    ),
    pytest.param(
        "report",
        "seed",
        "1e400",
        id="report-seed-infinite",
    ),
    pytest.param(
        "rerun",
        "seed",
        "9" * 30,
        id="rerun-seed-huge",
    ),
    pytest.param(
        "report",
        "seed",
        "9" * 30,
        id="report-seed-huge",
    ),
    pytest.param(
        "rerun",
        "step_id",
        "nope",
        id="rerun-step-unknown",
    ),
    pytest.param(
        "rerun",
        "row_key",
        "",
        id="rerun-row-key-empty",
    ),
    pytest.param(
        "rerun",
        "cost_usd",
        "nan",
        id="rerun-cost-nan",
    ),
    pytest.param(
        "rerun",
        "seed",
        None,
        id="rerun-no-seed-column",
    ),
]


@pytest.mark.parametrize(("verb", "column", "value"), MANIFEST_CASES)
def test_a_tampered_manifest_gets_one_clear_sentence_and_exit_2(finished_run, tmp_path, verb, column, value):
    from review_kit import cli

    out = _tampered(finished_run, tmp_path, column, value)
    done = cli(*_verb_argv(verb, out, tmp_path))
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert not (tmp_path / "again").exists()


def test_the_export_verb_is_reachable_and_refuses_bad_input(finished_run, tmp_path):
    from review_kit import cli

    done = cli("export", str(finished_run), "--to", str(tmp_path / "d"), "--sizes", "0x-1")
    assert "unknown command" not in done.stderr, done.stderr
    assert done.returncode == 2 and "Traceback" not in done.stderr


# == 2b. never pay more than planned: the lock file is input too ===========================


def test_a_tampered_lock_cannot_spend_past_the_plan_or_the_cap(emulator, write_recipe):
    path = write_recipe(ONE)
    plan = api.plan_file(path)
    (task,) = plan.tasks
    lock = {
        "provider": "ideogram",
        "recipe": "review",
        "recipe_sha256": plan.recipe.sha256,
        "schema_version": 1,
        "tasks": {task.id: [{"seed": s, "api_prompt": "a kettle"} for s in range(1, 6)]},
    }
    Path(str(path) + ".lock.json").write_text(json.dumps(lock))
    _run_or_refuse(
        lambda: api.run_file(
            path, options(emulator.base_url, max_cost=task.cost_usd, reproduce=api.lock_entries(plan))
        )
    )
    assert emulator.ledger()["requests"] <= 1, "more requests than planned, past --max-cost"


def test_a_malformed_lock_entry_is_refused_with_exit_2(emulator, write_recipe, tmp_path):
    from review_kit import cli

    path = write_recipe(ONE)
    plan = api.plan_file(path)
    lock = {"schema_version": 1, "tasks": {plan.tasks[0].id: "not a list of records"}}
    Path(str(path) + ".lock.json").write_text(json.dumps(lock))
    done = cli(
        "run", str(path), "--yes", "--quiet", "--base-url", emulator.base_url, env={"IDEOGRAM_API_KEY": KEY}
    )
    assert done.returncode == 2 and "internal error" not in done.stderr, done.stderr


# == 4c. writes never follow planted links ==================================================


def test_a_planted_state_folder_link_redirects_no_write(emulator, write_recipe, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".ideopipe").symlink_to(outside, target_is_directory=True)
    _run_or_refuse(lambda: api.run_file(write_recipe(ONE), options(emulator.base_url)))
    assert sorted(p.name for p in outside.iterdir()) == []


def test_lock_does_not_write_through_a_planted_temp_link(finished_run, tmp_path):
    import shutil

    from review_kit import cli

    recipe = tmp_path / "r.yaml"
    recipe.write_text(EMU_ONE)
    shutil.copytree(finished_run, tmp_path / "out")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    Path(str(recipe) + ".lock.json.part").symlink_to(victim)
    done = cli("lock", str(recipe))
    assert "Traceback" not in done.stderr
    assert victim.read_text() == "precious"


def test_a_link_planted_at_the_manifest_name_is_replaced_not_followed(bad, write_recipe, tmp_path):
    serve_one(bad)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "manifest.csv").symlink_to(victim)
    (tmp_path / "out" / "report.html").symlink_to(victim)
    api.run_file(write_recipe(ONE), options(bad.base_url))
    assert victim.read_text() == "precious"


def test_an_input_behind_a_symlinked_folder_is_not_read(emulator, write_recipe, tmp_path):
    from review_kit import cli

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.png").write_bytes(png())
    (tmp_path / "pics").symlink_to(elsewhere, target_is_directory=True)
    recipe = write_recipe(
        ONE.replace(
            '  - id: hero\n    op: generate\n    prompt: "A {{ product }}"',
            '  - id: hero\n    op: remix\n    image: pics/a.png\n    prompt: "A {{ product }}"',
        )
    )
    done = cli(
        "run", str(recipe), "--yes", "--quiet", "--base-url", emulator.base_url, env={"IDEOGRAM_API_KEY": KEY}
    )
    assert emulator.ledger()["requests"] == 0, "the linked file was read and sent"
    assert done.returncode == 2, done.stderr


@pytest.mark.parametrize("where", ["prompt", "url"])
def test_a_lone_surrogate_in_a_200_answer_is_journaled_and_never_resent(bad, write_recipe, where):
    text = json.dumps(answer(bad.url(IMG), prompt="p"))
    text = (
        text.replace('"prompt": "p"', '"prompt": "\\ud800 odd"')
        if where == "prompt"
        else text.replace('/img.png"', '/img\\ud800.png"')
    )
    bad.script(GEN, Reply(200, text))
    bad.script(IMG, Reply(200, png()))
    path = write_recipe(ONE)
    first = api.run_file(path, options(bad.base_url))
    assert rows(first.out_dir, "SELECT count(*) FROM responses")[0][0] == 1
    api.run_file(path, options(bad.base_url, retry_failed=True))
    assert posts(bad) == 1


def test_a_nul_character_in_a_200_answer_is_kept(bad, write_recipe):
    text = json.dumps(answer(bad.url(IMG), prompt="p")).replace('"prompt": "p"', '"prompt": "a\\u0000b"')
    bad.script(GEN, Reply(200, text))
    bad.script(IMG, Reply(200, png()))
    path = write_recipe(ONE)
    first = api.run_file(path, options(bad.base_url))
    assert rows(first.out_dir, "SELECT count(*) FROM responses")[0][0] == 1
    api.run_file(path, options(bad.base_url, retry_failed=True))
    assert posts(bad) == 1


def test_a_500_with_a_lone_surrogate_stays_in_doubt(bad, write_recipe):
    bad.script(GEN, Reply(500, '{"error": "boom \\ud800"}'))
    path = write_recipe(ONE)
    first = api.run_file(path, options(bad.base_url))
    assert read_manifest(first.manifest)["status"].tolist() == ["in_doubt"]
    api.run_file(path, options(bad.base_url, retry_failed=True))
    assert posts(bad) == 1


def test_a_second_sigterm_quits_at_once_and_the_request_stays_in_doubt(bad, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import threading

    arrived, release = threading.Event(), threading.Event()

    def hold() -> None:
        arrived.set()
        release.wait(20)

    bad.script(GEN, Reply(200, answer(bad.url(IMG)), hook=hold), Reply(200, answer(bad.url(IMG))))
    bad.script(IMG, Reply(200, png()))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(ONE)
    cmd = [sys.executable, "-m", "pipeline", "run", str(recipe), "--yes", "--base-url", bad.base_url]
    env = {**os.environ, "IDEOGRAM_API_KEY": KEY}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines, wait_for = _stderr_reader(proc)
    try:
        assert arrived.wait(30)
        proc.send_signal(signal.SIGTERM)
        assert wait_for("stopping"), "".join(lines)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 143
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert posts(bad) == 1  # the request in flight at the kill is never resent
    assert "in_doubt" in again.stderr or "in doubt" in again.stderr, again.stderr


def test_doctor_repair_rebuilds_from_a_tampered_manifest_without_a_traceback(finished_run, tmp_path):
    from review_kit import cli

    out = _tampered(finished_run, tmp_path, "seed", "1e400")
    (out / ".ideopipe" / "state.db").write_bytes(b"this is not a database at all" * 100)
    for extra in ("-wal", "-shm"):
        (out / ".ideopipe" / f"state.db{extra}").unlink(missing_ok=True)
    done = cli("doctor", str(out), "--repair")
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert done.returncode in (0, 1, 2)


# == more attempts that held ================================================================


def test_a_gzip_bomb_result_is_refused_after_decoding_and_not_resent(bad, write_recipe):
    serve_one(bad)
    bad.script(IMG, Reply(200, b"\x00" * (70 << 20), {"Content-Type": "image/png"}, encoding="gzip"))
    path = write_recipe(ONE)
    first = api.run_file(path, options(bad.base_url))
    frame = read_manifest(first.manifest)
    assert frame["status"].iloc[0] != "ok" and "bytes" in frame["error"].iloc[0]
    api.run_file(path, options(bad.base_url, retry_failed=True))
    assert posts(bad) == 1


def test_a_gzip_compressed_result_image_is_decoded(bad, write_recipe):
    serve_one(bad)
    image = png((10, 200, 10))
    bad.script(IMG, Reply(200, image, {"Content-Type": "image/png"}, encoding="gzip"))
    first = api.run_file(write_recipe(ONE), options(bad.base_url))
    from pipeline.store import digest

    assert read_manifest(first.manifest)["sha256"].iloc[0] == digest(image)


def test_an_answer_shorter_than_its_length_is_in_doubt(bad, write_recipe):
    text = json.dumps(answer(bad.url(IMG)))
    bad.script(GEN, Reply(200, text, length=len(text) + 50))
    path = write_recipe(ONE)
    first = api.run_file(path, options(bad.base_url))
    assert read_manifest(first.manifest)["status"].tolist() == ["in_doubt"]
    api.run_file(path, options(bad.base_url, retry_failed=True))
    assert posts(bad) == 1


def test_the_key_in_an_error_body_never_reaches_the_terminal(bad, write_recipe):
    from review_kit import cli

    bad.script(GEN, Reply(400, {"error": f"invalid request for key {KEY}"}))
    done = cli(
        "run", str(write_recipe(ONE)), "--yes", "--base-url", bad.base_url, env={"IDEOGRAM_API_KEY": KEY}
    )
    said = done.stdout + done.stderr
    assert "invalid request" in said or "400" in said, said
    for n in range(len(KEY) - 8):
        assert KEY[n : n + 8] not in said


def test_a_401_partway_stops_and_the_next_run_completes_without_resending(bad, write_recipe):
    path = write_recipe(TWO)
    bad.script(
        GEN,
        Reply(200, answer(bad.url(IMG))),
        Reply(401, {"error": "revoked"}),
        Reply(200, answer(bad.url(IMG), seed=12)),
    )
    bad.script(IMG, Reply(200, png()))
    first = api.run_file(path, options(bad.base_url, concurrency=1))
    assert first.exit_code != 0 and posts(bad) == 2
    assert sorted(read_manifest(first.manifest)["status"]) == ["ok", "pending"]
    second = api.run_file(path, options(bad.base_url, concurrency=1))
    assert posts(bad) == 3 and second.exit_code == 0


def test_a_second_run_on_the_same_folder_is_refused_while_one_runs(bad, tmp_path):
    import os
    import subprocess
    import sys
    import threading

    from review_kit import cli

    arrived, release = threading.Event(), threading.Event()

    def hold() -> None:
        arrived.set()
        release.wait(20)

    bad.script(GEN, Reply(200, answer(bad.url(IMG)), hook=hold))
    bad.script(IMG, Reply(200, png()))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(ONE)
    env = {"IDEOGRAM_API_KEY": KEY}
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
            bad.base_url,
        ],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert arrived.wait(30)
        second = cli("run", str(recipe), "--yes", "--quiet", "--base-url", bad.base_url, env=env)
        gc = cli("gc", str(tmp_path / "out"), "--yes")
    finally:
        release.set()
        first_code = proc.wait(30)
    assert second.returncode != 0 and "Traceback" not in second.stderr, second.stderr
    assert "Traceback" not in gc.stderr and (gc.returncode != 0 or "0 unreferenced" in gc.stdout)
    assert first_code == 0 and posts(bad) == 1


# == rerun --where: pandas' `@name` reaches the caller's globals ============================


def test_rerun_where_cannot_run_commands(finished_run, tmp_path):
    import shutil

    from review_kit import cli

    shutil.copytree(finished_run, tmp_path / "out")
    mark = tmp_path / "pwned"
    done = cli(
        "rerun",
        str(tmp_path / "out" / "manifest.csv"),
        "--where",
        f"@os.system('touch {mark}')",
        "--out",
        str(tmp_path / "again"),
        "--yes",
    )
    assert not mark.exists(), "the --where expression ran a shell command"
    assert done.returncode == 2 and "internal error" not in done.stderr, done.stderr


def test_rerun_where_cannot_print_the_key(finished_run, tmp_path):
    import shutil

    from review_kit import cli

    shutil.copytree(finished_run, tmp_path / "out")
    done = cli(
        "rerun",
        str(tmp_path / "out" / "manifest.csv"),
        "--where",
        "@os.environ['IDEOGRAM_API_KEY']",
        "--out",
        str(tmp_path / "again"),
        "--yes",
        env={"IDEOGRAM_API_KEY": KEY},
    )
    assert done.returncode == 2
    assert KEY[:10] not in done.stderr + done.stdout and KEY[-10:] not in done.stderr, done.stderr


def test_a_run_leaves_files_that_are_not_its_own_temporaries(bad, write_recipe, tmp_path):
    serve_one(bad)
    mine = tmp_path / "out" / "notes" / ".draft.part"
    mine.parent.mkdir(parents=True)
    mine.write_text("a user's file, not ideopipe's")
    api.run_file(write_recipe(ONE), options(bad.base_url))
    assert mine.exists()


def test_after_a_killed_run_the_sweep_leaves_files_that_are_not_its_own(bad, write_recipe, tmp_path):
    import sqlite3
    from contextlib import closing

    serve_one(bad)
    path = write_recipe(ONE)
    first = api.run_file(path, options(bad.base_url))
    with closing(sqlite3.connect(first.out_dir / ".ideopipe" / "state.db")) as conn, conn:
        conn.execute("UPDATE runs SET status='running'")  # as a kill -9 leaves it
    mine = first.out_dir / "notes" / ".draft.part"
    mine.parent.mkdir()
    mine.write_text("a user's file, not ideopipe's")
    stale = first.out_dir / ".hero.png.0123abcd.part"
    stale.write_bytes(b"half an image")
    api.run_file(path, options(bad.base_url))
    assert mine.exists() and not stale.exists()


@pytest.fixture
def tiny_disk(tmp_path):
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=640k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_keeps_the_answer_and_the_next_run_does_not_resend(bad, tiny_disk, tmp_path):
    import os
    import subprocess

    big = png()
    padded = big + b"\x00" * (1500 << 10)  # a valid PNG with trailing bytes: too big for the disk
    serve_one(bad, image=padded)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(ONE.replace("dir: out", f"dir: {tiny_disk / 'out'}"))
    first = api.run_file(recipe, options(bad.base_url))
    assert first.exit_code != 0
    assert rows(tiny_disk / "out", "SELECT count(*) FROM responses")[0][0] == 1
    subprocess.run(["mount", "-o", "remount,size=8m", str(tiny_disk)], check=True)
    again = api.run_file(recipe, options(bad.base_url, retry_failed=True))
    assert posts(bad) == 1
    assert again.exit_code == 0, again.failures
    assert os.path.getsize(tiny_disk / "out" / read_manifest(again.manifest)["file"].iloc[0]) == len(padded)


@pytest.mark.parametrize(
    "argv",
    [
        ("runs", "{out}"),
        ("report", "{out}"),
        ("gc", "{out}", "--yes"),
        ("rerun", "{out}/manifest.csv", "--yes"),
    ],
)
def test_a_damaged_journal_is_one_sentence_and_exit_2(finished_run, tmp_path, argv):
    import shutil

    from review_kit import cli

    out = tmp_path / "out"
    shutil.copytree(finished_run, out)
    (out / ".ideopipe" / "state.db").write_bytes(b"garbage" * 500)
    for extra in ("-wal", "-shm"):
        (out / ".ideopipe" / f"state.db{extra}").unlink(missing_ok=True)
    done = cli(*(a.format(out=out) for a in argv))
    assert done.returncode == 2 and "damaged" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "data:image/png;base64,AAAA",
        "gopher://127.0.0.1:70/",
        "http://user:pw@example.com/x.png",
    ],
)
def test_result_urls_of_other_schemes_are_refused_and_never_resent(bad, write_recipe, url):
    serve_one(bad, answer(url))
    path = write_recipe(ONE)
    first = api.run_file(path, options(bad.base_url))
    assert read_manifest(first.manifest)["status"].iloc[0] != "ok"
    api.run_file(path, options(bad.base_url, retry_failed=True))
    assert posts(bad) == 1


def test_a_dns_answer_with_any_private_address_is_refused():
    from pipeline.fetch import FetchRefused, Guard, check

    with pytest.raises(FetchRefused):
        check(
            "http://images.example.test/a.png",
            Guard(),
            resolve=lambda host, port: ["93.184.216.34", "169.254.169.254"],
        )
    target = check("http://images.example.test/a.png", Guard(), resolve=lambda host, port: ["93.184.216.34"])
    assert target.address == "93.184.216.34" and target.host_header == "images.example.test"


def test_sigterm_during_the_download_keeps_the_answer_and_never_resends(bad, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import threading

    arrived, release = threading.Event(), threading.Event()

    def hold() -> None:
        arrived.set()
        release.wait(20)

    bad.script(GEN, Reply(200, answer(bad.url(IMG))))
    bad.script(IMG, Reply(200, png(), hook=hold), Reply(200, png()))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(ONE)
    cmd = [sys.executable, "-m", "pipeline", "run", str(recipe), "--yes", "--base-url", bad.base_url]
    env = {**os.environ, "IDEOGRAM_API_KEY": KEY}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines, wait_for = _stderr_reader(proc)
    try:
        assert arrived.wait(30)
        proc.send_signal(signal.SIGTERM)
        assert wait_for("stopping"), "".join(lines)
        release.set()
        assert proc.wait(30) == 143, "".join(lines)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert posts(bad) == 1


def test_revert_after_an_edit_and_a_gc_costs_nothing(emulator, write_recipe, tmp_path):
    from review_kit import cli

    path = write_recipe(ONE)
    first = api.run_file(path, options(emulator.base_url))
    before = read_manifest(first.manifest)["sha256"].tolist()
    path.write_text(ONE.replace("A {{ product }}", "A shiny {{ product }}"))
    api.run_file(path, options(emulator.base_url))
    gc = cli("gc", str(first.out_dir), "--yes")
    assert gc.returncode == 0 and "Traceback" not in gc.stderr, gc.stderr
    sent = emulator.ledger()["requests"]
    path.write_text(ONE)
    back = api.run_file(path, options(emulator.base_url))
    assert emulator.ledger()["requests"] == sent  # $0: no request
    frame = read_manifest(back.manifest)
    assert frame["sha256"].tolist() == before and set(frame["status"]) <= {"ok", "cached"}
