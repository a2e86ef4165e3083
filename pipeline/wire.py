"""Wire formats: a planned request in the recipe's vocabulary -> the exact HTTP body, and back.

Four layouts exist (see ops.Layout); every field name and value spelling comes from
the official OpenAPI document. Only fields the endpoint defines are ever sent: the
API silently ignores unknown ones, which would silently drop a user's setting.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import ops, spec
from .ops import Endpoint, Layout
from .providers import Provider


@dataclass(frozen=True)
class InputImage:
    """An image to send: its bytes, and a URL a JSON-bodied provider may take instead."""

    data: bytes = field(repr=False)
    filename: str = "image.png"
    content_type: str = "image/png"
    url: str | None = None  # a still-valid http(s) URL of the same bytes, if known

    def as_reference(self) -> str:
        """A URL when one is known, else a base64 data URL (for JSON bodies)."""
        if self.url:
            return self.url
        return f"data:{self.content_type};base64," + base64.b64encode(self.data).decode()


@dataclass
class WireRequest:
    """One HTTP request body, ready to send. Auth headers are added only when sending."""

    url: str
    json: dict[str, Any] | None = None
    fields: list[tuple[str, str]] = field(default_factory=list)
    files: list[tuple[str, tuple[str, bytes, str]]] = field(default_factory=list, repr=False)

    def instance(self) -> dict[str, Any]:
        """The body as the JSON value the spec's schema describes (files as spec.BINARY)."""
        if self.json is not None:
            return _binary_placeholders(self.json)
        grouped: dict[str, list[str]] = {}
        for name, value in self.fields:
            grouped.setdefault(name, []).append(value)
        files: dict[str, list[Any]] = {}
        for name, _ in self.files:
            files.setdefault(name, []).append(spec.BINARY)
        return {"fields": grouped, "files": files}


def _binary_placeholders(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in _WIRE_IMAGE_FIELDS:
            out[key] = [spec.BINARY] * len(value) if isinstance(value, list) else spec.BINARY
        else:
            out[key] = value
    return out


_WIRE_IMAGE_FIELDS = {
    "image",
    "image_file",
    "mask",
    "style_reference_images",
    "character_reference_images",
    "character_reference_images_mask",
}


def build(
    provider: Provider,
    endpoint: Endpoint,
    model: str,
    params: Mapping[str, Any],
    seed: int | None,
    num_images: int,
    images: Mapping[str, Sequence[InputImage]],
) -> WireRequest:
    """The request body for one planned request at one provider."""
    values: dict[str, Any] = {}
    for name, value in params.items():
        if name not in endpoint.accepts:
            raise ValueError(f"{name!r} is not a field of {endpoint.path}")
        values[endpoint.wire_name(name)] = ops.wire_value(name, value, endpoint.family)
    if seed is not None and "seed" in endpoint.accepts:
        values["seed"] = seed
    if "num_images" in endpoint.accepts:
        values["num_images"] = num_images
    if endpoint.family == "legacy" and "model" in endpoint.accepts:
        values["model"] = model
    url = provider.url(endpoint.path)
    json_images = provider.body == "json-urls" or endpoint.layout is Layout.LEGACY_JSON
    if json_images:
        return WireRequest(url, json=_json_body(endpoint, values, images))
    return _multipart(url, endpoint, values, images)


def _nested(endpoint: Endpoint) -> bool:
    return endpoint.layout in (Layout.LEGACY_JSON, Layout.LEGACY_NESTED)


def _json_body(
    endpoint: Endpoint, values: dict[str, Any], images: Mapping[str, Sequence[InputImage]]
) -> dict[str, Any]:
    body: dict[str, Any] = {"image_request": values} if _nested(endpoint) else dict(values)
    for name, items in images.items():
        wire = endpoint.wire_name(name)
        refs = [img.as_reference() for img in items]
        body[wire] = refs if name in ops.LIST_IMAGE_FIELDS else refs[0]
    return body


def _multipart(
    url: str, endpoint: Endpoint, values: dict[str, Any], images: Mapping[str, Sequence[InputImage]]
) -> WireRequest:
    req = WireRequest(url)
    if _nested(endpoint):
        req.fields.append(("image_request", json.dumps(values, separators=(",", ":"))))
    else:
        for name, value in values.items():
            for item in value if isinstance(value, list) else [value]:
                req.fields.append((name, _form_text(item)))
    for name, items in images.items():
        wire = endpoint.wire_name(name)
        for img in items:
            req.files.append((wire, (img.filename, img.data, img.content_type)))
    return req


def _form_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# -- responses ----------------------------------------------------------------


@dataclass(frozen=True)
class ResultImage:
    """One item of a response's `data` list."""

    index: int
    url: str | None
    prompt: str | None
    resolution: str | None
    seed: int | None
    is_image_safe: bool
    style_type: str | None = None
    upscaled_resolution: str | None = None


@dataclass(frozen=True)
class Result:
    """A parsed response: images, or descriptions for describe."""

    images: tuple[ResultImage, ...] = ()
    descriptions: tuple[str, ...] = ()
    created: str | None = None


class BadResponse(ValueError):
    """A 200 response whose body is not what the spec describes."""


def parse(endpoint: Endpoint, body: Any) -> Result:
    """Read a response body defensively; raises BadResponse when it is unusable."""
    if not isinstance(body, Mapping):
        raise BadResponse("response is not a JSON object")
    if endpoint.op is ops.Op.DESCRIBE:
        items = body.get("descriptions")
        if not isinstance(items, list):
            raise BadResponse("describe response has no descriptions list")
        texts = tuple(str(d.get("text", "")) for d in items if isinstance(d, Mapping))
        return Result(descriptions=texts)
    data = body.get("data")
    if not isinstance(data, list):
        raise BadResponse("response has no data list")
    created = body.get("created")
    images = []
    for i, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise BadResponse(f"data[{i}] is not an object")
        url = item.get("url") if isinstance(item.get("url"), str) and item.get("url") else None
        safe = item.get("is_image_safe")
        images.append(
            ResultImage(
                index=i,
                url=url,
                prompt=_text(item.get("prompt")),
                resolution=_text(item.get("resolution")),
                seed=_seed(item.get("seed")),
                is_image_safe=safe if isinstance(safe, bool) else url is not None,
                style_type=_text(item.get("style_type")),
                upscaled_resolution=_text(item.get("upscaled_resolution")),
            )
        )
    return Result(images=tuple(images), created=_text(created))


MAX_SEED = 2**63 - 1  # what SQLite (and the journal) can hold


def _text(value: Any) -> str | None:
    """A server's value as text: scalars as they read, lists and objects as compact JSON.

    Nothing the server sent is dropped (the journal keeps it), and nothing can crash here.
    """
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def _seed(value: Any) -> int | None:
    """A seed the journal can hold: an integer (or digit string) in 0..2**63-1, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and 0 <= value <= MAX_SEED:
        return value
    return None
