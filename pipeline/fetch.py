"""The one guarded fetch: every image URL ideopipe downloads (inputs and results) goes here.

A URL is fetched only when it is http(s) and its host resolves to public addresses; the
name is resolved once and the connection is pinned to the checked address (the Host
header and TLS name stay the URL's), so a second, different DNS answer cannot redirect
it. Every redirect hop is checked again. The provider's own base-URL host is the one
exception, so a loopback emulator keeps working. The whole exchange, redirects and
retries included, ends by one deadline, and the size limit counts decoded bytes.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3

from .errors import DownloadError, DownloadExpired
from .transport import (
    BodyBroken,
    BodyTooLarge,
    Deadline,
    Timeouts,
    TimeUp,
    WatchedHTTPPool,
    WatchedHTTPSPool,
    bounded,
    read_body,
)

REDIRECTS = (301, 302, 303, 307, 308)
Resolver = Callable[[str, int], list[str]]


class FetchError(DownloadError):
    """A URL could not be fetched; the message says why."""


class FetchRefused(FetchError):
    """The guard refused a URL or a redirect hop (scheme, private address, credentials)."""


class FetchExpired(FetchError, DownloadExpired):
    """The URL answered 403 / 404 / 410: what it pointed at is gone."""


class FetchTimeout(FetchError):
    """The exchange did not end within its total deadline."""


class FetchTooLarge(FetchError):
    """The body is over the size limit (counted after decoding)."""


def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Guard:
    """Which URLs may be fetched: public hosts, plus the provider's own trusted hosts."""

    trusted_hosts: frozenset[str] = frozenset()
    allow_private: bool = False
    max_redirects: int = 5

    @classmethod
    def for_base_url(cls, base_url: str | None, allow_private: bool = False) -> Guard:
        """A guard that also trusts the host of the provider's base URL."""
        host = urlsplit(base_url).hostname if base_url else None
        return cls(frozenset([host.lower()]) if host else frozenset(), allow_private)


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (the pinned address) and what to ask for."""

    scheme: str
    host: str
    port: int
    address: str
    path: str
    host_header: str


@dataclass(frozen=True)
class Fetched:
    """A fetched body: decoded bytes, the Content-Type the server claimed, the final URL."""

    data: bytes
    content_type: str
    url: str


def check(url: str, guard: Guard, resolve: Resolver = system_resolve) -> Target:
    """Check a URL against the guard and resolve it once; raises FetchRefused."""
    shown = url[:100]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchRefused(f"{shown!r}: only http(s) URLs are fetched, not {parts.scheme or 'no'} scheme")
    if parts.username is not None or parts.password is not None:
        raise FetchRefused(f"{parts.hostname}: URLs with credentials are not fetched")
    host = (parts.hostname or "").lower()
    if not host:
        raise FetchRefused(f"{shown!r}: the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise FetchRefused(f"{shown!r}: the port is not a number in 1-65535") from exc
    literal = literal_address(host)
    if literal is None and "%" in host:
        raise FetchRefused(f"{shown!r}: scoped addresses are not fetched")
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = resolve(host, port)
        except OSError as exc:
            raise FetchError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
        if not addresses:
            raise FetchError(f"cannot resolve {host}: no address")
    if host not in guard.trusted_hosts and not guard.allow_private:
        for address in addresses:
            if not is_public(address):
                raise FetchRefused(
                    f"{host} is {address}, not a public address (private or "
                    "link-local, loopback, reserved or multicast); set "
                    "allow_private_urls: true to allow it"
                )
    default = 443 if parts.scheme == "https" else 80
    bracketed = f"[{host}]" if ":" in host else host
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(
        parts.scheme, host, port, addresses[0], path, bracketed if port == default else f"{bracketed}:{port}"
    )


def is_public(address: str) -> bool:
    """True for a globally routable unicast address; an IPv6 form carrying IPv4 is judged by its IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = embedded_ipv4(ip)
        if embedded:
            return all(is_public(str(v4)) for v4 in embedded)
    return ip.is_global and not ip.is_multicast


#: IPv6 prefixes whose last 32 bits are an IPv4 address a gateway or the host reaches
_LAST_32 = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "::ffff:0:0/96",  # IPv4-mapped
        "::ffff:0:0:0/96",  # IPv4-translated (RFC 2765)
        "::/96",  # IPv4-compatible (deprecated)
        "64:ff9b::/96",  # NAT64, well-known prefix (RFC 6052)
        "64:ff9b:1::/48",  # NAT64, local-use prefix (RFC 8215), in the /96 layout DNS64 uses
    )
)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address carries (mapped, translated, compatible, NAT64, 6to4, Teredo)."""
    if any(ip in net for net in _LAST_32):
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)  # the Teredo server and the client
    return []


def literal_address(host: str) -> str | None:
    """An address written in the URL itself, including the legacy IPv4 forms resolvers accept.

    '167772165', '0x0a000005', '10.1' and '012.0.0.5' all mean an IPv4 address.
    """
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if host[:1].isdigit() and all(c in "0123456789abcdefx." for c in host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return None
    return None


class Fetcher:
    """Fetches URLs through the guard, over pooled connections pinned to checked addresses."""

    def __init__(
        self,
        guard: Guard | None = None,
        *,
        resolve: Resolver = system_resolve,
        pool_size: int = 8,
        ca_certs: str | None = None,
    ):
        self.guard = guard or Guard()
        self.resolve = resolve
        self.pool_size = pool_size
        self.ca_certs = ca_certs  # a CA bundle to trust instead of certifi's (a company CA)
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Fetcher({self.guard!r})"

    def get(
        self,
        url: str,
        timeouts: Timeouts | None = None,
        max_bytes: int = 64 << 20,
        deadline: Deadline | None = None,
        accept: str = "image/*",
    ) -> Fetched:
        """GET a URL's body, following checked redirects, within one total deadline."""
        timeouts = timeouts or Timeouts()
        deadline = deadline or Deadline(timeouts.total)
        with bounded(deadline) as scope:
            for _ in range(self.guard.max_redirects + 1):
                target = check(url, self.guard, self.resolve)
                resp = self._open(target, timeouts, deadline, accept)
                whole = False
                try:
                    location = resp.headers.get("Location")
                    if resp.status in REDIRECTS and location:
                        url = urljoin(url, location)
                        continue
                    data = self._body(target, resp, deadline, max_bytes)
                    if scope.fired:  # a socket was cut at the deadline: the body may be partial
                        raise FetchTimeout(f"{target.host}: no whole answer within {deadline.seconds:g} s")
                    whole = True
                    return Fetched(data, resp.headers.get("Content-Type", ""), url)
                finally:
                    if not whole:  # unread bytes would poison a reused connection
                        resp.close()
                    resp.release_conn()
        raise FetchError(f"{target.host}: more than {self.guard.max_redirects} redirects")

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    def _body(
        self, target: Target, resp: urllib3.BaseHTTPResponse, deadline: Deadline, max_bytes: int
    ) -> bytes:
        if resp.status in (403, 404, 410):
            raise FetchExpired(f"{target.host} answered {resp.status}: the URL has expired")
        if resp.status != 200:
            raise FetchError(f"{target.host} answered {resp.status}")
        encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
        length = resp.headers.get("Content-Length", "")
        if encoding == "identity" and length.isdigit() and int(length) > max_bytes:
            raise FetchTooLarge(f"{target.host}: the body is {int(length):,} bytes (limit {max_bytes:,})")
        try:
            return read_body(resp, deadline, max_bytes)
        except BodyTooLarge as exc:
            raise FetchTooLarge(f"{target.host}: {exc} (after decoding)") from exc
        except TimeUp as exc:
            raise FetchTimeout(f"{target.host}: no whole answer within {deadline.seconds:g} s") from exc
        except BodyBroken as exc:
            raise FetchError(f"{target.host}: {exc}") from exc

    def _open(
        self, target: Target, timeouts: Timeouts, deadline: Deadline, accept: str
    ) -> urllib3.BaseHTTPResponse:
        headers = {
            "Host": target.host_header,
            "User-Agent": "ideopipe",
            "Accept": accept,
            "Accept-Encoding": "gzip, deflate",
        }
        timeout = urllib3.Timeout(connect=deadline.cap(timeouts.connect), read=deadline.cap(timeouts.read))
        try:
            return self._pool(target).urlopen(
                "GET",
                target.path,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=True,
                assert_same_host=False,
                release_conn=False,
                timeout=timeout,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if deadline.expired():
                raise FetchTimeout(f"{target.host}: no answer within {deadline.seconds:g} s") from exc
            raise FetchError(f"cannot fetch from {target.host}: {type(exc).__name__}") from exc

    def _pool(self, target: Target) -> urllib3.HTTPConnectionPool:
        key = (target.scheme, target.address, target.port, target.host)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                if len(self._pools) >= 64:
                    self._pools.pop(next(iter(self._pools))).close()
                pool = self._pools[key] = _new_pool(target, self.pool_size, self.ca_certs)
            return pool


def _new_pool(target: Target, size: int, ca_certs: str | None = None) -> urllib3.HTTPConnectionPool:
    """A pool that connects to the checked address but speaks to (and verifies) the host name."""
    if target.scheme == "http":
        return WatchedHTTPPool(target.address, target.port, maxsize=size, block=False, retries=False)
    import certifi

    return WatchedHTTPSPool(
        target.address,
        target.port,
        maxsize=size,
        block=False,
        retries=False,
        server_hostname=target.host,
        assert_hostname=target.host,
        cert_reqs="CERT_REQUIRED",
        ca_certs=ca_certs or certifi.where(),
    )
