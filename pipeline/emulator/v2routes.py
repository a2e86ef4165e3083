"""The v2 operations the emulator serves, read from the shipped v2 document.

Every POST path of the document is an operation `/v2/{content}/{action}/{model}`; what
the emulator needs to know about each (sync or async, which fields name the source image,
the mask and the references) is derived here from the path and the spec, never listed by hand.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from . import v2spec
from .reject import Reject

# Asset-identifier fields and the file field each one stands in for.
ASSET_FIELDS = {
    "image_asset_identifier": "image",
    "image_asset_identifiers": "images",
    "mask_asset_identifier": "mask",
    "reference_image_asset_identifiers": "reference_images",
    "style_reference_asset_identifiers": "style_reference_images",
    "character_reference_asset_identifiers": "character_reference_images",
}
# Operations that work on a source image (a file or an asset reference is required).
SOURCE_OPS = frozenset(
    {
        "remix",
        "inpaint",
        "precise-edit",
        "reframe",
        "replace-background",
        "remove-background",
        "upscale",
        "describe",
        "layerize",
    }
)


@dataclass(frozen=True)
class V2Endpoint:
    """One v2 operation: its path, action (the op) and model segment."""

    path: str
    action: str
    model: str

    @property
    def product(self) -> str:
        """The path without '/v2/': the key of the price table."""
        return self.path.removeprefix("/v2/")

    @property
    def async_mode(self) -> str:
        """'only' (always answers a generation_id), 'none' (never) or 'opt' (`async: true`)."""
        if self.action == "replace-background":
            return "only"
        if self.action == "describe":
            return "none"
        return "opt"

    @property
    def dry_run(self) -> bool:
        """Whether the operation declares the dry_run query parameter."""
        return v2spec.has_dry_run(self.path)

    @property
    def source_field(self) -> str:
        """The file field holding the image to work on ('images' for 4.5 generate)."""
        return "images" if self.action == "generate" else "image"

    @property
    def polled_kind(self) -> str:
        """The object_type its items carry when polled."""
        if self.action == "layerize":
            return "layerized_image"
        if self.action in ("reframe", "remove-background", "upscale"):
            return "image.without-prompt-or-seed"
        return "image.generation"


@functools.cache
def endpoints() -> dict[str, V2Endpoint]:
    """Every POST operation of the v2 document, by path."""
    out = {}
    for path in v2spec.post_paths():
        _, _, _content, action, model = path.split("/")
        out[path] = V2Endpoint(path, action, model)
    return out


def match(path: str) -> V2Endpoint:
    """The operation a request path names, or a 404 Reject."""
    endpoint = endpoints().get(path.split("?", 1)[0])
    if endpoint is None:
        raise Reject(404, f"no such endpoint: POST {path.split('?', 1)[0]}", reason="not_found")
    return endpoint
