"""Input images named by a step: rendered, checked and fingerprinted, once per file version."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .. import rows as rowsource
from .. import templating
from ..inputs import MAX_INPUT_BYTES, BadImage, ImageInfo, ImageRef, check_mask, check_url, inspect_bytes
from .session import Session, column_of

FileKey = tuple[str, int, int, int]  # (path, size, mtime_ns, inode)


class Images:
    """Checks the input images of one plan; a file is read again whenever it changes."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.allow_private = bool(s.data.get("allow_private_urls"))
        self._infos: dict[FileKey, ImageInfo | BadImage] = {}
        self._by_path: dict[str, ImageInfo | BadImage] = {}  # this plan's answer for each path

    def info(self, path: str) -> ImageInfo:
        """What the file at `path` holds; raises BadImage. Read once per plan, and again in the next."""
        found = self._by_path.get(path)
        if found is None:
            found = self._by_path[path] = self._stat_info(path)
        if isinstance(found, BadImage):
            raise BadImage(str(found))  # a fresh exception each time: no traceback piles up
        return found

    def _stat_info(self, path: str) -> ImageInfo | BadImage:
        try:
            st = os.stat(path)
        except OSError:
            return BadImage(f"file not found: {path}")
        key = (path, st.st_size, st.st_mtime_ns, st.st_ino)
        found = self._infos.get(key)
        if found is None:
            found = self._infos[key] = _inspect(path, st)
        return found

    def refs(
        self, name: str, value: Any, ctx: Mapping[str, Any], path: tuple[Any, ...], row: rowsource.Row
    ) -> tuple[ImageRef, ...] | None:
        """The image references of one field, or None after reporting the problem."""
        s = self.s
        refs = []
        for raw in value if isinstance(value, list) else [value]:
            text = s.render(raw, ctx, path, row)
            if text is None:
                return None
            text = text.strip()
            where = f"row {row.where(column_of(raw))}" if templating.is_template(raw) else None
            if not text:
                s.problem(path, f"{name} is empty", where)
                return None
            try:
                if "://" in text or text.startswith(("data:", "file:")):
                    check_url(text, self.allow_private)
                    refs.append(ImageRef("url", text))
                else:
                    file = str((s.r.base_dir / text).resolve())
                    refs.append(ImageRef("file", file, self.info(file).sha256))
            except BadImage as exc:
                s.problem(path, str(exc), where)
                return None
        return tuple(refs)

    def mask_fits(
        self, images: Mapping[str, tuple[ImageRef, ...]], step: dict[str, Any], i: int, row: rowsource.Row
    ) -> bool:
        """False (reported) when a local mask does not match its local image."""
        image, mask = images.get("image", ()), images.get("mask", ())
        if not (image and mask and image[0].kind == mask[0].kind == "file"):
            return True  # an image from a step or a URL is checked when it is fetched
        why = check_mask(self.info(image[0].value), self.info(mask[0].value))
        if why:
            self.s.problem(("steps", i, "mask"), why, f"row {row.where(column_of(step.get('mask')))}")
        return why is None


def _inspect(path: str, st: os.stat_result) -> ImageInfo | BadImage:
    """Read and check a file whose stat is `st`; a BadImage is returned, not raised."""
    import stat

    if not stat.S_ISREG(st.st_mode):
        return BadImage(f"{path} is not a regular file")
    if st.st_size > MAX_INPUT_BYTES:
        return BadImage(f"{path} is {st.st_size:,} bytes; input images are limited to {MAX_INPUT_BYTES:,}")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_INPUT_BYTES + 1)
        return inspect_bytes(data, path)
    except BadImage as exc:
        return exc
    except OSError as exc:
        return BadImage(f"{path}: cannot read: {exc.strerror or exc}")
