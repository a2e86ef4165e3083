"""Pixels: decode to sRGB, fit to an exact size, encode with only a short provenance note."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageCms, ImageOps, PngImagePlugin

Fit = Literal["cover", "contain"]
Format = Literal["png", "jpeg", "webp"]
RGBA = tuple[int, int, int, int]

EXTENSIONS: dict[str, str] = {"png": "png", "jpeg": "jpg", "webp": "webp"}
_PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
_EXIF_DESCRIPTION = 0x010E
_EXIF_SOFTWARE = 0x0131
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


class ImageProblem(Exception):
    """A source image that cannot be decoded or colour-converted."""


@dataclass(frozen=True)
class Note:
    """The only metadata an exported file keeps: what made it."""

    software: str
    description: str


def open_srgb(path: str, max_pixels: int = 100_000_000) -> Image.Image:
    """Decode an image upright, in sRGB, as RGB or RGBA (alpha kept); ImageProblem if unusable."""
    try:
        with Image.open(path) as im:
            if im.width * im.height > max_pixels:
                raise ImageProblem(f"{im.width}x{im.height} is over {max_pixels:,} pixels")
            im.load()
            icc = im.info.get("icc_profile")
            upright = ImageOps.exif_transpose(im)
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ImageProblem(f"cannot decode the image: {exc}") from exc
    return _to_srgb(upright, icc)


def _to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    alpha = None
    if has_alpha:
        alpha = im.convert("RGBA").getchannel("A")
    base = im.convert(_colour_mode(im.mode))
    try:
        src = _profile(icc, base.mode)
        converted = ImageCms.profileToProfile(base, src, _SRGB, outputMode="RGB") if src else None
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        raise ImageProblem(f"cannot convert its colour profile to sRGB: {exc}") from exc
    rgb = converted if converted is not None else base.convert("RGB")
    if alpha is not None:
        rgb.putalpha(alpha)
    return rgb


def _profile(icc: bytes | None, mode: str) -> ImageCms.ImageCmsProfile | None:
    """The source's colour profile: embedded, implied (LAB), or None for plain sRGB pixels.

    CMYK without a profile has no right answer; Pillow's plain formula is used.
    """
    if icc:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc))
    if mode == "LAB":
        return ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))
    return None


def _colour_mode(mode: str) -> str:
    """The mode a colour transform reads: alpha is set aside and put back afterwards."""
    if mode in ("L", "LA", "1", "I", "I;16", "F"):
        return "L"
    if mode in ("CMYK", "LAB"):
        return mode
    return "RGB"


def fit(im: Image.Image, width: int, height: int, how: Fit, background: RGBA) -> Image.Image:
    """`cover`: crop around the centre to exactly width x height; `contain`: letterbox."""
    if (im.width, im.height) == (width, height):
        return im.copy()
    if how == "cover":
        # crop whole source pixels first, so nothing outside the crop bleeds into the edges
        scale = max(width / im.width, height / im.height)
        cw = min(im.width, max(1, round(width / scale)))
        ch = min(im.height, max(1, round(height / scale)))
        left, top = (im.width - cw) // 2, (im.height - ch) // 2
        return im.crop((left, top, left + cw, top + ch)).resize((width, height), Image.Resampling.LANCZOS)
    scale = min(width / im.width, height / im.height)
    inner = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    small = im.resize(inner, Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (width, height), background)
    offset = ((width - inner[0]) // 2, (height - inner[1]) // 2)
    canvas.paste(small.convert("RGBA"), offset)  # the picture keeps its own transparency
    return canvas if im.mode == "RGBA" or background[3] < 255 else canvas.convert("RGB")


def encode(im: Image.Image, fmt: Format, quality: int, background: RGBA, note: Note) -> bytes:
    """The file bytes: transparency kept in png/webp, flattened on `background` for jpeg."""
    if im.mode == "RGBA" and im.getchannel("A").getextrema() == (255, 255):
        im = im.convert("RGB")  # fully opaque: no alpha channel to carry
    if fmt == "jpeg" and im.mode == "RGBA":
        flat = Image.new("RGBA", im.size, (*background[:3], 255))
        im = Image.alpha_composite(flat, im).convert("RGB")
    im = im.copy()
    im.info = {}  # nothing of the source's metadata travels
    buf = io.BytesIO()
    if fmt == "png":
        text = PngImagePlugin.PngInfo()
        text.add_itxt("Software", note.software)
        text.add_itxt("Description", note.description)
        im.save(buf, "PNG", pnginfo=text, compress_level=6)
    else:
        exif = Image.Exif()
        exif[_EXIF_DESCRIPTION] = _ascii(note.description)
        exif[_EXIF_SOFTWARE] = _ascii(note.software)
        extra = (
            {"optimize": False, "progressive": False, "subsampling": 0}
            if fmt == "jpeg" and quality >= 90
            else {}
        )
        im.save(buf, _PIL_FORMAT[fmt], quality=quality, exif=exif.tobytes(), **extra)
    return buf.getvalue()


def _ascii(text: str) -> str:
    """EXIF text fields are ASCII: other characters become \\u escapes."""
    return text.encode("ascii", "backslashreplace").decode("ascii")
