"""Providers: where requests go and how they authenticate, as plain data entries.

Adding a reseller means adding an entry with `register()`: a base URL, an auth style,
the environment variable holding the key, and a body style. The built-in providers
are registered the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Literal

from .errors import InputError


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

    def auth_headers(self, key: str) -> dict[str, str]:
        """The headers that carry the key."""
        if self.auth == "bearer":
            return {"Authorization": f"Bearer {key}"}
        return {"Api-Key": key}

    def key(self, environ: dict[str, str] | None = None) -> str:
        """The API key from the environment; never printed."""
        env = os.environ if environ is None else environ
        key = env.get(self.key_env, "").strip() or (self.default_key or "")
        if not key:
            raise InputError(f"no API key: set {self.key_env} for provider {self.name!r} "
                            "(or use provider: emulator to rehearse for free)")
        return key


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
register(Provider("crazyrouter", "https://crazyrouter.com/ideogram", "bearer",
                  "CRAZYROUTER_API_KEY", body="json-urls"))
# The embedded server; its base URL is filled in when it starts on a free port.
register(Provider("emulator", "http://127.0.0.1:0", "api-key", "IDEOPIPE_EMULATOR_KEY",
                  default_key="emulator-local-key"))
