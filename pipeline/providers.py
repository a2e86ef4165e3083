"""Providers: where requests go and how they authenticate, as plain data entries.

Adding a reseller means adding an entry with `register()`: a base URL, an auth style,
the environment variable holding the key, and a body style. The built-in providers
are registered the same way.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urlsplit

from .errors import InputError

MIN_FRAGMENT = 8  # any run of this many characters of the key counts as the key


class ApiKey:
    """An API key: checked once, shown nowhere (repr and str hide it), and able to redact itself."""

    __slots__ = ("_grams", "_value")

    def __init__(self, value: str, source: str = "the API key"):
        why = malformed(value)
        if why:
            raise InputError(
                f"{source} is malformed ({why}); a key is printable ASCII with no "
                "spaces: check for a stray newline, quote or pasted character"
            )
        self._value = value
        n = MIN_FRAGMENT
        self._grams = frozenset(value[i : i + n] for i in range(len(value) - n + 1))

    def __repr__(self) -> str:
        return "ApiKey(***)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an ApiKey cannot be pickled")

    def reveal(self) -> str:
        """The key itself, for the one header that carries it."""
        return self._value

    def redact(self, text: str) -> str:
        """`text` with the key, and every run of 8 or more of its characters, replaced by ***.

        Short keys (under 8 characters; not real keys) are replaced only where whole.
        """
        if len(self._value) < MIN_FRAGMENT:
            return text.replace(self._value, "***") if len(self._value) >= 4 else text
        n = MIN_FRAGMENT
        hidden = [False] * len(text)
        found = False
        for i in range(len(text) - n + 1):
            if text[i : i + n] in self._grams:
                hidden[i : i + n] = [True] * n
                found = True
        if not found:
            return text
        out: list[str] = []
        for i, ch in enumerate(text):
            if not hidden[i]:
                out.append(ch)
            elif i == 0 or not hidden[i - 1]:
                out.append("***")
        return "".join(out)


def malformed(key: str) -> str | None:
    """Why a key cannot be sent in a header (names the position, never the key), or None."""
    for i, ch in enumerate(key):
        if ord(ch) > 126:
            return f"a non-ASCII character at position {i + 1}"
        if ch.isspace():
            return f"whitespace at position {i + 1}"
        if ord(ch) < 32 or ord(ch) == 127:
            return f"a control character at position {i + 1}"
    return None


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback addresses (no name is looked up)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Provider:
    """One endpoint family reseller: base URL, auth style, key source, body style."""

    name: str
    base_url: str
    auth: Literal["api-key", "bearer"] = "api-key"
    key_env: str = "IDEOGRAM_API_KEY"
    # multipart: the spec's own bodies. json-urls: JSON bodies in which input images are
    # URLs or base64 strings (crazyrouter documents this form for every endpoint).
    body: Literal["multipart", "json-urls"] = "multipart"
    paths: dict[str, str] = field(default_factory=dict)  # endpoint path -> provider path
    default_key: str | None = None  # only the emulator has one

    def url(self, endpoint_path: str) -> str:
        """The full URL of an endpoint at this provider."""
        return self.base_url.rstrip("/") + self.paths.get(endpoint_path, endpoint_path)

    def auth_headers(self, key: ApiKey | str) -> dict[str, str]:
        """The headers that carry the key."""
        value = key.reveal() if isinstance(key, ApiKey) else key
        if self.auth == "bearer":
            return {"Authorization": f"Bearer {value}"}
        return {"Api-Key": value}

    def key(self, environ: Mapping[str, str] | None = None) -> ApiKey:
        """The API key from the environment, checked; it never prints."""
        env = os.environ if environ is None else environ
        key = env.get(self.key_env, "").strip() or (self.default_key or "")
        if not key:
            raise InputError(
                f"no API key: set {self.key_env} for provider {self.name!r} "
                "(or rehearse for free with --provider emulator)"
            )
        return ApiKey(key, self.key_env)

    def origin(self) -> tuple[str, str, int]:
        """(scheme, host, port) of the base URL: the only place the key is ever sent."""
        return origin(self.base_url)

    def check_transport(self, allow_http: bool = False) -> None:
        """Refuse a base URL that would carry the key badly: not http(s), credentials, or
        plain http to a host that is not loopback (unless allow_http)."""
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"provider {self.name!r}: base URL must be http(s)://host[:port]")
        if parts.username is not None or parts.password is not None:
            raise InputError(f"provider {self.name!r}: base URL must not hold credentials")
        if parts.scheme == "http" and not allow_http and not is_loopback_host(parts.hostname):
            raise InputError(
                f"provider {self.name!r}: plain http to {parts.hostname} would send "
                "the key unencrypted; use https, or pass --allow-http"
            )


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, lower-cased host, port) of a URL; port defaults by scheme."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), port or default


PROVIDERS: dict[str, Provider] = {}


def register(provider: Provider) -> Provider:
    """Add or replace a provider entry."""
    PROVIDERS[provider.name] = provider
    return provider


def get(name: str, base_url: str | None = None) -> Provider:
    """A provider by name, with its base URL optionally overridden."""
    if name not in PROVIDERS:
        raise InputError(f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}")
    provider = PROVIDERS[name]
    base_url = base_url or os.environ.get("IDEOPIPE_BASE_URL") or None
    return replace(provider, base_url=base_url) if base_url else provider


register(Provider("ideogram", "https://api.ideogram.ai", "api-key", "IDEOGRAM_API_KEY"))
register(Provider("aihubmix", "https://aihubmix.com/ideogram", "api-key", "AIHUBMIX_API_KEY"))
register(
    Provider(
        "crazyrouter", "https://crazyrouter.com/ideogram", "bearer", "CRAZYROUTER_API_KEY", body="json-urls"
    )
)
# The embedded server; its base URL is filled in when it starts on a free port.
register(
    Provider(
        "emulator", "http://127.0.0.1:0", "api-key", "IDEOPIPE_EMULATOR_KEY", default_key="emulator-local-key"
    )
)
