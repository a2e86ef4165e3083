"""The guarded fetch: only public hosts (or the provider's own), pinned, every hop checked, bounded."""

from __future__ import annotations

import gzip
import io
import ipaddress
import time
from collections.abc import Iterator

import pytest
from PIL import Image

from pipeline.fetch import (
    Fetcher,
    FetchError,
    FetchExpired,
    FetchRefused,
    FetchTimeout,
    FetchTooLarge,
    Guard,
    check,
    is_public,
)
from pipeline.transport import Timeouts
from tests.badserver import BadServer, Reply


def png(side: int = 16) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), "teal").save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def bad() -> Iterator[BadServer]:
    with BadServer() as server:
        yield server


def fetcher(bad: BadServer, **kw) -> Fetcher:
    """A fetcher that trusts the bad server's host, as the runner trusts the provider's."""
    return Fetcher(Guard.for_base_url(bad.base_url), **kw)


QUICK = Timeouts(connect=2, read=5, total=10)

PRIVATE = [
    "http://10.0.0.5/a.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://192.168.1.1/a",
    "http://172.16.0.1/a",
    "http://100.64.0.1/a",
    "http://0.0.0.0/a",
    "http://224.0.0.1/a",
    "http://255.255.255.255/a",
    "http://[::1]/a",
    "http://[fe80::1]/a",
    "http://[fc00::1]/a",
    "http://[::ffff:10.0.0.1]/a",
    "http://[2002:a00:1::]/a",
    "http://0x7f000001/a",
    "http://2130706433/a",
    "http://017700000001/a",
    "http://10.1/a",
    "http://127.0.0.2/a",
    "http://[ff02::1]/a",
    "http://192.0.2.10/a",
]


# -- 1. what may be fetched at all ------------------------------------------------------------


@pytest.mark.parametrize("url", PRIVATE)
def test_private_loopback_link_local_reserved_and_multicast_are_refused(bad, url):
    with pytest.raises(FetchRefused, match="not a public address"):
        fetcher(bad).get(url, QUICK)
    assert bad.seen == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.test/a.png",
        "file:///etc/passwd",
        "gopher://example.test/",
        "data:image/png;base64,AAAA",
        "a.png",
        "http:///nohost",
        "http://user:pw@example.test/a.png",
        "http://example.test:99999/a",
        "http://[fe80::1%25eth0]/a",
    ],
)
def test_other_schemes_credentials_and_broken_urls_are_refused(bad, url):
    with pytest.raises(FetchRefused):
        fetcher(bad).get(url, QUICK)


def test_loopback_by_name_is_refused_when_not_the_provider_host(bad):
    bad.script("/a.png", Reply(200, png()))
    with pytest.raises(FetchRefused, match="not a public address"):
        fetcher(bad).get(bad.url("/a.png", "localhost"), QUICK)
    assert bad.seen == []


def test_the_provider_host_is_the_one_exception(bad):
    bad.script("/a.png", Reply(200, png()))
    assert fetcher(bad).get(bad.url("/a.png"), QUICK).data == png()


@pytest.mark.parametrize(
    ("answers", "refused"),
    [
        (["169.254.169.254"], True),
        (["93.184.216.34", "10.0.0.1"], True),
        (["::1"], True),
        (["::ffff:192.168.0.1"], True),
        ([], False),
    ],
)
def test_every_address_a_name_resolves_to_is_checked(answers, refused):
    resolve = lambda host, port: list(answers)  # noqa: E731
    kind = FetchRefused if refused else FetchError
    with pytest.raises(kind):
        check("http://cdn.example.test/a.png", Guard(), resolve)


def test_a_resolver_failure_is_a_fetch_error():
    def resolve(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(FetchError, match="cannot resolve"):
        check("http://gone.example.test/a.png", Guard(), resolve)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("::ffff:127.0.0.1", False),
        ("not an address", False),
    ],
)
def test_is_public(address, public):
    assert is_public(address) is public


EMBEDDINGS = {
    "mapped": "::ffff:{}",
    "translated": "::ffff:0:{}",
    "compatible": "::{}",
    "nat64": "64:ff9b::{}",
    "nat64-local": "64:ff9b:1::{}",
    "6to4": "2002:{}::1",
    "teredo-client": "2001:0:4136:e378:8000:63bf:{}",
}
V4 = {
    "169.254.169.254": False,  # the metadata service
    "127.0.0.1": False,
    "10.0.0.5": False,
    "192.168.1.1": False,
    "100.64.0.1": False,  # shared address space
    "0.0.0.0": False,
    "224.0.0.1": False,  # multicast
    "8.8.8.8": True,
    "93.184.216.34": True,
}


def _embed(form: str, v4: str) -> str:
    packed = ipaddress.IPv4Address(v4).packed
    if form == "6to4":
        return EMBEDDINGS[form].format(f"{packed[0] << 8 | packed[1]:x}:{packed[2] << 8 | packed[3]:x}")
    if form == "teredo-client":  # the client address is stored inverted
        inv = bytes(b ^ 0xFF for b in packed)
        return EMBEDDINGS[form].format(f"{inv[0] << 8 | inv[1]:x}:{inv[2] << 8 | inv[3]:x}")
    return EMBEDDINGS[form].format(f"{packed[0] << 8 | packed[1]:x}:{packed[2] << 8 | packed[3]:x}")


@pytest.mark.parametrize("form", sorted(EMBEDDINGS))
@pytest.mark.parametrize(("v4", "public"), sorted(V4.items()))
def test_an_embedded_ipv4_is_judged_as_that_ipv4(form, v4, public):
    address = _embed(form, v4)
    assert is_public(v4) is public
    assert is_public(address) is public, address
    if not public:
        with pytest.raises(FetchRefused, match="not a public address"):
            check(f"http://[{address}]/a.png", Guard.for_base_url("https://api.ideogram.ai"))


def test_a_teredo_address_with_a_private_server_is_refused():
    assert not is_public("2001:0:a9fe:a9fe:8000:63bf:f7f7:f7f7")  # server 169.254.169.254, client 8.8.8.8


# -- 2. resolved once, pinned to the checked address -------------------------------------------


def test_the_connection_goes_to_the_checked_address_with_the_url_host(bad):
    bad.script("/a.png", Reply(200, png()))
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    got = Fetcher(Guard(frozenset({"api.example.test"})), resolve=resolve).get(
        f"http://api.example.test:{bad.port}/a.png", QUICK
    )
    assert got.data == png()
    assert calls == ["api.example.test"]
    assert bad.seen[0].headers["Host"] == f"api.example.test:{bad.port}"


def test_a_second_dns_answer_cannot_redirect_the_connection(bad, network_guard):
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    with pytest.raises(network_guard.error, match=r"93\.184\.216\.34"):
        Fetcher(Guard(), resolve=resolve).get(f"http://rebind.example.test:{bad.port}/a", QUICK)
    assert calls == ["rebind.example.test"]  # resolved once; the rebinding answer never used
    assert [b for b in network_guard.take() if "127.0.0.1" in b] == []
    assert bad.seen == []


# -- 3. every redirect hop is checked again -------------------------------------------------------


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/",
        "http://10.0.0.1/x.png",
        "file:///etc/passwd",
        "http://localhost:1/x.png",
    ],
)
def test_a_redirect_to_a_refused_url_is_refused(bad, code, target):
    bad.script("/r", Reply(code, headers={"Location": target}))
    with pytest.raises(FetchRefused):
        fetcher(bad).get(bad.url("/r"), QUICK)
    assert len(bad.seen) == 1


def test_a_relative_redirect_on_the_provider_host_is_followed(bad):
    bad.script("/r", Reply(302, headers={"Location": "/a.png"}))
    bad.script("/a.png", Reply(200, png()))
    got = fetcher(bad).get(bad.url("/r"), QUICK)
    assert got.data == png() and got.url.endswith("/a.png")


def test_a_redirect_loop_ends(bad):
    bad.script("/r", Reply(302, headers={"Location": "/r"}))
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetcher(bad).get(bad.url("/r"), QUICK)
    assert len(bad.seen) == 6


# -- 4. bodies: compressed, lying, oversized, expired --------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "deflate-raw"])
def test_compressed_bodies_are_decoded(bad, encoding):
    bad.script("/a.png", Reply(200, png(), encoding=encoding))
    assert fetcher(bad).get(bad.url("/a.png"), QUICK).data == png()


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_the_size_limit_counts_decoded_bytes(bad, encoding):
    bad.script("/bomb", Reply(200, b"\0" * 4_000_000, encoding=encoding))
    with pytest.raises(FetchTooLarge, match="after decoding"):
        fetcher(bad).get(bad.url("/bomb"), QUICK, max_bytes=1_000_000)


def test_a_gzip_bomb_is_stopped_without_decoding_it_all(bad):
    body = gzip.compress(b"\0" * 200_000_000)  # ~200 kB on the wire
    bad.script("/bomb", Reply(200, body, headers={"Content-Encoding": "gzip"}))
    with pytest.raises(FetchTooLarge):
        fetcher(bad).get(bad.url("/bomb"), QUICK, max_bytes=2_000_000)


def test_a_claimed_length_over_the_limit_is_refused_before_reading(bad):
    bad.script("/big", Reply(200, b"x" * 10, length=50_000_000))
    with pytest.raises(FetchTooLarge, match="50,000,000"):
        fetcher(bad).get(bad.url("/big"), QUICK, max_bytes=1_000_000)


def test_a_body_shorter_than_its_length_is_an_error(bad):
    bad.script("/short", Reply(200, png(), length=len(png()) + 500))
    with pytest.raises(FetchError):
        fetcher(bad).get(bad.url("/short"), QUICK)


def test_a_body_longer_than_its_length_is_cut_at_the_length(bad):
    bad.script("/long", Reply(200, png(), length=20))
    assert fetcher(bad).get(bad.url("/long"), QUICK).data == png()[:20]


@pytest.mark.parametrize(
    ("code", "error"),
    [(403, FetchExpired), (404, FetchExpired), (410, FetchExpired), (500, FetchError), (204, FetchError)],
)
def test_status_codes(bad, code, error):
    bad.script("/x", Reply(code, b""))
    with pytest.raises(error, match=str(code)):
        fetcher(bad).get(bad.url("/x"), QUICK)


def test_a_dropped_connection_is_a_fetch_error(bad):
    bad.script("/x", Reply(drop=True))
    with pytest.raises(FetchError):
        fetcher(bad).get(bad.url("/x"), QUICK)


# -- 5. one total deadline, however slow the server ------------------------------------------


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_trickling_server_is_cut_at_the_total_deadline(bad, where):
    slow = {"trickle": 0.05} if where == "body" else {"trickle_headers": 0.05}
    bad.script("/slow", Reply(200, png(), **slow))
    start = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetcher(bad).get(bad.url("/slow"), Timeouts(connect=2, read=5, total=1.0))
    assert time.monotonic() - start < 2.5


def test_the_deadline_covers_every_redirect_hop(bad):
    bad.script("/r", Reply(302, headers={"Location": "/slow"}, trickle_headers=0.02))
    bad.script("/slow", Reply(200, png(), trickle=0.02))
    start = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetcher(bad).get(bad.url("/r"), Timeouts(connect=2, read=5, total=1.0))
    assert time.monotonic() - start < 2.5


def test_connections_are_reused_after_a_whole_body(bad):
    bad.script("/a.png", Reply(200, png()))
    f = fetcher(bad)
    for _ in range(3):
        assert f.get(bad.url("/a.png"), QUICK).data == png()
    assert len(bad.seen) == 3


# -- 6. the suite's own network guard ------------------------------------------------------------


@pytest.mark.parametrize(
    "attempt",
    [
        lambda: __import__("socket").getaddrinfo("example.com", 443),
        lambda: __import__("socket").gethostbyname("api.ideogram.ai"),
        lambda: __import__("socket").create_connection(("93.184.216.34", 443), timeout=1),
        lambda: __import__("socket").create_connection(("10.0.0.1", 80), timeout=1),
    ],
)
def test_the_network_guard_refuses_anything_past_loopback(network_guard, attempt):
    with pytest.raises(network_guard.error):
        attempt()
    assert len(network_guard.take()) == 1


def test_the_network_guard_lets_loopback_through(bad, network_guard):
    import socket

    with socket.create_connection(("localhost", bad.port), timeout=2):
        pass
    with socket.create_connection(("127.0.0.1", bad.port), timeout=2):
        pass
    assert network_guard.take() == []


# -- 7. https: pinned to the checked address, verified against the URL's host name ---------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for api.example.test (made with the openssl tool)."""
    import subprocess

    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         "/CN=api.example.test", "-addext", "subjectAltName=DNS:api.example.test",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate) -> Iterator[BadServer]:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    with BadServer(tls=context) as server:
        yield server


@pytest.mark.parametrize(("host", "ok"), [("api.example.test", True), ("cdn.example.test", False)])
def test_https_is_pinned_and_verified_against_the_url_host(tls_server, certificate, host, ok):
    tls_server.script("/a.png", Reply(200, png()))
    calls: list[str] = []

    def resolve(name: str, port: int) -> list[str]:
        calls.append(name)
        return ["127.0.0.1"]

    f = Fetcher(Guard(frozenset({host})), resolve=resolve, ca_certs=certificate[0])
    url = f"https://{host}:{tls_server.port}/a.png"
    if ok:
        assert f.get(url, QUICK).data == png()
        assert tls_server.seen[0].headers["Host"] == f"{host}:{tls_server.port}"
    else:
        with pytest.raises(FetchError, match="cannot fetch"):
            f.get(url, QUICK)
        assert tls_server.seen == []
    assert calls == [host]
