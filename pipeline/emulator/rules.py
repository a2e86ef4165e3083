"""Checks beyond the schema that the real API enforces: input images, masks, field combinations."""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping

from PIL import Image, ImageChops

from .bodies import ApiRequest
from .reject import Reject

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
EDIT_MODELS = ("V_2", "V_2_TURBO")
NO_STYLE_MODELS = ("V_1", "V_1_TURBO")

Images = dict[str, list[Image.Image]]


def decode_images(req: ApiRequest) -> Images:
    """Every file part decoded with Pillow; anything but PNG, JPEG or WebP is a 400."""
    return decode_files(req.files)


def decode_files(files: Mapping[str, list[bytes]]) -> Images:
    """Each file part decoded with Pillow, by field name; a 400 Reject for an unreadable one."""
    return {name: [_decode(name, data) for data in parts] for name, parts in files.items()}


def _decode(name: str, data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.format not in IMAGE_FORMATS:
                raise Reject(
                    400,
                    f"{name}: {img.format} images are not accepted; send PNG, JPEG or WebP",
                    reason="invalid",
                )
            img.load()
    except Reject:
        raise
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ) as exc:
        raise Reject(
            400, f"{name}: not a readable PNG, JPEG or WebP image ({exc})", reason="invalid"
        ) from exc
    return img


def check(req: ApiRequest, images: Images) -> None:
    """Raise a 400 Reject for the first rule the request breaks."""
    params, ep = req.params, req.endpoint
    problems = []
    model = params.get("model", "V_2")
    if ep.family == "legacy" and ep.op == "edit" and model not in EDIT_MODELS:
        problems.append(f"model: legacy /edit supports only {' and '.join(EDIT_MODELS)}, not {model}")
    if ep.family == "legacy" and "style_type" in params and model in NO_STYLE_MODELS:
        problems.append(f"style_type: not allowed with model {model}")
    if "aspect_ratio" in params and "resolution" in params:
        problems.append("aspect_ratio and resolution are mutually exclusive: send one")
    if "mask" in images:
        problems += mask_problems(images["mask"][-1], _source(req, images))
    if problems:
        raise Reject(400, "invalid request", problems, reason="invalid")


def _source(req: ApiRequest, images: Images) -> Image.Image:
    return images["image" if req.endpoint.family == "v3" else "image_file"][-1]


def mask_problems(mask: Image.Image, image: Image.Image) -> list[str]:
    """Why `mask` cannot mask `image`: a different size, or colours besides black and white."""
    problems = []
    if mask.size != image.size:
        problems.append(
            f"mask: {mask.width}x{mask.height} is not the image's size {image.width}x{image.height}"
        )
    if mask.mode not in ("1", "L") and not _black_and_white(mask):
        problems.append("mask: must hold only black and white pixels")
    return problems


def _black_and_white(mask: Image.Image) -> bool:
    r, g, b = mask.convert("RGB").split()
    if ImageChops.difference(r, g).getbbox() or ImageChops.difference(g, b).getbbox():
        return False
    histogram = r.histogram()
    return sum(histogram[1:255]) == 0
