"""How the page points at pictures: relative links (the light report) or data: URIs (the bundle).

The bundle is one HTML file that carries every thumbnail inside it, so it shows every
picture when it is mailed alone; it links to no file, since none travels with it.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

_MIME = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG": "image/png", b"GIF8": "image/gif"}


def sniff(data: bytes) -> str | None:
    """The image MIME type of some bytes, from their signature; None if not an image."""
    for magic, mime in _MIME.items():
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass
class Linker:
    """Turns files into the URLs the page uses, relative to the report or embedded."""

    out_dir: Path
    bundle: bool = False
    _embedded: dict[Path, str] = field(default_factory=dict, repr=False)

    def picture(self, path: Path) -> str | None:
        """The URL of a thumbnail (or a small image); None if the bundle cannot embed it."""
        if not self.bundle:
            return self._relative(path)
        if path not in self._embedded:
            try:
                data = path.read_bytes()
            except OSError:
                return None
            mime = sniff(data)
            if mime is None:
                return None
            self._embedded[path] = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
        return self._embedded[path]

    def file(self, path: Path) -> str | None:
        """A link to a full-size file on disk; none in the bundle (the file does not travel)."""
        if self.bundle or not path.is_file():
            return None
        return self._relative(path)

    def _relative(self, path: Path) -> str:
        return quote(Path(os.path.relpath(path, self.out_dir)).as_posix())
