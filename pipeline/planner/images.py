"""Input images named by a step: rendered, checked and fingerprinted, once per file version."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .. import rows as rowsource
from .. import templating
from ..inputs import BadImage, ImageInfo, ImageRef, check_mask, check_url, inspect_file, local_file
from .session import Session, column_of


class Images:
    """Checks the input images of one plan; a file is read again whenever it changes."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.allow_private = bool(s.data.get("allow_private_urls"))
        self._by_path: dict[str, ImageInfo | BadImage] = {}  # this plan's answer for each path

    def info(self, ref: ImageRef) -> ImageInfo:
        """What the file of `ref` holds; raises BadImage. Read once per plan, and again in the next."""
        found = self._by_path.get(ref.value)
        if found is None:
            try:
                found = inspect_file(ref.value, ref.root)
            except BadImage as exc:
                found = exc
            self._by_path[ref.value] = found
        if isinstance(found, BadImage):
            raise BadImage(str(found))  # a fresh exception each time: no traceback piles up
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
                    ref = local_file(s.r.base_dir, text)
                    refs.append(replace(ref, digest=self.info(ref).sha256))
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
        why = check_mask(self.info(image[0]), self.info(mask[0]))
        if why:
            self.s.problem(("steps", i, "mask"), why, f"row {row.where(column_of(step.get('mask')))}")
        return why is None
