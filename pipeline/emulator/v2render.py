"""What a valid v2 request produces: output sizes, deterministic pictures and spec-shaped bodies."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from . import drawing, sizes, texture
from .render import EMBELLISHMENTS, SEED_LIMIT, UNSAFE_MARK
from .rules import Images
from .v2bodies import V2Request

NO_MAGIC = (
    "remix",
    "precise-edit",
    "reframe",
    "replace-background",
    "remove-background",
    "upscale",
    "describe",
    "layerize",
)
TRANSPARENT = ("ideogram-3-transparent", "ideogram-4-transparent")
OUTPUT_PIXELS = {"1k": 1024 * 1024, "2k": 2048 * 2048, "4k": 4096 * 4096, "8k": 8192 * 8192}


@dataclass(frozen=True)
class Made:
    """One produced image: PNG bytes (None when withheld as unsafe) and its reported facts."""

    png: bytes | None
    prompt: str
    seed: int
    size: sizes.Size


def _pair(text: str) -> sizes.Size:
    w, h = text.split("x")
    return int(w), int(h)


def _by_pixels(ratio: float, pixels: int) -> sizes.Size:
    h = round((pixels / ratio) ** 0.5 / 32) * 32
    return max(32, round(h * ratio / 32) * 32), max(32, h)


def api_size(req: V2Request, images: Images) -> sizes.Size:
    """The resolution the real API would report for this request."""
    ep, params = req.endpoint, req.params
    first = images.get(ep.source_field, [None])[0]
    if ep.action in ("precise-edit", "remove-background", "layerize") and first is not None:
        return first.size
    if ep.action == "upscale" and first is not None:
        factor = int(str(params.get("upscale_factor", "x2")).lstrip("x"))
        return first.width * factor, first.height * factor
    size = params.get("size")
    if ep.model == "ideogram-4-5":
        if first is not None and ("mask" in images or size == "source"):
            return first.size
        if isinstance(size, str) and "x" in size:
            return _pair(size)
        ratio = first.width / first.height if first is not None else 1.0
        return _by_pixels(ratio, OUTPUT_PIXELS["2k"])
    if ep.model == "ideogram-4-transparent":
        ratio = params.get("aspect_ratio", "auto")
        r = 1.0 if ratio == "auto" else (lambda p: p[0] / p[1])(_pair(ratio))
        return _by_pixels(r, OUTPUT_PIXELS[str(params.get("output_resolution", "1k"))])
    if ep.model == "p-image-ideogram" and params.get("custom_width"):
        return int(params["custom_width"]), int(params["custom_height"])
    asked = params.get("resolution")
    if isinstance(asked, str) and "x" in asked:
        return _pair(asked)
    ratio_text = params.get("aspect_ratio")
    if isinstance(ratio_text, str) and ratio_text != "auto":
        w, h = _pair(ratio_text)
        return sizes.nearest(w / h)
    if first is not None:
        return sizes.nearest(first.width / first.height)
    return sizes.DEFAULT


def effective_prompt(req: V2Request, images: Images, rng: random.Random) -> str:
    """The prompt after Magic Prompt; without one, the prompt stored in the source image."""
    prompt = req.params.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        first = images.get(req.endpoint.source_field, [None])[0]
        return (drawing.embedded_prompt(first) if first is not None else None) or ""
    if req.endpoint.action in NO_MAGIC or req.params.get("magic_prompt", "auto") == "off":
        return prompt
    return f"{prompt}, {', '.join(rng.sample(EMBELLISHMENTS, 2))}"


def _key(req: V2Request, prompt: str, seed: int, size: sizes.Size, files: dict[str, list[bytes]]) -> str:
    params = {
        k: v
        for k, v in req.params.items()
        if k not in ("prompt", "seed", "num_images", "magic_prompt", "async", "webhook_url")
    }
    inputs = {n: [hashlib.sha256(p).hexdigest() for p in parts] for n, parts in files.items()}
    return json.dumps(
        {
            "endpoint": req.endpoint.path,
            "prompt": prompt,
            "seed": seed,
            "params": params,
            "size": size,
            "inputs": inputs,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )


def run(
    req: V2Request,
    images: Images,
    files: dict[str, list[bytes]],
    rng: random.Random,
    scale: float,
    realistic: bool = False,
) -> list[Made]:
    """Produce the request's images: one per seed, identical when the seed was given."""
    prompt = effective_prompt(req, images, rng)
    given = req.params.get("seed")
    n = req.num_images
    seeds = [int(given)] * n if given is not None else [rng.randrange(SEED_LIMIT) for _ in range(n)]
    size = api_size(req, images)
    unsafe = UNSAFE_MARK in str(req.params.get("prompt", ""))
    made: dict[int, bytes | None] = {}
    for seed in seeds:
        if seed not in made:
            key = _key(req, prompt, seed, size, files)
            made[seed] = None if unsafe else _draw(req, images, key, prompt, seed, size, scale, realistic)
    return [Made(made[s], prompt, s, size) for s in seeds]


def _draw(
    req: V2Request,
    images: Images,
    key: str,
    prompt: str,
    seed: int,
    size: sizes.Size,
    scale: float,
    realistic: bool,
) -> bytes:
    px = sizes.scaled(size, scale)
    text = {"prompt": prompt, "seed": str(seed)}
    if realistic:
        return texture.realistic_png(key, prompt, px, text)
    action = req.endpoint.action
    first = images.get(req.endpoint.source_field, [None])[0]
    img: Image.Image
    if first is None:
        img = drawing.picture(key, prompt, px)
    elif action == "upscale":
        img = drawing.fit(first, px)
    elif "mask" in images:
        img = drawing.edit(key, prompt, px, first, images["mask"][-1])
    elif action in ("remix", "generate", "precise-edit"):
        img = drawing.remix(key, prompt, px, first, int(req.params.get("image_weight", 50)))
    elif action in ("replace-background", "reframe"):
        img = drawing.inset(key, prompt, px, first, 0.6 if action == "replace-background" else 0.8)
    else:
        img = drawing.fit(first, px)
    if req.endpoint.model in TRANSPARENT or action == "remove-background":
        img = img.convert("RGBA")
        corner = max(1, min(img.size) // 4)
        img.paste((0, 0, 0, 0), (0, 0, corner, corner))
    return drawing.encode_png(img, text)


def item(req: V2Request, made: Made, url: str | None) -> dict[str, Any]:
    """One `data[]` entry of a synchronous answer, in the operation's own shape."""
    action, safe = req.endpoint.action, made.png is not None
    if action == "remove-background":
        return {"url": url, "is_image_safe": safe}
    out: dict[str, Any] = {
        "url": url,
        "is_image_safe": safe,
        "resolution": sizes.text(made.size),
        "seed": made.seed,
    }
    if action == "layerize":
        out.update(object_type="layerized_image", base_image_url=url, text_blocks=text_blocks(made))
    elif action != "upscale":
        out["prompt"] = made.prompt
    return out


def polled_item(req: V2Request, made: Made, url: str | None, asset_id: str | None) -> dict[str, Any]:
    """One `data[]` entry of GET /v2/generations/{id}, tagged with its object_type."""
    kind = req.endpoint.polled_kind
    safe = made.png is not None
    if kind == "layerized_image":
        return item(req, made, url)
    out: dict[str, Any] = {
        "object_type": kind,
        "url": url,
        "is_image_safe": safe,
        "resolution": sizes.text(made.size),
        "asset_id": asset_id,
    }
    if kind == "image.generation":
        out.update(prompt=made.prompt, seed=made.seed)
    return out


def text_blocks(made: Made) -> list[dict[str, Any]]:
    """The text layer layerize reports: the first words of the prompt, along the bottom."""
    w, h = made.size
    words = " ".join(made.prompt.split()[:6]) or "TEXT"
    return [
        {
            "text": words,
            "x": 8,
            "y": int(h * 0.85),
            "width": max(1, w - 16),
            "height": max(1, int(h * 0.1)),
            "alignment": "left",
            "formatting": [],
            "font_name": "Inter",
            "font_size": max(8, int(h * 0.06)),
            "color": "#ffffff",
        }
    ]


def body(
    req: V2Request, generation_id: str, made: Sequence[Made], urls: Sequence[str | None], with_data: bool
) -> dict[str, Any]:
    """The 200 answer of a generation: data for sync requests, the id alone for async ones."""
    ep = req.endpoint
    if ep.action == "replace-background":
        return {"generation_id": generation_id}
    out: dict[str, Any] = {"generation_id": generation_id}
    if ep.action != "remove-background":
        out["seed"] = made[0].seed if made else 0
    if ep.model == "ideogram-4-5":
        out["generation_kind"] = "sampling"
    if ep.action in ("inpaint", "upscale") and made:
        out["width"], out["height"] = made[0].size
    if with_data:
        out["data"] = [item(req, m, u) for m, u in zip(made, urls, strict=True)]
    return out


def describe(req: V2Request, images: Images, description_id: str, created: str) -> dict[str, Any]:
    """The answer of describe/ideogram-3 (text) or describe/ideogram-4 (a structured prompt)."""
    text = drawing.describe(images["image"][0])
    if req.endpoint.model == "ideogram-3":
        return {"created": created, "description_id": description_id, "descriptions": [{"text": text}]}
    prompt: dict[str, Any] = {
        "high_level_description": text,
        "compositional_deconstruction": {"background": text, "elements": []},
    }
    if req.params.get("include_tags"):
        prompt["tags"] = [w.strip(",.") for w in text.split()[:5]]
    return {"created": created, "description_id": description_id, "json_prompt": prompt}
