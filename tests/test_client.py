"""The API client against a misbehaving server: the key stays home, time is bounded, bodies are checked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from pipeline import ops, providers, wire
from pipeline.client import Client, RetryPolicy, Timeouts, retry_after
from pipeline.errors import (
    AuthError,
    BadRequest,
    InputError,
    OutcomeUnknown,
    PaymentError,
    RateLimited,
)
from pipeline.providers import ApiKey
from pipeline.runner import RunOptions
from pipeline.transport import check_timeouts
from tests.badserver import BadServer, Reply

KEY = "sk-live-7Hq2Zp9Lw4Xc8Vb1Nm6Ks3"
ENDPOINT = ops.endpoint_for(ops.Op.GENERATE, "V_3")
assert ENDPOINT is not None
PATH = ENDPOINT.path
IMAGE = {
    "url": "http://127.0.0.1/x.png",
    "seed": 7,
    "is_image_safe": True,
    "prompt": "p",
    "resolution": "1024x1024",
}


def leaks(text: str, key: str = KEY) -> list[str]:
    """Every 8-character run of the key found in `text`."""
    return [key[i : i + 8] for i in range(len(key) - 7) if key[i : i + 8] in text]


@pytest.fixture
def bad() -> Iterator[BadServer]:
    with BadServer() as server:
        yield server


def client(
    bad: BadServer, *, total: float = 10.0, attempts: int = 4, key: str = KEY, retry_unknown: bool = False
) -> Client:
    provider = providers.get("ideogram", bad.base_url)
    return Client(
        provider,
        key,
        timeouts=Timeouts(connect=2, read=5, total=total),
        retry=RetryPolicy(
            max_attempts=attempts, base_delay=0.01, max_delay=0.02, retry_unknown=retry_unknown
        ),
    )


def call(c: Client, url: str | None = None) -> wire.Result:
    target = url or c.provider.url(PATH)
    assert ENDPOINT is not None
    result = c.call(ENDPOINT, lambda: wire.WireRequest(target, fields=[("prompt", "p")])).result
    assert result is not None
    return result


# -- 1. the key never leaves for another host -----------------------------------------------


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_an_error_naming_its_host_and_is_never_followed(bad, code):
    bad.script(PATH, Reply(code, headers={"Location": "http://collector.evil.test/steal"}))
    with pytest.raises(BadRequest, match=r"redirect to collector\.evil\.test") as caught:
        call(client(bad))
    assert len(bad.seen) == 1  # the network guard would fail the test on a lookup of evil.test
    assert not leaks(str(caught.value))


@pytest.mark.parametrize("host", ["127.0.0.2", "localhost", "[::1]"])
def test_the_key_goes_only_to_the_base_url_host(bad, host):
    with pytest.raises(BadRequest, match="refused to send the key"):
        call(client(bad), bad.url(PATH, host))
    assert bad.seen == []


def test_the_key_header_reaches_the_base_url_host(bad):
    bad.script(PATH, Reply(200, {"created": "now", "data": [IMAGE]}))
    assert call(client(bad)).images[0].seed == 7
    assert bad.seen[0].headers["Api-Key"] == KEY


# -- 2. redaction happens before truncation, in error and success bodies --------------------


@pytest.mark.parametrize(
    "body",
    [
        {"error": f"bad key {KEY}"},
        {"message": f"key fragment {KEY[3:15]} seen"},
        {"detail": "x" * 290 + KEY},  # a truncation at 300 would cut the key into a fragment
        "plain text " + KEY[5:] + " trailing",
        "x" * 295 + KEY,
        {"error": {"nested": [KEY[::1]]}},
    ],
)
@pytest.mark.parametrize("code", [400, 401, 402, 422, 500])
def test_error_bodies_never_carry_the_key(bad, body, code):
    bad.script(PATH, Reply(code, body))
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the type depends on the status
        call(client(bad, attempts=1))
    text = str(caught.value) + getattr(caught.value, "provider_message", "")
    assert not leaks(text), text


def test_success_bodies_are_redacted_before_they_are_kept(bad):
    echoed = {**IMAGE, "prompt": f"a sign reading {KEY}", "style_type": KEY[2:12]}
    bad.script(PATH, Reply(200, {"created": "now", "data": [echoed], KEY: "odd key"}))
    c = client(bad)
    assert ENDPOINT is not None
    reply = c.call(ENDPOINT, lambda: wire.WireRequest(c.provider.url(PATH), fields=[("p", "p")]))
    assert not leaks(repr(reply.body)) and not leaks(repr(reply.result))


@pytest.mark.parametrize("text", [KEY, KEY[:8], KEY[-9:], "a" + KEY[4:20] + "b", KEY + KEY])
def test_any_run_of_eight_characters_of_the_key_is_redacted(text):
    redacted = ApiKey(KEY).redact(f"before {text} after")
    assert not leaks(redacted) and redacted.startswith("before ") and redacted.endswith(" after")


def test_redaction_leaves_ordinary_text_alone():
    assert ApiKey(KEY).redact("sk-live is a prefix, 7Hq2 too") == "sk-live is a prefix, 7Hq2 too"


# -- 3. malformed keys are refused before anything is sent -----------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "sk-live-abc\ndef123456",
        "sk live abcdef123456",
        "sk-live-ключ-123456",
        "sk-\x00-12345678",
        "sk-\t123456789",
        "sk-live-\x7f12345678",
        "sk-\u00a0nbsp123456",
        "sk-live-\u200bzero123",
    ],
)
def test_a_malformed_key_is_refused_with_exit_2_without_echoing_it(bad, key):
    provider = providers.get("ideogram", bad.base_url)
    with pytest.raises(InputError, match="malformed") as caught:
        provider.key({"IDEOGRAM_API_KEY": key})
    assert caught.value.exit_code == 2
    assert not leaks(str(caught.value), key) and key not in str(caught.value)
    with pytest.raises(InputError, match="malformed"):
        Client(provider, key)
    assert bad.seen == []


def test_surrounding_whitespace_of_a_key_is_trimmed_not_refused():
    key = providers.get("ideogram").key({"IDEOGRAM_API_KEY": f"  {KEY}\n"})
    assert key.reveal() == KEY


# -- 4. nothing that holds the key prints it ---------------------------------------------------


@pytest.mark.parametrize(
    "holder",
    [
        lambda: ApiKey(KEY),
        lambda: str(ApiKey(KEY)),
        lambda: Client(providers.get("ideogram"), KEY),
        lambda: RunOptions(environ={"IDEOGRAM_API_KEY": KEY}),
        lambda: providers.get("ideogram").key({"IDEOGRAM_API_KEY": KEY}),
    ],
)
def test_no_repr_shows_the_key(holder):
    assert not leaks(repr(holder()))


def test_a_key_cannot_be_pickled_into_a_file():
    import pickle

    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(ApiKey(KEY))


# -- 5. plain http only to loopback unless allowed -------------------------------------------


@pytest.mark.parametrize(
    ("base", "allow", "ok"),
    [
        ("http://api.example.test", False, False),
        ("http://10.0.0.8:8080", False, False),
        ("http://api.example.test", True, True),
        ("https://api.example.test", False, True),
        ("http://127.0.0.1:9", False, True),
        ("http://localhost:9", False, True),
        ("http://[::1]:9", False, True),
        ("ftp://api.example.test", True, False),
        ("https://user:pw@api.example.test", False, False),
    ],
)
def test_plain_http_needs_allow_http_unless_loopback(base, allow, ok):
    provider = providers.get("ideogram", base)
    if ok:
        Client(provider, KEY, allow_http=allow)
    else:
        with pytest.raises(InputError) as caught:
            Client(provider, KEY, allow_http=allow)
        assert "pw" not in str(caught.value)


# -- 6. bodies that are not what the spec says -------------------------------------------------


@pytest.mark.parametrize(
    "body", ["not json", "<html>502</html>", [1, 2], {"data": "x"}, {"data": [1]}, {"nodata": True}, ""]
)
def test_an_unusable_200_is_a_reply_without_a_result_not_a_crash(bad, body):
    bad.script(PATH, Reply(200, body))
    c = client(bad)
    assert ENDPOINT is not None
    reply = c.call(ENDPOINT, lambda: wire.WireRequest(c.provider.url(PATH), fields=[("p", "p")]))
    assert reply.result is None and reply.problem and reply.attempts == 1
    assert len(bad.seen) == 1  # billed once: never sent again


@pytest.mark.parametrize(
    ("item", "field", "expected"),
    [
        ({"seed": 10**30}, "seed", None),
        ({"seed": -4}, "seed", None),
        ({"seed": "12345"}, "seed", 12345),
        ({"seed": 2**63 - 1}, "seed", 2**63 - 1),
        ({"seed": True}, "seed", None),
        ({"seed": 1.5}, "seed", None),
        ({"url": ["http://x"]}, "url", None),
        ({"url": None}, "url", None),
        ({"prompt": {"text": "p"}}, "prompt", '{"text":"p"}'),
        ({"resolution": 1024}, "resolution", "1024"),
        ({"style_type": ["AUTO"]}, "style_type", '["AUTO"]'),
        ({"is_image_safe": "false"}, "is_image_safe", True),
        ({"is_image_safe": False}, "is_image_safe", False),
    ],
)
def test_odd_types_and_huge_numbers_are_read_defensively(bad, item, field, expected):
    bad.script(PATH, Reply(200, {"created": 17, "data": [{**IMAGE, **item}]}))
    result = call(client(bad))
    assert getattr(result.images[0], field) == expected
    assert result.created == "17"


@pytest.mark.parametrize("number", ["9" * 5000, "-" + "9" * 4400, "1e999", "123456789012345678901"])
def test_numbers_python_cannot_hold_do_not_crash_the_reply(bad, number):
    text = f'{{"created": 1, "data": [{{"url": "http://127.0.0.1/x.png", "seed": {number}}}]}}'
    bad.script(PATH, Reply(200, text))
    assert call(client(bad)).images[0].seed is None


def test_data_empty_is_a_reply_with_no_images(bad):
    bad.script(PATH, Reply(200, {"created": "now", "data": []}))
    assert call(client(bad)).images == ()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "deflate-raw"])
def test_compressed_answers_are_read(bad, encoding):
    bad.script(PATH, Reply(200, {"created": "now", "data": [IMAGE]}, encoding=encoding))
    assert call(client(bad)).images[0].url == IMAGE["url"]


def test_an_answer_past_its_size_limit_is_outcome_unknown(bad, monkeypatch):
    monkeypatch.setattr("pipeline.client.MAX_ANSWER_BYTES", 1000)
    bad.script(PATH, Reply(200, {"created": "now", "data": [IMAGE], "pad": "x" * 5000}, encoding="gzip"))
    with pytest.raises(OutcomeUnknown, match="over 1,000 bytes"):
        call(client(bad))


# -- 7. faults partway ------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "error"), [(401, AuthError), (403, AuthError), (402, PaymentError)])
def test_auth_and_payment_errors_partway_stop_the_retries(bad, code, error):
    bad.script(
        PATH,
        Reply(429, {"error": "slow"}, headers={"Retry-After": "0"}),
        Reply(code, {"error": "no"}),
        Reply(200, {"data": [IMAGE]}),
    )
    with pytest.raises(error):
        call(client(bad))
    assert len(bad.seen) == 2


def test_a_connection_dropped_after_the_body_is_read_is_outcome_unknown_and_not_resent(bad):
    bad.script(PATH, Reply(drop=True), Reply(200, {"data": [IMAGE]}))
    with pytest.raises(OutcomeUnknown, match="connection lost after sending"):
        call(client(bad))
    assert len(bad.seen) == 1


def test_a_lying_length_on_the_answer_is_outcome_unknown(bad):
    bad.script(PATH, Reply(200, {"data": [IMAGE]}, length=5000))
    with pytest.raises(OutcomeUnknown):
        call(client(bad))


# -- 8. time: total bounds everything; Retry-After in both forms -----------------------------


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_trickling_answer_ends_at_the_total_deadline(bad, where):
    slow = {"trickle": 0.05} if where == "body" else {"trickle_headers": 0.05}
    bad.script(PATH, Reply(200, {"data": [IMAGE], "pad": "y" * 400}, **slow))
    start = time.monotonic()
    with pytest.raises(OutcomeUnknown, match=r"timeouts\.total"):
        call(client(bad, total=1.0))
    assert time.monotonic() - start < 3.0


def http_date(seconds: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


@pytest.mark.parametrize("value", ["1", "1.2", "date"])
def test_retry_after_is_honoured_in_both_forms(bad, value):
    header = http_date(2) if value == "date" else value
    bad.script(
        PATH, Reply(429, {"error": "limit"}, headers={"Retry-After": header}), Reply(200, {"data": [IMAGE]})
    )
    start = time.monotonic()
    call(client(bad))
    assert time.monotonic() - start >= 0.9
    assert len(bad.seen) == 2


@pytest.mark.parametrize("value", ["3600", "date"])
def test_a_retry_after_past_the_deadline_gives_up_at_once(bad, value):
    header = http_date(3600) if value == "date" else value
    bad.script(PATH, Reply(429, {"error": "limit"}, headers={"Retry-After": header}))
    start = time.monotonic()
    with pytest.raises(RateLimited):
        call(client(bad, total=2.0))
    assert time.monotonic() - start < 1.5
    assert len(bad.seen) == 1


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5", 5.0),
        ("0", 0.0),
        ("-3", 0.0),
        ("1.5", 1.5),
        ("nan", None),
        ("inf", None),
        ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0),
        ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_values(value, seconds):
    assert retry_after(value, NOW) == seconds


@pytest.mark.parametrize(
    "values",
    [
        {"total": float("inf")},
        {"read": float("nan")},
        {"connect": 0},
        {"total": -1},
        {"total": 86_401},
        {"read": "10"},
        {"connect": True},
    ],
)
def test_absurd_timeouts_are_refused(values):
    assert check_timeouts(values)
    with pytest.raises(InputError, match="timeouts"):
        Timeouts(**values)


# -- 2b. a 200 is kept whatever it holds; the key is hidden however it is written ------------


def _reply(bad: BadServer, text: str, **headers: str):
    bad.script(PATH, Reply(200, text, {"Content-Type": "application/json", **headers}))
    c = client(bad)
    assert ENDPOINT is not None
    return c.call(ENDPOINT, lambda: wire.WireRequest(c.provider.url(PATH), fields=[("p", "p")]))


@pytest.mark.parametrize("depth", [900, 50_000])
def test_a_deeply_nested_200_is_a_reply_never_an_exception(bad, depth):
    text = '{"created": "now", "data": [], "x": ' + "[" * depth + "]" * depth + "}"
    reply = _reply(bad, text)
    assert reply.text == text and len(bad.seen) == 1  # kept whole, sent once
    assert reply.result is not None or reply.problem  # usable, or recorded with why not


def test_redaction_walks_any_depth_without_recursion():
    from pipeline.scrub import redact_tree

    deep: list = [KEY]
    for _ in range(100_000):
        deep = [deep]
    out = redact_tree({KEY: deep}, ApiKey(KEY).redact)
    assert list(out) == ["***"]
    inner = out["***"]
    while isinstance(inner[0], list):
        inner = inner[0]
    assert inner == ["***"]


@pytest.mark.parametrize(
    "escaped",
    [
        "".join(f"\\u{ord(c):04x}" for c in KEY),  # every character escaped
        KEY[:6] + "".join(f"\\u{ord(c):04x}" for c in KEY[6:12]) + KEY[12:],  # a few
        KEY[:10] + "\\/" + KEY[10:],  # an escaped solidus splitting it
    ],
)
def test_a_key_written_as_json_escapes_is_not_kept(bad, escaped):
    import json

    text = json.dumps({"created": "now", "data": [IMAGE]})[:-1] + f', "note": "{escaped}"}}'
    reply = _reply(bad, text)
    assert not leaks(json.loads(reply.text)["note"]) and not leaks(repr(reply.body))
    assert json.loads(reply.text)["data"][0]["seed"] == 7  # the rest is kept as sent


def test_an_escaped_key_in_text_that_is_not_json_is_hidden_too():
    from pipeline.scrub import redact_text

    escaped = "".join(f"\\u{ord(c):04x}" for c in KEY)
    out = redact_text(f'<html>"{escaped}" and "unterminated {escaped}', ApiKey(KEY).redact)
    assert escaped not in out and out.startswith("<html>")


def test_a_body_in_an_unknown_codec_is_still_a_reply(bad):
    reply = _reply(
        bad, '{"created": "now", "data": []}', **{"Content-Type": "application/json; charset=idna"}
    )
    assert len(bad.seen) == 1 and (reply.result is not None or reply.problem)
