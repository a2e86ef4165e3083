"""Real-size results, cheaply: PNGs of photographic size (about 1.6 MB at 1024x1024).

A real result does not compress to kilobytes, so benchmarks with flat pictures miss the
cost of moving and decoding real images. Noise that PNG cannot shrink is slow to compress,
though, so the pixels are composed from pre-rendered bands instead: each band (32 rows of a
smooth colour field plus Gaussian grain, Sub-filtered) is deflated once, with a full flush,
and kept as a ready IDAT chunk. An image is a zlib header, a key-chosen sequence of bands
in the prompt's hue, a freshly drawn caption band, and the stream's end, whose Adler-32 is
combined from the bands' own. The same key always gives the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import random
import struct
import threading
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from . import drawing

BAND_ROWS = 32
VARIANTS = 6
HUES = 12
GRAIN_SIGMA = 2.0
_ADLER_BASE = 65521
_lock = threading.Lock()

Size = tuple[int, int]


@dataclass(frozen=True)
class _Band:
    rows: int
    chunk: bytes  # a whole IDAT chunk: length, type, deflate data, CRC
    adler: int  # Adler-32 of the band's filtered scanlines
    length: int  # bytes of filtered scanlines


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _deflate(raw: bytes) -> bytes:
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    return c.compress(raw) + c.flush(zlib.Z_FULL_FLUSH)


def _sub_filtered(pixels: np.ndarray) -> bytes:
    """Scanlines with PNG filter 1 (Sub): each byte minus the one a pixel to its left."""
    rows, width = pixels.shape[0], pixels.shape[1] * 3
    flat = pixels.reshape(rows, width)
    sub = flat.copy()
    sub[:, 3:] = flat[:, 3:] - flat[:, :-3]
    return np.concatenate([np.ones((rows, 1), np.uint8), sub], axis=1).tobytes()


def _encode(raw: bytes, rows: int) -> _Band:
    return _Band(rows, _chunk(b"IDAT", _deflate(raw)), zlib.adler32(raw), len(raw))


@functools.lru_cache(maxsize=HUES * VARIANTS * 4)
def _band(width: int, hue: int, variant: int) -> _Band:
    """A textured band of BAND_ROWS rows in hue bucket `hue`, deflated once."""
    rng = np.random.default_rng([width, hue, variant])
    base = drawing._hsv(hue / HUES, 0.45, 0.7)
    cells = max(2, width // 64)
    spread = rng.integers(-50, 51, (2, cells, 3))
    small = np.clip(np.array(base)[None, None, :] + spread, 0, 255).astype(np.uint8)
    field = np.asarray(Image.fromarray(small).resize((width, BAND_ROWS), Image.Resampling.BILINEAR))
    grain = rng.normal(0.0, GRAIN_SIGMA, (BAND_ROWS, width, 3))
    pixels = np.clip(field.astype(np.float64) + grain, 0, 255).astype(np.uint8)
    return _encode(_sub_filtered(pixels), BAND_ROWS)


def adler_combine(first: int, second: int, second_length: int) -> int:
    """Adler-32 of two byte strings joined, from each one's Adler-32 and the second's length."""
    a1, b1 = first & 0xFFFF, first >> 16
    a2, b2 = second & 0xFFFF, second >> 16
    a = (a1 + a2 - 1) % _ADLER_BASE
    b = (b1 + b2 + second_length * (a1 - 1)) % _ADLER_BASE
    return (b << 16) | a


def _caption_band(prompt: str, width: int, rows: int) -> _Band:
    img = Image.new("RGB", (width, rows), (20, 20, 20))
    font = drawing._font(max(8, rows // 3))
    words = " ".join(prompt.split()[:10])
    ImageDraw.Draw(img).text((8, rows // 4), words, fill=(255, 255, 255), font=font)
    return _encode(_sub_filtered(np.asarray(img, dtype=np.uint8)), rows)


def realistic_png(key: str, prompt: str, size: Size, text: dict[str, str]) -> bytes:
    """A PNG of `size` with photographic-like grain, its caption and `text` chunks."""
    width, height = size
    full = max(0, height - max(16, height // 10)) // BAND_ROWS
    caption_rows = height - full * BAND_ROWS  # the caption band also takes the odd rows
    hue = random.Random(hashlib.sha256(prompt.encode()).digest()).randrange(HUES)
    pick = random.Random(hashlib.sha256(key.encode()).digest())
    with _lock:  # build each cached band once, even under concurrent first requests
        bands = [_band(width, hue, pick.randrange(VARIANTS)) for _ in range(full)]
    bands.append(_caption_band(prompt, width, caption_rows))
    adler, total = 1, 0
    for band in bands:
        adler = adler_combine(adler, band.adler, band.length)
        total += band.length
    head = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    for k, v in text.items():
        # iTXt: keyword, NUL, no compression, no language tag, no translated keyword, UTF-8 text
        head += _chunk(b"iTXt", k.encode("latin-1") + b"\0\0\0\0\0" + v.encode("utf-8"))
    tail = _chunk(b"IDAT", b"\x03\x00" + struct.pack(">I", adler)) + _chunk(b"IEND", b"")
    return b"".join([head, _chunk(b"IDAT", b"\x78\x01"), *(b.chunk for b in bands), tail])
