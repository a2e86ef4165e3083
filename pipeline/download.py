"""Downloading result images: streamed, capped, verified, and written atomically."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import requests
from PIL import Image, UnidentifiedImageError

from .errors import DownloadError, DownloadExpired
from .files import write_atomic

MAX_BYTES = 64 * 1024 * 1024
FORMATS = ("PNG", "JPEG", "WEBP")
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"))


@dataclass(frozen=True)
class Saved:
    """A verified image written to its final path."""

    path: Path
    sha256: str
    width: int
    height: int
    size: int
    format: str


def sniff(data: bytes) -> str | None:
    """The image format by its first bytes: PNG, JPEG, WEBP, or None."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def verify(data: bytes) -> tuple[str, int, int]:
    """Check bytes are a whole PNG/JPEG/WebP by sniffing and decoding; (format, w, h)."""
    kind = sniff(data)
    if kind is None:
        raise DownloadError("the bytes are not a PNG, JPEG or WebP image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as im:
                im.load()
                return kind, im.width, im.height
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DownloadError(f"refused as a decompression bomb: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DownloadError(f"the image does not decode ({exc})") from exc


def fetch(http: requests.Session, url: str, timeout: tuple[float, float] = (10, 60),
          max_bytes: int = MAX_BYTES, attempts: int = 3) -> bytes:
    """Download a URL's bytes, retrying truncated bodies; expired URLs raise DownloadExpired."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return _fetch_once(http, url, timeout, max_bytes)
        except DownloadExpired:
            raise
        except DownloadError as exc:
            last = exc
    raise DownloadError(f"download failed after {attempts} attempts: {last}") from last


def _fetch_once(http: requests.Session, url: str, timeout: tuple[float, float],
                max_bytes: int) -> bytes:
    try:
        with http.get(url, stream=True, timeout=timeout) as resp:
            if resp.status_code in (403, 404, 410):
                raise DownloadExpired(f"result URL answered {resp.status_code}: it has expired")
            if resp.status_code != 200:
                raise DownloadError(f"result URL answered {resp.status_code}")
            expected = resp.headers.get("Content-Length")
            if expected and expected.isdigit() and int(expected) > max_bytes:
                raise DownloadError(f"image is {int(expected):,} bytes (limit {max_bytes:,})")
            buf = bytearray()
            for chunk in resp.iter_content(64 * 1024):
                buf += chunk
                if len(buf) > max_bytes:
                    raise DownloadError(f"image is over {max_bytes:,} bytes")
    except requests.RequestException as exc:
        raise DownloadError(f"download broke off: {type(exc).__name__}") from exc
    if expected and expected.isdigit() and int(expected) != len(buf):
        raise DownloadError(f"truncated: {len(buf):,} of {int(expected):,} bytes")
    return bytes(buf)


def save(data: bytes, dest: Path) -> Saved:
    """Verify an image and write it atomically (never a partial file at `dest`)."""
    kind, width, height = verify(data)
    write_atomic(dest, data)
    return Saved(dest, hashlib.sha256(data).hexdigest(), width, height, len(data), kind)
