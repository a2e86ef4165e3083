"""Input images named by a recipe: local files and URLs, checked before anything is sent."""

from __future__ import annotations

import functools
import hashlib
import io
import ipaddress
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image, UnidentifiedImageError

MAX_INPUT_BYTES = 10 * 1024 * 1024  # the stricter of Ideogram's 25 MB and the proxies' 10 MB
MAX_INPUT_PIXELS = 25_000_000  # e.g. 5000 x 5000; far above what the API takes, far below a bomb
FORMATS = ("PNG", "JPEG", "WEBP")


@dataclass(frozen=True, slots=True)
class ImageRef:
    """Where an input image comes from: an earlier step's image, a file, or a URL."""

    kind: str  # "step" | "file" | "url"
    value: str  # parent image id | absolute path | URL
    digest: str = ""  # sha256 of a file's bytes (files only)


class BadImage(ValueError):
    """An input image or URL is unusable; the message says why."""


@dataclass(frozen=True)
class ImageInfo:
    """What a local image file holds."""

    sha256: str
    width: int
    height: int
    format: str
    black_and_white: bool


@functools.lru_cache(maxsize=4096)
def inspect_file(path: str) -> ImageInfo:
    """Check a local image (size cap, PNG/JPEG/WebP, decodes) and describe it."""
    p = Path(path)
    if not p.is_file():
        raise BadImage(f"{path} is not a regular file" if p.exists() else f"file not found: {path}")
    size = p.stat().st_size
    if size > MAX_INPUT_BYTES:
        raise BadImage(f"{path} is {size:,} bytes; input images are limited to {MAX_INPUT_BYTES:,}")
    return inspect_bytes(p.read_bytes(), path)


def inspect_bytes(data: bytes, name: str) -> ImageInfo:
    """Check image bytes (PNG/JPEG/WebP, pixel cap, decodes) and describe them."""
    if len(data) > MAX_INPUT_BYTES:
        raise BadImage(f"{name} is {len(data):,} bytes; input images are limited to "
                       f"{MAX_INPUT_BYTES:,}")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as im:
                if im.width * im.height > MAX_INPUT_PIXELS:
                    raise BadImage(f"{name} says it is {im.width}x{im.height} pixels; input "
                                   f"images are limited to {MAX_INPUT_PIXELS:,} pixels "
                                   "(a decompression bomb?)")
                im.load()
                bw = _is_black_and_white(im)
                return ImageInfo(hashlib.sha256(data).hexdigest(), im.width, im.height,
                                 im.format or "", bw)
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(f"{name}: refused as a decompression bomb ({exc})") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadImage(f"{name} is not a PNG, JPEG or WebP image") from exc


def _is_black_and_white(im: Image.Image) -> bool:
    if im.mode == "1":
        return True
    gray = im.convert("L")
    colours = gray.getcolors(maxcolors=256) or []
    return all(value in (0, 255) for _, value in colours) and \
        (im.mode in ("1", "L", "LA") or _grey(im))


def _grey(im: Image.Image) -> bool:
    rgb = im.convert("RGB")
    r, g, b = rgb.split()
    return r.tobytes() == g.tobytes() == b.tobytes()


def check_mask(image: ImageInfo, mask: ImageInfo) -> str | None:
    """Why a mask does not fit its image, or None when it does."""
    if (mask.width, mask.height) != (image.width, image.height):
        return (f"mask is {mask.width}x{mask.height} but the image is "
                f"{image.width}x{image.height}; they must be the same size")
    if not mask.black_and_white:
        return "mask must be black and white only (black marks what to repaint)"
    return None


def check_url(url: str, allow_private: bool = False, resolve: bool = False) -> None:
    """Refuse non-http(s) URLs and, unless allowed, private and link-local hosts.

    Loopback is always allowed, so that the embedded emulator works. With `resolve`
    the host name is looked up and every address it resolves to is checked.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        scheme = parts.scheme or "no"
        raise BadImage(f"{url[:80]!r}: only http(s) URLs are allowed, not {scheme} scheme")
    host = parts.hostname
    if not host:
        raise BadImage(f"{url[:80]!r}: the URL has no host")
    if allow_private:
        return
    addresses = [host]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        numeric = _legacy_ipv4(host)
        if numeric is not None:
            addresses = [numeric]
        elif host == "localhost" or not resolve:
            return
        else:
            try:
                addresses = [str(info[4][0]) for info in socket.getaddrinfo(host, None)]
            except OSError as exc:
                raise BadImage(f"{url[:80]!r}: cannot resolve {host}") from exc
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_loopback:
            continue
        if ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_multicast \
                or ip.is_unspecified:
            raise BadImage(f"{url[:80]!r}: {host} is a private or link-local address "
                           "(set allow_private_urls: true to allow it)")


def _legacy_ipv4(host: str) -> str | None:
    """'167772165', '0x0a000005', '10.1' or '012.0.0.5': forms the resolver reads as IPv4."""
    if not all(c in "0123456789abcdefx." for c in host.lower()) or not host[:1].isdigit():
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None
