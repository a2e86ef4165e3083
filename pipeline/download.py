"""Downloading result images: through the guarded fetch, capped, verified, written atomically."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from . import images
from .errors import DownloadError, DownloadExpired
from .fetch import Fetcher, FetchRefused, FetchTimeout, FetchTooLarge
from .files import write_atomic
from .transport import Deadline, Timeouts

MAX_BYTES = 64 * 1024 * 1024
FORMATS = images.FORMATS
sniff = images.sniff


@dataclass(frozen=True)
class Saved:
    """A verified image written to its final path."""

    path: Path
    sha256: str
    width: int
    height: int
    size: int
    format: str


def verify(data: bytes) -> tuple[str, int, int]:
    """Check bytes are a whole PNG/JPEG/WebP by sniffing and decoding; (format, w, h)."""
    decoded = _decode(data)
    return decoded.format, decoded.width, decoded.height


def _decode(data: bytes) -> images.Decoded:
    try:
        return images.decode(data, "the downloaded image")
    except images.BadImageData as exc:
        raise DownloadError(str(exc)) from exc


def get(
    fetcher: Fetcher,
    url: str,
    timeouts: Timeouts | None = None,
    max_bytes: int = MAX_BYTES,
    attempts: int = 3,
    deadline: Deadline | None = None,
) -> bytes:
    """Download a URL's bytes, retrying broken bodies, all within `timeouts.total`.

    A caller's `deadline` (what is left of the task's) replaces `timeouts.total`.
    Refused URLs, expired URLs, oversized bodies and a passed deadline are not retried.
    """
    timeouts = timeouts or Timeouts()
    deadline = deadline or Deadline(timeouts.total)
    if deadline.expired():
        raise FetchTimeout(f"no time left to download: timeouts.total ({deadline.seconds:g} s) has passed")
    last: DownloadError | None = None
    for _ in range(attempts):
        try:
            return fetcher.get(url, timeouts, max_bytes, deadline).data
        except (DownloadExpired, FetchRefused, FetchTooLarge, FetchTimeout):
            raise
        except DownloadError as exc:
            last = exc
        if deadline.expired():
            break
    raise DownloadError(f"download failed after {attempts} attempts: {last}") from last


def save(data: bytes, dest: Path) -> Saved:
    """Verify an image and write it atomically (never a partial file at `dest`)."""
    decoded = _decode(data)
    write_atomic(dest, data)
    return Saved(
        dest, hashlib.sha256(data).hexdigest(), decoded.width, decoded.height, len(data), decoded.format
    )
