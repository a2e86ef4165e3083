"""Which paths each flavor serves, how it authenticates, and what each endpoint is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .reject import Reject


class Headers(Protocol):
    """Case-insensitive header lookup, as http.server's message objects provide."""

    def get(self, name: str, failobj: Any = None) -> Any: ...


@dataclass(frozen=True)
class Endpoint:
    """One Ideogram operation, named by its path in the OpenAPI document."""

    path: str
    family: str  # "v3" or "legacy"
    op: str  # generate, remix, edit, reframe, replace-background, upscale, describe
    nested: bool = False  # legacy generate/remix/upscale keep their fields in image_request

    @property
    def magic_field(self) -> str:
        """The name of the Magic Prompt field in this family."""
        return "magic_prompt" if self.family == "v3" else "magic_prompt_option"


ENDPOINTS: dict[str, Endpoint] = {
    e.path: e
    for e in (
        Endpoint("/v1/ideogram-v3/generate", "v3", "generate"),
        Endpoint("/v1/ideogram-v3/remix", "v3", "remix"),
        Endpoint("/v1/ideogram-v3/edit", "v3", "edit"),
        Endpoint("/v1/ideogram-v3/reframe", "v3", "reframe"),
        Endpoint("/v1/ideogram-v3/replace-background", "v3", "replace-background"),
        Endpoint("/generate", "legacy", "generate", nested=True),
        Endpoint("/remix", "legacy", "remix", nested=True),
        Endpoint("/upscale", "legacy", "upscale", nested=True),
        # The aihubmix document posts edits to /ideogram/eidt, a typo: only /edit is served.
        Endpoint("/edit", "legacy", "edit"),
        Endpoint("/reframe", "legacy", "reframe"),
        Endpoint("/describe", "legacy", "describe"),
    )
}


@dataclass(frozen=True)
class Flavor:
    """How one provider exposes the API: a path prefix and an auth scheme."""

    name: str
    prefix: str
    bearer: bool  # Authorization: Bearer <key>, else Api-Key: <key>
    json_images: bool  # accepts JSON bodies whose image fields are URLs or base64


FLAVORS: dict[str, Flavor] = {
    f.name: f
    for f in (
        Flavor("ideogram", "", bearer=False, json_images=False),
        Flavor("aihubmix", "/ideogram", bearer=False, json_images=False),
        Flavor("crazyrouter", "/ideogram", bearer=True, json_images=True),
        # Ideogram's current API: served by service_v2.V2Service, not by match() below.
        Flavor("ideogram-v2", "", bearer=False, json_images=False),
    )
}


def match(flavor: Flavor, path: str) -> Endpoint:
    """The endpoint a request path names under `flavor`, or a 404 Reject."""
    path = path.split("?", 1)[0]
    if path.startswith(flavor.prefix):
        endpoint = ENDPOINTS.get(path[len(flavor.prefix) :])
        if endpoint is not None:
            return endpoint
    raise Reject(404, f"no such endpoint: POST {path}", reason="not_found")


def check_auth(flavor: Flavor, headers: Headers) -> None:
    """Raise a 401 Reject unless the headers carry a non-empty key in the flavor's scheme."""
    if flavor.bearer:
        scheme, _, key = (headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Reject(401, "unauthorized: send 'Authorization: Bearer <key>'", reason="auth")
    elif not (headers.get("Api-Key") or "").strip():
        raise Reject(401, "unauthorized: send an 'Api-Key: <key>' header", reason="auth")
