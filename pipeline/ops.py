"""The recipe's one vocabulary of ops and parameters, checked against the official spec.

A recipe says `magic_prompt`, `aspect_ratio: 16x9` and `image:` whatever the model.
Each (op, family) pair names its endpoint and how recipe names map to wire names;
which parameters an op accepts, and which values are legal, is read from the
OpenAPI document itself, so the recipe can never accept a field the API ignores.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass
from typing import Any

from . import spec


class Op(str, enum.Enum):
    """What a step does."""

    GENERATE = "generate"
    REMIX = "remix"
    EDIT = "edit"
    UPSCALE = "upscale"
    DESCRIBE = "describe"
    REFRAME = "reframe"
    REPLACE_BACKGROUND = "replace-background"


class Layout(str, enum.Enum):
    """How a request body is laid out on the wire."""

    V3 = "v3"  # multipart, flat fields, image parts `image` / `mask` / ...
    LEGACY_JSON = "legacy-json"  # JSON {"image_request": {...}}
    LEGACY_NESTED = "legacy-nested"  # multipart: image_request (JSON string) + image_file
    LEGACY_FLAT = "legacy-flat"  # multipart, flat fields + image_file (+ mask)


V3_MODELS = ("V_3",)
LEGACY_MODELS = ("V_1", "V_1_TURBO", "V_2", "V_2_TURBO", "V_2A", "V_2A_TURBO")
MODELS = V3_MODELS + LEGACY_MODELS
DEFAULT_MODEL = "V_3"

IMAGE_FIELDS = (
    "image",
    "mask",
    "style_reference_images",
    "character_reference_images",
    "character_reference_images_mask",
)
LIST_IMAGE_FIELDS = frozenset(IMAGE_FIELDS[2:])


@dataclass(frozen=True)
class Endpoint:
    """One API endpoint for an (op, family) pair."""

    op: Op
    family: str  # "v3" | "legacy"
    path: str
    layout: Layout
    needs_image: bool
    needs_mask: bool = False
    yields_images: bool = True

    @property
    def content_type(self) -> str:
        """The request content type the spec names for this endpoint."""
        return "application/json" if self.layout is Layout.LEGACY_JSON else "multipart/form-data"

    def wire_name(self, name: str) -> str:
        """Recipe parameter name -> this endpoint's field name."""
        if self.family == "legacy":
            return {"magic_prompt": "magic_prompt_option", "image": "image_file"}.get(name, name)
        return name

    @functools.cached_property
    def properties(self) -> dict[str, Any]:
        """Wire field -> its strict JSON Schema, merged across image_request nesting."""
        schema = spec.request_schema(self.path, self.content_type)
        props = dict(schema.get("properties", {}))
        nested = props.pop("image_request", None)
        if nested:
            props.update(nested.get("properties", {}))
        return props

    @functools.cached_property
    def required(self) -> frozenset[str]:
        """Wire fields the spec requires."""
        schema = spec.request_schema(self.path, self.content_type)
        req = set(schema.get("required", []))
        nested = schema.get("properties", {}).get("image_request")
        if nested:
            req.discard("image_request")
            req |= set(nested.get("required", []))
        return frozenset(req)

    @functools.cached_property
    def accepts(self) -> frozenset[str]:
        """Recipe parameter names this endpoint takes (model only where it is sent)."""
        names = {n for n in RECIPE_PARAMS if self.wire_name(n) in self.properties}
        return frozenset(names)


_V3 = "/v1/ideogram-v3/"

ENDPOINTS: dict[tuple[Op, str], Endpoint] = {
    (e.op, e.family): e
    for e in [
        Endpoint(Op.GENERATE, "v3", _V3 + "generate", Layout.V3, needs_image=False),
        Endpoint(Op.REMIX, "v3", _V3 + "remix", Layout.V3, needs_image=True),
        Endpoint(Op.EDIT, "v3", _V3 + "edit", Layout.V3, needs_image=True, needs_mask=True),
        Endpoint(Op.REFRAME, "v3", _V3 + "reframe", Layout.V3, needs_image=True),
        Endpoint(Op.REPLACE_BACKGROUND, "v3", _V3 + "replace-background", Layout.V3, needs_image=True),
        Endpoint(Op.GENERATE, "legacy", "/generate", Layout.LEGACY_JSON, needs_image=False),
        Endpoint(Op.REMIX, "legacy", "/remix", Layout.LEGACY_NESTED, needs_image=True),
        Endpoint(Op.UPSCALE, "legacy", "/upscale", Layout.LEGACY_NESTED, needs_image=True),
        Endpoint(Op.EDIT, "legacy", "/edit", Layout.LEGACY_FLAT, needs_image=True, needs_mask=True),
        Endpoint(Op.REFRAME, "legacy", "/reframe", Layout.LEGACY_FLAT, needs_image=True),
        Endpoint(
            Op.DESCRIBE, "legacy", "/describe", Layout.LEGACY_FLAT, needs_image=True, yields_images=False
        ),
    ]
}

# Ops with a single endpoint whatever the model; `model` only routes, it is not sent.
MODEL_FREE = {Op.UPSCALE, Op.DESCRIBE}
LEGACY_EDIT_MODELS = ("V_2", "V_2_TURBO")

# Every parameter a step may carry, in the recipe's vocabulary.
RECIPE_PARAMS = (
    "prompt",
    "negative_prompt",
    "aspect_ratio",
    "resolution",
    "num_images",
    "seed",
    "model",
    "rendering_speed",
    "magic_prompt",
    "magic_prompt_version",
    "style_type",
    "style_preset",
    "style_codes",
    "color_palette",
    "custom_model_uri",
    "image_weight",
    "resemblance",
    "detail",
    "describe_model_version",
    *IMAGE_FIELDS,
)


def family_of(model: str) -> str:
    """'V_3' -> 'v3'; the older models -> 'legacy'."""
    return "v3" if model in V3_MODELS else "legacy"


def endpoint_for(op: Op, model: str) -> Endpoint | None:
    """The endpoint an op uses with a model, or None if the API has no such pairing."""
    if op in MODEL_FREE:
        return ENDPOINTS[(op, "legacy")]
    return ENDPOINTS.get((op, family_of(model)))


_RATIO = re.compile(r"^(?:ASPECT_)?(\d{1,2})[x:_X](\d{1,2})$")
_RES = re.compile(r"^(?:RESOLUTION_)?(\d{3,5})[x_X*](\d{3,5})$")


def normalize_aspect_ratio(value: str) -> str | None:
    """'16:9', '16x9' or 'ASPECT_16_9' -> '16x9'; None if it is none of those forms."""
    m = _RATIO.match(str(value).strip())
    return f"{int(m[1])}x{int(m[2])}" if m else None


def normalize_resolution(value: str) -> str | None:
    """'1024x1024' or 'RESOLUTION_1024_1024' -> '1024x1024'."""
    m = _RES.match(str(value).strip())
    return f"{int(m[1])}x{int(m[2])}" if m else None


def normalize_magic_prompt(value: Any) -> Any:
    """YAML reads a bare OFF / ON as booleans; take them back to the API's words."""
    if value is True:
        return "ON"
    if value is False:
        return "OFF"
    return value.upper() if isinstance(value, str) else value


def wire_value(name: str, value: Any, family: str) -> Any:
    """A normalized recipe value -> the wire's spelling for a family."""
    if name == "aspect_ratio":
        return "ASPECT_" + value.replace("x", "_") if family == "legacy" else value
    if name == "resolution":
        return "RESOLUTION_" + value.replace("x", "_") if family == "legacy" else value
    return value


def recipe_values(name: str, endpoint: Endpoint) -> list[str] | None:
    """The legal values of an enum parameter, spelled as a recipe may write them."""
    prop = endpoint.properties.get(endpoint.wire_name(name), {})
    values = prop.get("enum")
    if values is None:
        return None
    if name == "aspect_ratio" and endpoint.family == "legacy":
        return [normalize_aspect_ratio(v) or v for v in values]
    if name == "resolution" and endpoint.family == "legacy":
        return [normalize_resolution(v) or v for v in values]
    return list(values)
