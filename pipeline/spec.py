"""Ideogram's official OpenAPI document, as strict JSON Schemas for requests and responses.

The document ships in the package (schemas/ideogram-openapi.json, from the MIT-licensed
tryAGI/Ideogram repository). The wire adapters, the emulator and the contract tests all
check bodies against it, so the three can never drift apart.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

BINARY = "<binary>"


def schema_file(name: str) -> Path:
    """Path of a file from schemas/, in a wheel (pipeline/schemas) or a source checkout."""
    packaged = Path(str(resources.files("pipeline"))) / "schemas" / name
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parent.parent / "schemas" / name


@functools.cache
def openapi() -> dict[str, Any]:
    """The parsed OpenAPI document."""
    with open(schema_file("ideogram-openapi.json"), encoding="utf-8") as f:
        document: dict[str, Any] = json.load(f)
    return document


def enum(name: str) -> list[str]:
    """The enum values of a component schema (e.g. 'AspectRatioV3')."""
    return list(openapi()["components"]["schemas"][name]["enum"])


def _resolve(node: Any) -> Any:
    if isinstance(node, Mapping) and "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _resolve(openapi()["components"]["schemas"][name])
    return node


def _strict(node: Any) -> Any:
    """Resolve refs, merge allOf, translate `nullable`, and forbid unknown properties."""
    node = copy.deepcopy(_resolve(node))
    if not isinstance(node, dict):
        return node
    if "allOf" in node:
        parts = [_strict(p) for p in node.pop("allOf")]
        props: dict[str, Any] = {}
        required: list[str] = []
        for part in parts:
            props.update(part.get("properties", {}))
            required += part.get("required", [])
        props.update(node.get("properties", {}))
        node["properties"] = props
        node["required"] = sorted(set(required) | set(node.get("required", [])))
        node.setdefault("type", "object")
    for key in ("description", "example", "externalDocs", "title", "discriminator"):
        node.pop(key, None)
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    if "properties" in node:
        node["properties"] = {k: _strict(v) for k, v in node["properties"].items()}
        node.setdefault("additionalProperties", False)
    if "items" in node:
        node["items"] = _strict(node["items"])
    for key in ("oneOf", "anyOf"):
        if key in node:
            node[key] = [_strict(p) for p in node[key]]
    return node


def _operation(path: str) -> dict[str, Any]:
    operation: dict[str, Any] = openapi()["paths"][path]["post"]
    return operation


@functools.cache
def request_schema(path: str, content_type: str = "multipart/form-data") -> dict[str, Any]:
    """The strict schema of a request body for `path` (e.g. '/v1/ideogram-v3/remix')."""
    content = _operation(path)["requestBody"]["content"]
    schema: dict[str, Any] = _strict(content[content_type]["schema"])
    return schema


@functools.cache
def response_schema(path: str, status: str = "200") -> dict[str, Any]:
    """The strict schema of a JSON response body for `path`."""
    content = _operation(path)["responses"][status]["content"]
    schema: dict[str, Any] = _strict(content["application/json"]["schema"])
    return schema


def content_types(path: str) -> list[str]:
    """The request content types the spec allows for `path`."""
    return list(_operation(path)["requestBody"]["content"])


def validate(instance: Any, schema: Mapping[str, Any]) -> list[str]:
    """Every violation of `schema` by `instance`, as 'field.path: message' lines."""
    validator = jsonschema.Draft7Validator(schema)
    out = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(p) for p in err.absolute_path) or "(body)"
        out.append(f"{where}: {err.message}")
    return out


def form_to_instance(
    schema: Mapping[str, Any],
    fields: Mapping[str, list[str]],
    files: Mapping[str, list[Any]],
) -> dict[str, Any]:
    """Turn a multipart body into the JSON value the spec's schema describes.

    Text parts are typed by the schema (integers parsed, JSON objects decoded); file
    parts become the placeholder BINARY. A part the schema does not define is kept as
    a string so that validation reports it as an unknown field.
    """
    props = schema.get("properties", {})
    out: dict[str, Any] = {}
    for name, values in fields.items():
        prop = props.get(name, {})
        converted = [
            _typed(v, prop.get("items", {}) if prop.get("type") == "array" else prop) for v in values
        ]
        out[name] = converted if prop.get("type") == "array" else converted[-1]
    for name, parts in files.items():
        prop = props.get(name, {})
        out[name] = [BINARY] * len(parts) if prop.get("type") == "array" else BINARY
    return out


def _typed(value: str, prop: Mapping[str, Any]) -> Any:
    kind = prop.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean":
            return {"true": True, "false": False}.get(value.lower(), value)
        if kind == "object" or "oneOf" in prop:
            return json.loads(value)
    except ValueError:
        return value
    return value


# -- rules the spec states only in prose ------------------------------------------------
# Each is quoted from a description in the OpenAPI document; the schemas themselves do
# not encode them, so a request breaking one is valid JSON that the API refuses or
# silently ignores.

#: ColorPaletteWithPresetNameOrMembers: "Not supported by V_1, V_1_TURBO, V_2A and V_2A_TURBO".
PALETTE_REFUSED_BY = ("V_1", "V_1_TURBO", "V_2A", "V_2A_TURBO")
#: ImageRequest.negative_prompt: "Only available for model versions V_1, V_1_TURBO, V_2 and V_2_TURBO".
NEGATIVE_PROMPT_MODELS = ("V_1", "V_1_TURBO", "V_2", "V_2_TURBO")
#: Resolution (legacy): "For model_version for 2.0 only, cannot be used in conjunction with
#: aspect_ratio". Ideogram 3.0's ResolutionV3 has no such limit.
RESOLUTION_MODELS = ("V_2", "V_2_TURBO")
#: character_reference_images: "currently only supports 1 character reference image".
MAX_CHARACTER_REFERENCES = 1


def prose_problems(family: str, model: str, fields: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(field, what is wrong, what to do) for each prose-only rule that `fields` break.

    `fields` are a request's parameters in the recipe's vocabulary (values may still be
    templates); `family` is 'v3' or 'legacy' and `model` the model the step uses.
    """
    out = []
    legacy = family == "legacy"
    if legacy and "color_palette" in fields and model in PALETTE_REFUSED_BY:
        out.append(
            (
                "color_palette",
                f"color_palette is not supported by {model}",
                "the spec accepts it with V_2, V_2_TURBO and V_3",
            )
        )
    if legacy and "negative_prompt" in fields and model not in NEGATIVE_PROMPT_MODELS:
        out.append(
            (
                "negative_prompt",
                f"negative_prompt is not available for {model}",
                "the spec accepts it with V_1, V_1_TURBO, V_2, V_2_TURBO and V_3",
            )
        )
    if legacy and "resolution" in fields and model not in RESOLUTION_MODELS:
        out.append(
            (
                "resolution",
                f"resolution is for model version 2.0 only, not {model}",
                "use model V_2 or V_2_TURBO (or V_3), or aspect_ratio",
            )
        )
    if "style_codes" in fields:
        for other in ("style_type", "style_reference_images"):
            if other in fields:
                out.append(("style_codes", f"style_codes cannot be used with {other}", "keep one of the two"))
    refs = fields.get("character_reference_images")
    count = len(refs) if isinstance(refs, list) else int(refs is not None)
    if count > MAX_CHARACTER_REFERENCES:
        out.append(
            (
                "character_reference_images",
                f"{count} character reference images; the API supports {MAX_CHARACTER_REFERENCES}",
                "keep one",
            )
        )
    return out
