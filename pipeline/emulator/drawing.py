"""Deterministic pictures: a prompt and a key always draw the same, recognisable image.

The prompt picks the palette (so one prompt's variations look related on a contact
sheet) and the key, which includes the seed, picks the layout. The first words of the
prompt are written across the bottom, and the prompt is stored in a PNG tEXt chunk so
that /describe can read it back.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import random

from PIL import Image, ImageDraw, ImageFont, ImageOps
from PIL.PngImagePlugin import PngInfo

Size = tuple[int, int]

_NAMED_COLOURS = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "grey": (128, 128, 128),
    "red": (200, 40, 40),
    "orange": (235, 140, 30),
    "yellow": (235, 220, 60),
    "green": (50, 160, 70),
    "teal": (30, 150, 150),
    "blue": (40, 80, 200),
    "purple": (130, 60, 170),
    "pink": (235, 130, 180),
    "brown": (120, 80, 40),
}


def _rng(*parts: str) -> random.Random:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


@functools.lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def picture(key: str, prompt: str, size: Size) -> Image.Image:
    """A new RGB picture for `prompt`, laid out by `key` (which includes the seed)."""
    w, h = size
    palette, layout = _rng("palette", prompt), _rng("layout", key)
    hue = palette.random()
    img = Image.new("RGB", size, _hsv(hue, 0.35 + 0.3 * palette.random(), 0.85))
    draw = ImageDraw.Draw(img)
    horizon = int(h * (0.35 + 0.4 * layout.random()))
    draw.rectangle((0, horizon, w, h), fill=_hsv(hue + 0.5, 0.5, 0.55 + 0.3 * palette.random()))
    for _ in range(3 + layout.randrange(4)):
        colour = _hsv(
            hue + layout.uniform(-0.25, 0.25) + layout.choice((0.0, 0.33, 0.66)),
            0.5 + 0.5 * layout.random(),
            0.4 + 0.6 * layout.random(),
        )
        cx, cy = layout.uniform(0, w), layout.uniform(0, h)
        r = layout.uniform(0.08, 0.3) * min(w, h)
        kind = layout.randrange(3)
        if kind == 0:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
        elif kind == 1:
            draw.rectangle((cx - r, cy - r * 0.6, cx + r, cy + r * 0.6), fill=colour)
        else:
            draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=colour)
    caption(img, prompt)
    return img


def caption(img: Image.Image, text: str) -> None:
    """Write the first words of `text` on a dark band along the bottom of `img`."""
    w, h = img.size
    words = text.split()
    if not words or h < 16:
        return
    font = _font(max(8, min(w // 16, h // 10)))
    draw = ImageDraw.Draw(img)
    lines: list[str] = []
    line = ""
    for word in words[:12]:
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=font) > w - 8:
            lines.append(line)
            if len(lines) == 2:
                break
            line = word
        else:
            line = trial
    else:
        lines.append(line)
    size = getattr(font, "size", 11)
    top = h - len(lines) * (size + 3) - 6
    draw.rectangle((0, top, w, h), fill=(20, 20, 20))
    for i, text_line in enumerate(lines):
        draw.text((4, top + 3 + i * (size + 3)), text_line, fill=(255, 255, 255), font=font)


def fit(img: Image.Image, size: Size) -> Image.Image:
    """`img` as RGB, cropped to the aspect of `size` and resized to it."""
    return ImageOps.fit(img.convert("RGB"), size, Image.Resampling.BILINEAR)


def remix(key: str, prompt: str, size: Size, source: Image.Image, weight: int) -> Image.Image:
    """A new picture blended with `source`; a higher weight keeps more of the source."""
    return Image.blend(picture(key, prompt, size), fit(source, size), 0.8 * weight / 100)


def edit(key: str, prompt: str, size: Size, source: Image.Image, mask: Image.Image) -> Image.Image:
    """`source` with its black mask area repainted by a new picture."""
    keep = fit(mask.convert("L"), size).convert("L")
    return Image.composite(fit(source, size), picture(key, prompt, size), keep)


def inset(key: str, prompt: str, size: Size, source: Image.Image, share: float) -> Image.Image:
    """A new picture with `source` pasted in its centre, scaled to `share` of the canvas."""
    canvas = picture(key, prompt, size)
    thumb = ImageOps.contain(
        source.convert("RGB"), (max(1, int(size[0] * share)), max(1, int(size[1] * share)))
    )
    canvas.paste(thumb, ((size[0] - thumb.width) // 2, (size[1] - thumb.height) // 2))
    return canvas


def upscale(key: str, source: Image.Image) -> Image.Image:
    """`source` at exactly twice its size, with a small seed-coloured mark in one corner."""
    big = source.convert("RGB").resize((source.width * 2, source.height * 2), Image.Resampling.BILINEAR)
    layout = _rng("upscale", key)
    side = max(1, min(big.size) // 16)
    ImageDraw.Draw(big).rectangle(
        (big.width - side, big.height - side, big.width, big.height),
        fill=_hsv(layout.random(), 0.9, 0.9),
    )
    return big


def encode_png(img: Image.Image, text: dict[str, str]) -> bytes:
    """PNG bytes of `img` with `text` as tEXt chunks; fast, low compression."""
    info = PngInfo()
    for k, v in text.items():
        if v.isascii():
            info.add_text(k, v)
        else:
            info.add_itxt(k, v)
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=1, pnginfo=info)
    return out.getvalue()


def embedded_prompt(img: Image.Image) -> str | None:
    """The prompt stored in an emulator-made PNG, if any."""
    value = img.info.get("prompt")
    return value if isinstance(value, str) else None


def describe(img: Image.Image) -> str:
    """A deterministic one-line description: the stored prompt, else size and colour."""
    prompt = embedded_prompt(img)
    if prompt:
        return f"An image of {prompt}"
    r, g, b = img.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))  # type: ignore[misc]
    name = min(
        _NAMED_COLOURS,
        key=lambda n: (
            (_NAMED_COLOURS[n][0] - r) ** 2
            + (_NAMED_COLOURS[n][1] - g) ** 2
            + (_NAMED_COLOURS[n][2] - b) ** 2
        ),
    )
    tone = "dark" if r + g + b < 200 else "light" if r + g + b > 560 else "mid"
    return f"A {img.width}x{img.height} picture in mostly {tone} {name} tones"
