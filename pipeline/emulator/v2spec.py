"""Ideogram's v2 OpenAPI document (schemas/ideogram-v2-openapi.json) as strict JSON Schemas.

The document ships in the wheel beside the v1/v3 one and is found the same way
(pipeline.spec.schema_file). Request schemas are made strict: refs resolved, single-part
allOf merged, OpenAPI's `nullable` and boolean `exclusiveMinimum` translated, and every
object closed to unknown properties, so the emulator refuses what the real API would not
document. Response schemas are left open where the spec's own examples break them (the
polling `oneOf` whose example items carry no `object_type`).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from typing import Any

from pipeline import spec

DOCUMENT = "ideogram-v2-openapi.json"
_DROP = (
    "description",
    "example",
    "externalDocs",
    "title",
    "discriminator",
    "x-tool-description",
    "x-playground-field",
    "x-tool-constraints",
    "x-drop-nulls",
    "x-omit-if-null",
)


@functools.cache
def openapi() -> dict[str, Any]:
    """The parsed v2 OpenAPI document."""
    with open(spec.schema_file(DOCUMENT), encoding="utf-8") as f:
        document: dict[str, Any] = json.load(f)
    return document


def component(name: str) -> dict[str, Any]:
    """A component schema by name, as written in the document."""
    return dict(openapi()["components"]["schemas"][name])


def enum(name: str) -> list[Any]:
    """The enum values of a component schema (e.g. 'ResolutionV4')."""
    return list(component(name)["enum"])


def _resolve(node: Any) -> Any:
    while isinstance(node, Mapping) and "$ref" in node:
        node = openapi()["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def strict(node: Any, closed: bool = True) -> Any:
    """`node` as a Draft 7 schema; `closed` forbids properties the document does not list."""
    node = copy.deepcopy(_resolve(node))
    if not isinstance(node, dict):
        return node
    if "allOf" in node:
        parts = [strict(p, closed) for p in node.pop("allOf")]
        merged: dict[str, Any] = {}
        for part in parts:
            props = {**merged.get("properties", {}), **part.get("properties", {})}
            required = sorted(set(merged.get("required", [])) | set(part.get("required", [])))
            merged.update(part)
            if props:
                merged["properties"], merged["required"] = props, required
        sibling = {k: v for k, v in node.items() if k not in _DROP}
        node = {**merged, **sibling}
    for key in _DROP:
        node.pop(key, None)
    if node.get("exclusiveMinimum") is True and "minimum" in node:
        node["exclusiveMinimum"] = node.pop("minimum")
    if node.pop("nullable", False):
        if "type" in node:
            node["type"] = [node["type"], "null"]
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
    if "properties" in node:
        node["properties"] = {k: strict(v, closed) for k, v in node["properties"].items()}
        if closed:
            node.setdefault("additionalProperties", False)
    if "items" in node:
        node["items"] = strict(node["items"], closed)
    for key in ("oneOf", "anyOf"):
        if key in node:
            node[key] = [strict(p, closed) for p in node[key]]
    return node


def operation(path: str, method: str = "post") -> dict[str, Any]:
    """The operation object of `method path`; KeyError if the document has none."""
    return dict(openapi()["paths"][path][method])


def post_paths() -> list[str]:
    """Every path with a POST operation."""
    return sorted(p for p, item in openapi()["paths"].items() if "post" in item)


def content_types(path: str) -> list[str]:
    """The request content types the document allows for POST `path`."""
    return list(operation(path)["requestBody"]["content"])


@functools.cache
def request_schema(path: str, content_type: str) -> dict[str, Any]:
    """The strict schema of a POST `path` body sent as `content_type`."""
    content = operation(path)["requestBody"]["content"][content_type]
    schema: dict[str, Any] = strict(content["schema"])
    return schema


def json_parts(path: str) -> frozenset[str]:
    """Multipart parts the document encodes as application/json (asset identifiers, palettes)."""
    content = operation(path)["requestBody"]["content"].get("multipart/form-data", {})
    return frozenset(
        name
        for name, enc in content.get("encoding", {}).items()
        if enc.get("contentType") == "application/json"
    )


def has_dry_run(path: str) -> bool:
    """Whether POST `path` declares the dry_run query parameter."""
    return any(p.get("name") == "dry_run" for p in operation(path).get("parameters", []))


def response_schema(path: str, status: str = "200", method: str = "post") -> dict[str, Any]:
    """A strict schema of a JSON response body (object shapes closed, as the spec writes them)."""
    content = operation(path, method)["responses"][status]["content"]
    schema: dict[str, Any] = strict(content["application/json"]["schema"])
    return schema


def component_schema(name: str) -> dict[str, Any]:
    """A component schema made strict, e.g. 'PriceQuote' or 'GenerationErrorResponse'."""
    schema: dict[str, Any] = strict({"$ref": f"#/components/schemas/{name}"})
    return schema


def polled_item_schema() -> dict[str, Any]:
    """The schema a polled image item must meet: ImageGenerationObject (object_type optional).

    The spec's prose says items without object_type are images, and its example has none,
    so the oneOf of GenerationResponse_data_inner is checked leniently, by this one shape.
    """
    return component_schema("ImageGenerationObject")
