"""Input images named by a recipe: local files and URLs, checked before anything is sent."""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from . import fetch, files, images

MAX_INPUT_BYTES = 10 * 1024 * 1024  # the stricter of Ideogram's 25 MB and the proxies' 10 MB
MAX_INPUT_PIXELS = 25_000_000  # e.g. 5000 x 5000; far above what the API takes, far below a bomb
FORMATS = images.FORMATS


@dataclass(frozen=True, slots=True)
class ImageRef:
    """Where an input image comes from: an earlier step's image, a file, or a URL."""

    kind: str  # "step" | "file" | "url"
    value: str  # parent image id | absolute path | URL
    digest: str = ""  # sha256 of a file's bytes (files only)
    root: str = ""  # files under the recipe's folder: that folder, below which no link is followed


def local_file(base_dir: Path, text: str) -> ImageRef:
    """The reference (digest not yet taken) of a local path a recipe names, relative to `base_dir`.

    A path inside the recipe's folder is kept as written (normalised, links not resolved) and
    is read later without following a link in any folder below it; a path outside it is
    resolved, as before, and only its last name may not be a link.
    """
    root = Path(base_dir).resolve()
    path = Path(os.path.normpath(root / text))
    if path != root and path.is_relative_to(root):
        return ImageRef("file", str(path), root=str(root))
    return ImageRef("file", str(path.resolve()))


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


@dataclass(frozen=True)
class VerifiedImage:
    """Bytes read once and checked: exactly these bytes are the ones to send."""

    data: bytes = field(repr=False)
    content_type: str  # of the true format: image/png, image/jpeg or image/webp
    info: ImageInfo


def read_image_file(path: str, expect_sha256: str = "", root: str = "") -> VerifiedImage:
    """Open a local image once without following a symbolic link, check it, return its bytes.

    The file is opened with O_NOFOLLOW (and O_NONBLOCK, so a FIFO cannot hang the run);
    below `root` (the recipe's folder) every folder is opened no-follow too. It is checked
    on the open descriptor, read once, and decoded from the bytes that were read, so
    nothing can swap it between the check and the send. With `expect_sha256` (the digest
    taken at planning) a file edited since then is refused rather than sent.
    """
    data, _ = _read_once(path, root)
    info = inspect_bytes(data, path)
    if expect_sha256 and info.sha256 != expect_sha256:
        raise BadImage(f"{path} changed since the run was planned; plan again to send it")
    return VerifiedImage(data, images.CONTENT_TYPES[info.format], info)


def _read_once(path: str, root: str = "") -> tuple[bytes, tuple[int, ...]]:
    """(bytes, identity) of a regular file opened without following a symbolic link.

    Below `root` no folder may be a link either (each is opened no-follow from `root`);
    without it only the last name is checked.
    """
    flags = (
        os.O_RDONLY
        | getattr(os, "O_NOFOLLOW", 0)
        | getattr(os, "O_NONBLOCK", 0)
        | getattr(os, "O_CLOEXEC", 0)
    )
    try:
        if root:
            fd = files.open_under(Path(root), os.path.relpath(path, root), flags)
        else:
            fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise BadImage(f"file not found: {path}") from exc
    except files.PathRefused as exc:
        raise BadImage(f"{path} is not inside {root}") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadImage(
                f"{path}: a symbolic link is in the path; input files are read without "
                "following links (name the file itself, in a real folder)"
            ) from exc
        raise BadImage(f"cannot open {path}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadImage(f"{path} is not a regular file")
        if st.st_size > MAX_INPUT_BYTES:
            raise BadImage(f"{path} is {st.st_size:,} bytes; input images are limited to {MAX_INPUT_BYTES:,}")
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        data = f.read(MAX_INPUT_BYTES + 1)
    return data, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class _InfoCache:
    """ImageInfo by (path, device, inode, size, mtime, ctime): an edited file is never stale."""

    def __init__(self, size: int = 4096):
        self._items: OrderedDict[tuple[object, ...], ImageInfo] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, path: str, root: str = "") -> ImageInfo:
        data, identity = _read_once(path, root)
        key = (path, *identity)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        info = inspect_bytes(data, path)
        with self._lock:
            self._items[key] = info
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return info


_INFO = _InfoCache()


def inspect_file(path: str, root: str = "") -> ImageInfo:
    """Check a local image (no symbolic link, size cap, PNG/JPEG/WebP, decodes) and describe it."""
    return _INFO.get(path, root)


def inspect_bytes(data: bytes, name: str) -> ImageInfo:
    """Check image bytes (PNG/JPEG/WebP, pixel cap, decodes) and describe them."""
    if len(data) > MAX_INPUT_BYTES:
        raise BadImage(f"{name} is {len(data):,} bytes; input images are limited to {MAX_INPUT_BYTES:,}")
    try:
        decoded = images.decode(data, name, MAX_INPUT_PIXELS, "input images")
    except images.BadImageData as exc:
        raise BadImage(str(exc)) from exc
    return ImageInfo(
        hashlib.sha256(data).hexdigest(),
        decoded.width,
        decoded.height,
        decoded.format,
        images.black_and_white(decoded),
    )


def check_mask(image: ImageInfo, mask: ImageInfo) -> str | None:
    """Why a mask does not fit its image, or None when it does."""
    if (mask.width, mask.height) != (image.width, image.height):
        return (
            f"mask is {mask.width}x{mask.height} but the image is "
            f"{image.width}x{image.height}; they must be the same size"
        )
    if not mask.black_and_white:
        return "mask must be black and white only (black marks what to repaint)"
    return None


def check_url(url: str, allow_private: bool = False, resolve: bool = False) -> None:
    """Refuse non-http(s) URLs and, unless allowed, hosts that are not public.

    Loopback passes here: whether it is the provider's own host (the one exception) is
    decided by the guarded fetch (pipeline.fetch), which is the authority at run time.
    With `resolve` the name is looked up and every address is checked.
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
    address = fetch.literal_address(host)
    addresses = [address] if address else []
    if not addresses and resolve and host != "localhost":
        try:
            addresses = fetch.system_resolve(host, parts.port or 443)
        except (OSError, ValueError) as exc:
            raise BadImage(f"{url[:80]!r}: cannot resolve {host}") from exc
    for each in addresses:
        if not fetch.is_public(each) and not ipaddress.ip_address(each).is_loopback:
            raise BadImage(
                f"{url[:80]!r}: {host} is a private or link-local address "
                "(set allow_private_urls: true to allow it)"
            )
