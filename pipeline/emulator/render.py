"""What a valid request produces: effective prompt, seeds, deterministic PNGs, response body.

An image is a pure function of its key: the endpoint, the effective prompt, the seed, the
other parameters (spec defaults filled in, so sending a default equals leaving it out),
the output size and the sha256 of every input file. Magic Prompt fields and num_images
are not in the key, so a rerun that sends the recorded effective prompt with Magic
Prompt OFF gets the same bytes back.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from pipeline import spec

from . import drawing, sizes, texture
from .bodies import ApiRequest
from .rules import Images

SEED_LIMIT = 2**31  # seeds are in [0, 2**31 - 1]
UNSAFE_MARK = "[unsafe]"
REJECT_MARK = "[reject]"
NOT_IN_KEY = {
    "prompt",
    "seed",
    "num_images",
    "magic_prompt",
    "magic_prompt_option",
    "magic_prompt_version",
    "aspect_ratio",
    "resolution",
}

# Magic Prompt appends two of these, chosen at random, so its output varies between calls.
EMBELLISHMENTS = (
    "bathed in soft golden-hour light",
    "rendered with crisp fine detail",
    "in a vivid saturated palette",
    "with a shallow depth of field",
    "framed by a clean minimal composition",
    "under dramatic cinematic lighting",
    "with gentle pastel tones",
    "seen from a low wide angle",
    "with subtle film grain",
    "against a softly blurred background",
    "in high contrast",
    "with delicate rim lighting",
    "in a calm symmetrical layout",
    "with rich textured surfaces",
    "glowing with warm ambient light",
    "in crisp morning air",
)


@dataclass(frozen=True)
class Result:
    """One produced image: its PNG (None when withheld as unsafe) and its reported facts."""

    png: bytes | None
    prompt: str
    seed: int
    resolution: str
    upscaled_resolution: str | None = None


def source_image(req: ApiRequest, images: Images) -> Image.Image | None:
    """The request's main input image, if it has one."""
    parts = images.get("image" if req.endpoint.family == "v3" else "image_file")
    return parts[-1] if parts else None


def effective_prompt(req: ApiRequest, images: Images, rng: random.Random) -> str:
    """The prompt after Magic Prompt; without a prompt, the one stored in the input image."""
    params = req.params
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        source = source_image(req, images)
        return (drawing.embedded_prompt(source) if source is not None else None) or ""
    if params.get(req.endpoint.magic_field, "AUTO") == "OFF":
        return prompt
    if req.endpoint.op not in ("generate", "remix", "edit", "replace-background", "upscale"):
        return prompt
    return f"{prompt}, {', '.join(rng.sample(EMBELLISHMENTS, 2))}"


def is_unsafe(req: ApiRequest) -> bool:
    """Whether the prompt asks the emulator to withhold its images as unsafe."""
    return UNSAFE_MARK in str(req.params.get("prompt", ""))


def is_rejected(req: ApiRequest) -> bool:
    """Whether the prompt asks the emulator to refuse it at the safety check (422)."""
    return REJECT_MARK in str(req.params.get("prompt", ""))


def style_type(req: ApiRequest) -> str | None:
    """The style_type to report: the one sent, else the family's default where it applies."""
    params, ep = req.params, req.endpoint
    if "style_type" in params:
        return str(params["style_type"])
    props = _param_schema(req).get("properties", {})
    if "style_type" not in props:
        return None
    if ep.family == "v3":
        return str(props["style_type"].get("default", "GENERAL"))
    return None if params.get("model", "V_2") in ("V_1", "V_1_TURBO") else "AUTO"


def _param_schema(req: ApiRequest) -> dict[str, Any]:
    path = req.endpoint.path
    schema = spec.request_schema(path, spec.content_types(path)[0])
    if req.endpoint.nested:
        return dict(schema["properties"]["image_request"])
    return schema


def api_size(req: ApiRequest, images: Images) -> sizes.Size:
    """The resolution the real API would report for this request."""
    op = req.endpoint.op
    asked = sizes.requested(req.params)
    source = source_image(req, images)
    if op == "upscale" and source is not None:
        return source.size
    if asked is not None and op in ("generate", "remix", "reframe"):
        return asked
    if source is not None:
        return sizes.nearest(source.width / source.height)
    return sizes.DEFAULT


def image_key(req: ApiRequest, prompt: str, seed: int, size: sizes.Size, scale: float) -> str:
    """The canonical JSON an image is a pure function of."""
    props = _param_schema(req).get("properties", {})
    params = {k: v["default"] for k, v in props.items() if "default" in v}
    params.update(req.params)
    style = style_type(req)
    if style is not None:
        params["style_type"] = style
    for name in NOT_IN_KEY:
        params.pop(name, None)
    inputs = {name: [hashlib.sha256(p).hexdigest() for p in parts] for name, parts in req.files.items()}
    return json.dumps(
        {
            "endpoint": req.endpoint.path,
            "prompt": prompt,
            "seed": seed,
            "params": params,
            "size": size,
            "scale": scale,
            "inputs": inputs,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def run(
    req: ApiRequest, images: Images, rng: random.Random, scale: float, realistic: bool = False
) -> list[Result]:
    """Produce the request's images: one per seed, identical when the seed was given."""
    prompt = effective_prompt(req, images, rng)
    given = req.params.get("seed")
    n = req.num_images
    seeds = [int(given)] * n if given is not None else [rng.randrange(SEED_LIMIT) for _ in range(n)]
    size = api_size(req, images)
    unsafe = is_unsafe(req)
    made: dict[int, bytes | None] = {}
    out = []
    for seed in seeds:
        if seed not in made:
            made[seed] = None if unsafe else _draw(req, images, prompt, seed, size, scale, realistic)
        if req.endpoint.op == "upscale":
            out.append(
                Result(
                    made[seed],
                    prompt,
                    seed,
                    sizes.text(size),
                    sizes.text((size[0] * 2, size[1] * 2)),
                )
            )
        else:
            out.append(Result(made[seed], prompt, seed, sizes.text(size)))
    return out


def _draw(
    req: ApiRequest,
    images: Images,
    prompt: str,
    seed: int,
    size: sizes.Size,
    scale: float,
    realistic: bool = False,
) -> bytes:
    key = image_key(req, prompt, seed, size, scale)
    op, source = req.endpoint.op, source_image(req, images)
    px = sizes.scaled(size, scale)
    if realistic and op != "upscale":
        return texture.realistic_png(key, prompt, px, {"prompt": prompt, "seed": str(seed)})
    if op == "upscale" and source is not None:
        img = drawing.upscale(key, source)
    elif op == "remix" and source is not None:
        weight = int(req.params.get("image_weight", 50))
        img = drawing.remix(key, prompt, px, source, weight)
    elif op == "edit" and source is not None:
        img = drawing.edit(key, prompt, px, source, images["mask"][-1])
    elif op == "replace-background" and source is not None:
        img = drawing.inset(key, prompt, px, source, 0.6)
    elif op == "reframe" and source is not None:
        img = drawing.inset(key, prompt, px, source, 0.8)
    else:
        img = drawing.picture(key, prompt, px)
    return drawing.encode_png(img, {"prompt": prompt, "seed": str(seed)})


def now_iso() -> str:
    """The current UTC time as ISO-8601, as the API writes `created`."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def response_body(req: ApiRequest, results: Sequence[Result], urls: Sequence[str | None]) -> dict[str, Any]:
    """The spec-shaped JSON answer for a request's results."""
    style = style_type(req)
    data = []
    for result, url in zip(results, urls, strict=True):
        item: dict[str, Any] = {
            "url": url,
            "prompt": result.prompt,
            "resolution": result.resolution,
            "seed": result.seed,
            "is_image_safe": result.png is not None,
        }
        if result.upscaled_resolution:
            item["upscaled_resolution"] = result.upscaled_resolution
        if style is not None:
            item["style_type"] = style
        data.append(item)
    return {"created": now_iso(), "data": data}


def describe_body(images: Images) -> dict[str, Any]:
    """The answer to /describe."""
    return {"descriptions": [{"text": drawing.describe(images["image_file"][-1])}]}
