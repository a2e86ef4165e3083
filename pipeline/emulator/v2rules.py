"""v2 checks beyond the schema: asset references, source images, masks, sizes (the guide's prose rules)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image

from . import rules, v2spec
from .reject import Reject
from .v2bodies import V2Request
from .v2routes import ASSET_FIELDS, SOURCE_OPS

Images = rules.Images
Lookup = Callable[[str, str], bytes]
MAX_UPSCALED_SIDE = 8192


def resolve(req: V2Request, lookup: Lookup) -> dict[str, list[bytes]]:
    """The request's files with every asset reference replaced by the asset's bytes (404 if unknown).

    A reference wins over a file sent under the field it stands for, as the spec says for 4.5.
    """
    files = {name: list(parts) for name, parts in req.files.items()}
    for field, file_field in ASSET_FIELDS.items():
        value = req.params.get(field)
        if value is None:
            continue
        refs = value if isinstance(value, list) else [value]
        files[file_field] = [lookup(str(r["asset_id"]), str(r["asset_type"])) for r in refs]
    return files


def has_sources(req: V2Request) -> bool:
    """Whether the request names a source image, as a file or an asset."""
    field = req.endpoint.source_field
    asset = "image_asset_identifiers" if field == "images" else "image_asset_identifier"
    return field in req.files or asset in req.params


def check(req: V2Request, images: Images) -> None:
    """Raise a 400 Reject naming every prose rule the request breaks."""
    ep, params = req.endpoint, req.params
    problems: list[str] = []
    source = _first(images, ep.source_field)
    if ep.action in SOURCE_OPS and source is None:
        problems.append(
            f"{ep.source_field}: {ep.action} needs a source image (a file or image_asset_identifier)"
        )
    if ep.action == "inpaint" and "mask" not in images:
        problems.append("mask: inpaint needs a mask (a file or mask_asset_identifier)")
    if "aspect_ratio" in params and "resolution" in params:
        problems.append("aspect_ratio and resolution are mutually exclusive: send one")
    if "mask" in images and source is not None:
        problems += _mask(images["mask"][-1], source)
    if ep.path == "/v2/image/generate/ideogram-4-5":
        problems += _generate_45(params, images, source)
    elif ep.action == "precise-edit":
        problems += _precise_edit(req, images)
    elif ep.model == "p-image-ideogram":
        problems += _p_image(params)
    elif ep.action == "upscale" and source is not None:
        factor = int(str(params.get("upscale_factor", "x2")).lstrip("x"))
        if max(source.size) * factor > MAX_UPSCALED_SIDE:
            problems.append(f"upscale_factor: the output would exceed {MAX_UPSCALED_SIDE} px a side")
    if problems:
        raise Reject(400, "invalid request", problems, reason="invalid")


def _first(images: Images, name: str) -> Image.Image | None:
    parts = images.get(name)
    return parts[0] if parts else None


def _mask(mask: Image.Image, image: Image.Image) -> list[str]:
    problems = []
    if mask.size != image.size:
        problems.append(
            f"mask: {mask.width}x{mask.height} is not the first image's size {image.width}x{image.height}"
        )
    low, high = mask.convert("L").getextrema()
    if not (int(low) < 128 <= int(high)):  # type: ignore[arg-type]
        problems.append("mask: must contain both black (edit) and white (keep) areas")
    return problems


def _generate_45(params: dict[str, Any], images: Images, source: Image.Image | None) -> list[str]:
    problems = []
    size = params.get("size")
    if source is None:
        if params.get("quality") == "very_low":
            problems.append("quality: very_low needs source images")
        if size not in (None, "auto") and size not in v2spec.enum("ResolutionV4"):
            problems.append(f"size: {size!r} without source images must be auto or a preset of ResolutionV4")
        return problems
    if "mask" in images:
        if len(images.get("images", [])) > 4:
            problems.append("images: with a mask, at most 3 other sources")
        if size not in (None, "auto"):
            problems.append("size: cannot be set with a mask (the output is the first image's size)")
    elif isinstance(size, str) and size not in ("auto", "source"):
        problems += _custom_size(size)
    for img in images.get("images", []):
        if not 1 / 6 <= img.width / img.height <= 6:
            problems.append(f"images: {img.width}x{img.height} is beyond the 1:6-6:1 ratio")
    return problems


def _custom_size(size: str) -> list[str]:
    try:
        w, h = (int(x) for x in size.split("x"))
    except ValueError:
        return [f"size: {size!r} is not auto, source or WIDTHxHEIGHT"]
    if w % 32 or h % 32 or min(w, h) < 256 or w * h > 2048 * 2048 or max(w, h) > 6 * min(w, h):
        return [
            f"size: {size} must have sides multiple of 32 and >= 256, at most 2048x2048 "
            f"pixels and a ratio within 6:1"
        ]
    return []


def _precise_edit(req: V2Request, images: Images) -> list[str]:
    params, problems = req.params, []
    refs = [f for f in ("image_asset_identifier", "reference_image_asset_identifiers") if f in params]
    if "mask" in req.files and ("image" not in req.files or refs):
        problems.append("mask: needs the raw image and cannot be mixed with asset references")
    if "mask" in images and len(images.get("reference_images", [])) > 3:
        problems.append("reference_images: with a mask, at most 3 references")
    if "reference_image_asset_identifiers" in params and "image_asset_identifier" not in params:
        problems.append("reference_image_asset_identifiers: needs image_asset_identifier too")
    if params.get("context_window") == "auto" and "mask" not in images:
        problems.append("context_window: auto requires a mask")
    return problems


def _p_image(params: dict[str, Any]) -> list[str]:
    width, height = params.get("custom_width"), params.get("custom_height")
    if width is None and height is None:
        return []
    problems = []
    if width is None or height is None:
        problems.append("custom_width and custom_height go together")
    elif any(c % 16 or not 16 <= c <= 4096 for c in (width, height)) or width * height > 4_194_304:
        problems.append("custom_width, custom_height: multiples of 16 in 16-4096, product <= 4194304")
    if params.get("resolution") is not None or "aspect_ratio" in params:
        problems.append("custom_width/custom_height cannot be combined with resolution or aspect_ratio")
    return problems
