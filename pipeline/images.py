"""The one image module: sniff the format, decode and verify once, and thumbnail the result.

Inputs (files and URLs) and downloaded results go through `decode`, so every byte that
ideopipe sends or keeps was checked by the same code.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

from PIL import Image, UnidentifiedImageError

FORMATS = ("PNG", "JPEG", "WEBP")
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
MAX_PIXELS = 64_000_000  # results: e.g. 8000 x 8000; far above what the API returns
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"))


class BadImageData(ValueError):
    """Bytes that are not a whole PNG, JPEG or WebP image; the message says why."""


@dataclass(frozen=True)
class Decoded:
    """An image decoded once: its true format, size, and the loaded pixels."""

    format: str
    width: int
    height: int
    image: Image.Image = field(repr=False, compare=False)

    @property
    def content_type(self) -> str:
        """The MIME type of the true format."""
        return CONTENT_TYPES[self.format]


def sniff(data: bytes) -> str | None:
    """The image format by its first bytes: PNG, JPEG, WEBP, or None."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def decode(
    data: bytes, name: str = "the image", max_pixels: int = MAX_PIXELS, kind_of: str = "images"
) -> Decoded:
    """Sniff, then fully decode; refuses other formats, truncated files and pixel bombs."""
    kind = sniff(data)
    if kind is None:
        raise BadImageData(f"{name} is not a PNG, JPEG or WebP image")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=(kind,))
            if im.width * im.height > max_pixels:
                raise BadImageData(
                    f"{name} says it is {im.width}x{im.height} pixels; {kind_of} "
                    f"are limited to {max_pixels:,} pixels (a decompression bomb?)"
                )
            im.load()
    except BadImageData:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImageData(f"{name}: refused as a decompression bomb ({exc})") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadImageData(f"{name} does not decode as {kind} ({exc})") from exc
    return Decoded(kind, im.width, im.height, im)


def thumbnail(decoded: Decoded, size: int = 384) -> bytes:
    """A JPEG thumbnail (longest side `size`) made from an already-decoded image."""
    small = decoded.image.copy()
    small.thumbnail((size, size), Image.Resampling.BICUBIC, reducing_gap=1.5)
    if small.mode not in ("RGB", "L"):
        small = small.convert("RGB")
    out = io.BytesIO()
    small.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()


def black_and_white(decoded: Decoded) -> bool:
    """True when every pixel is pure black or pure white (what a mask must be)."""
    im = decoded.image
    if im.mode == "1":
        return True
    gray = im.convert("L")
    colours = gray.getcolors(maxcolors=256) or []
    if not all(value in (0, 255) for _, value in colours):
        return False
    if im.mode in ("L", "LA"):
        return True
    r, g, b = im.convert("RGB").split()
    return r.tobytes() == g.tobytes() == b.tobytes()
