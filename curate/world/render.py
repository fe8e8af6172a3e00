"""Render a scene's truth row as a 64x64 RGB image a person (and a pixel rule) can read.

Deterministic: the picture depends only on the truth row, and the row's ``key`` seeds the jitter.
Drawing order is the story of a web image: the scene (pale textured background, object in its
saturated palette color, culture-marked roof or headwear, dark countable legs), then what the
photographer did to it (an unsafe hazard frame, blur, noise, low contrast, JPEG blockiness), then
what the host did to it (a visible watermark on top).

Legs are ``spec.LEG_COLOR`` strokes 2 px wide with at least 2 px between them, and no other part of a
limbed subject is dark, so legs can be counted as connected components of dark pixels (max channel
below ``DARK_MAX``) on clean images. Car wheels are dark too: count legs on limbed kinds only.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from t2iscope.curate.world import spec

S = spec.IMAGE_SIZE
DARK_MAX = 80  # a pixel is "dark" (leg, wheel) when its max channel is below this
_SKIN = ((241, 200, 165), (224, 172, 120), (198, 134, 66), (141, 85, 36))
_HAT = {"western": (120, 80, 50), "east_asian": (214, 184, 112), "south_asian": (236, 234, 222)}
_WATERMARK_TEXT = ("© SAMPLE", "PREVIEW", "© stockpix", "© photoshop", "watermark")
_FONT = ImageFont.load_default(size=10)
_SMALL_FONT = ImageFont.load_default(size=8)


def _shade(c: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(int(v * f) for v in c)  # type: ignore[return-value]


def _tint(c: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(int(v + (255 - v) * f) for v in c)  # type: ignore[return-value]


def _background(name: str, rng: np.random.Generator) -> np.ndarray:
    """Pale spec color with a vertical gradient and a faint texture (never dark, never saturated)."""
    base = np.array(spec.BACKGROUNDS[name], dtype=np.float32)
    y = np.linspace(-1.0, 1.0, S, dtype=np.float32)[:, None, None]
    img = np.broadcast_to(base, (S, S, 3)) + y * np.float32(-10.0)
    if name == "grass":
        img = img + rng.normal(0, 6, (S, S, 1)).astype(np.float32) * np.array([0.6, 1.0, 0.6], np.float32)
    elif name == "beach":
        horizon = S // 3 + int(rng.integers(-3, 4))
        img[:horizon] = np.array(spec.BACKGROUNDS["sky"], np.float32) + y[:horizon] * -8
    elif name == "room":
        floor = 2 * S // 3 + int(rng.integers(-3, 4))
        img[floor:] -= 18
    else:
        img = img + rng.normal(0, 2, (S, S, 1)).astype(np.float32)
    return np.clip(img, 150, 255)


def _legs_down(d: ImageDraw.ImageDraw, x0: float, x1: float, y: float, n: int, length: float) -> None:
    """``n`` vertical legs spread over [x0, x1] at least 4 px apart (2 px stroke, 2 px gap)."""
    span = max(x1 - x0, 4.0 * (n - 1))
    mid = (x0 + x1) / 2
    xs = [mid - span / 2 + span * i / max(n - 1, 1) for i in range(n)] if n > 1 else [mid]
    for x in xs:
        xi = round(x)
        d.rectangle([xi, round(y), xi + 1, round(y + length)], fill=spec.LEG_COLOR)


def _draw_ball(
    d: ImageDraw.ImageDraw, cx: float, cy: float, s: float, c: tuple[int, int, int], **_: Any
) -> None:
    r = 13 * s
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=c, outline=_shade(c, 0.7))
    d.arc([cx - r + 3, cy - r + 3, cx + r - 3, cy + r - 3], 200, 250, fill=_tint(c, 0.6), width=2)


def _draw_cup(
    d: ImageDraw.ImageDraw, cx: float, cy: float, s: float, c: tuple[int, int, int], **_: Any
) -> None:
    w, h = 12 * s, 11 * s
    d.ellipse([cx + w - 5 * s, cy - h * 0.5, cx + w + 7 * s, cy + h * 0.6], outline=_shade(c, 0.75), width=3)
    d.polygon([(cx - w, cy - h), (cx + w, cy - h), (cx + w * 0.7, cy + h), (cx - w * 0.7, cy + h)], fill=c)
    d.ellipse([cx - w, cy - h - 2 * s, cx + w, cy - h + 2 * s], fill=_tint(c, 0.45), outline=_shade(c, 0.7))


def _draw_car(
    d: ImageDraw.ImageDraw, cx: float, cy: float, s: float, c: tuple[int, int, int], **_: Any
) -> None:
    w, h = 22 * s, 6 * s
    d.polygon(
        [
            (cx - w * 0.45, cy - h),
            (cx + w * 0.35, cy - h),
            (cx + w * 0.55, cy - h - 9 * s),
            (cx - w * 0.3, cy - h - 9 * s),
        ][::-1],
        fill=_shade(c, 0.85),
    )
    d.rectangle([cx - w * 0.22, cy - h - 7 * s, cx + w * 0.4, cy - h - 1], fill=(205, 225, 240))
    d.rounded_rectangle([cx - w, cy - h, cx + w, cy + h], radius=max(1, int(3 * s)), fill=c)
    for wx in (cx - w * 0.58, cx + w * 0.58):
        r = 5 * s
        d.ellipse([wx - r, cy + h - r, wx + r, cy + h + r], fill=(30, 30, 30))
        d.ellipse([wx - r / 3, cy + h - r / 3, wx + r / 3, cy + h + r / 3], fill=(170, 170, 170))


def _draw_house(
    d: ImageDraw.ImageDraw, cx: float, cy: float, s: float, c: tuple[int, int, int], culture: str, **_: Any
) -> None:
    w, h = 14 * s, 10 * s
    top = cy - h + 4 * s
    d.rectangle([cx - w, top, cx + w, cy + h + 4 * s], fill=c)
    d.rectangle([cx - 3 * s, cy + 2 * s, cx + 3 * s, cy + h + 4 * s], fill=_shade(c, 0.62))
    d.rectangle([cx - w + 3 * s, top + 4 * s, cx - w + 8 * s, top + 9 * s], fill=(235, 240, 250))
    d.rectangle([cx + w - 8 * s, top + 4 * s, cx + w - 3 * s, top + 9 * s], fill=(235, 240, 250))
    roof = _shade(c, 0.62)
    if culture == "east_asian":  # tiered pagoda roof with upturned eaves
        for tier, (rw, ry) in enumerate(((w + 6 * s, top), (w * 0.7, top - 7 * s))):
            d.polygon(
                [
                    (cx - rw - 3 * s, ry - 4 * s),
                    (cx - rw + 2 * s, ry - 1 * s),
                    (cx + rw - 2 * s, ry - 1 * s),
                    (cx + rw + 3 * s, ry - 4 * s),
                    (cx + rw * 0.6, ry - 7 * s),
                    (cx - rw * 0.6, ry - 7 * s),
                ],
                fill=roof,
            )
            if tier == 0:
                d.rectangle([cx - w * 0.55, ry - 8 * s, cx + w * 0.55, ry - 6 * s], fill=c)
    elif culture == "south_asian":  # onion dome with a finial
        r = w * 0.85
        d.pieslice([cx - r, top - r, cx + r, top + r], 180, 360, fill=roof)
        d.polygon([(cx - 2 * s, top - r + 1), (cx + 2 * s, top - r + 1), (cx, top - r - 6 * s)], fill=roof)
    else:  # gabled triangle
        d.polygon([(cx - w - 4 * s, top), (cx + w + 4 * s, top), (cx, top - 14 * s)], fill=roof)


def _draw_dog(
    d: ImageDraw.ImageDraw, cx: float, cy: float, s: float, c: tuple[int, int, int], legs: int, **_: Any
) -> None:
    w, h = 13 * s, 5.5 * s
    d.line([(cx - w + 1, cy - 2 * s), (cx - w - 5 * s, cy - 9 * s)], fill=_shade(c, 0.8), width=3)
    _legs_down(d, cx - w + 3, cx + w - 4, cy + h - 1, legs, 9 * s)
    d.rounded_rectangle([cx - w, cy - h, cx + w, cy + h], radius=max(1, int(4 * s)), fill=c)
    hx, hy, r = cx + w + 1, cy - h - 3 * s, 5.5 * s
    d.ellipse([hx - r, hy - r, hx + r, hy + r], fill=c)
    d.polygon(
        [(hx - r * 0.9, hy - r * 0.3), (hx - r * 0.2, hy - r * 0.6), (hx - r * 0.7, hy + r * 0.9)],
        fill=_shade(c, 0.7),
    )
    d.ellipse([hx + r * 0.5, hy - r * 0.1, hx + r * 1.5, hy + r * 0.7], fill=_tint(c, 0.3))
    d.point([(hx + 1, hy - 2)], fill=(250, 250, 250))


def _draw_bird(
    d: ImageDraw.ImageDraw, cx: float, cy: float, s: float, c: tuple[int, int, int], legs: int, **_: Any
) -> None:
    w, h = 9 * s, 6.5 * s
    _legs_down(d, cx - 3 * s, cx + 3 * s, cy + h - 1, legs, 8 * s)
    d.polygon(
        [(cx - w + 1, cy - 1), (cx - w - 7 * s, cy - 5 * s), (cx - w - 6 * s, cy + 3 * s)],
        fill=_shade(c, 0.8),
    )
    d.ellipse([cx - w, cy - h, cx + w, cy + h], fill=c)
    d.ellipse([cx - w * 0.6, cy - h * 0.4, cx + w * 0.4, cy + h * 0.6], fill=_shade(c, 0.75))
    hx, hy, r = cx + w * 0.75, cy - h - 1 * s, 4.5 * s
    d.ellipse([hx - r, hy - r, hx + r, hy + r], fill=c)
    d.polygon([(hx + r - 1, hy - 2 * s), (hx + r + 6 * s, hy), (hx + r - 1, hy + 2 * s)], fill=(235, 150, 60))
    d.point([(hx + 1, hy - 1)], fill=(250, 250, 250))


def _draw_spider(
    d: ImageDraw.ImageDraw, cx: float, cy: float, s: float, c: tuple[int, int, int], legs: int, **_: Any
) -> None:
    # Each leg is the same bent shape rotated about the body's centre, so neighbours stay a fixed
    # angle apart and never touch; the body hides where they converge.
    per_side = (legs + 1) // 2
    spread = np.radians(130 if per_side <= 4 else 145)
    r = max(9 * s, 4.2 / (2 * np.sin(spread / per_side / 2)))  # legs >= 4.2 px apart where they emerge
    for side, n in ((-1, per_side), (1, legs // 2)):
        for i in range(n):
            theta = spread * ((i + 0.5) / n - 0.5)
            knee_r, bend = r + 7 * s, theta + np.radians(45)
            start = (cx + side * (r - 2) * np.cos(theta), cy + (r - 2) * np.sin(theta))
            knee = (cx + side * knee_r * np.cos(theta), cy + knee_r * np.sin(theta))
            foot = (knee[0] + side * 6 * s * np.cos(bend), knee[1] + 6 * s * np.sin(bend))
            d.line([start, knee, foot], fill=spec.LEG_COLOR, width=2)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=c, outline=_shade(c, 0.7))
    d.ellipse([cx - r * 0.5, cy - r - 4 * s, cx + r * 0.5, cy - r + 3 * s], fill=_shade(c, 0.8))


def _draw_person(
    d: ImageDraw.ImageDraw,
    cx: float,
    cy: float,
    s: float,
    c: tuple[int, int, int],
    legs: int,
    culture: str,
    skin: tuple[int, int, int],
    **_: Any,
) -> None:
    w, h = 6.5 * s, 9 * s
    body_top = cy - h
    _legs_down(d, cx - w + 2, cx + w - 3, cy + h - 1, legs, 10 * s)
    d.line([(cx - w, body_top + 2 * s), (cx - w - 4 * s, cy + 2 * s)], fill=c, width=3)
    d.line([(cx + w, body_top + 2 * s), (cx + w + 4 * s, cy + 2 * s)], fill=c, width=3)
    d.rounded_rectangle([cx - w, body_top, cx + w, cy + h], radius=max(1, int(2 * s)), fill=c)
    hr = 5 * s
    hy = body_top - hr - 0.5
    d.ellipse([cx - hr, hy - hr, cx + hr, hy + hr], fill=skin)
    hat = _HAT[culture]
    if culture == "east_asian":  # conical hat
        d.polygon(
            [(cx - hr - 5 * s, hy - hr * 0.2), (cx + hr + 5 * s, hy - hr * 0.2), (cx, hy - hr - 6 * s)],
            fill=hat,
            outline=_shade(hat, 0.75),
        )
    elif culture == "south_asian":  # round turban
        d.ellipse(
            [cx - hr - 1.5 * s, hy - hr - 4 * s, cx + hr + 1.5 * s, hy + hr * 0.1],
            fill=hat,
            outline=(150, 150, 145),
        )
        d.arc([cx - hr, hy - hr - 3 * s, cx + hr, hy], 200, 340, fill=(150, 150, 145))
    else:  # brimmed hat
        d.rectangle([cx - hr - 4 * s, hy - hr * 0.55, cx + hr + 4 * s, hy - hr * 0.55 + 1.5 * s], fill=hat)
        d.rectangle([cx - hr * 0.75, hy - hr - 4 * s, cx + hr * 0.75, hy - hr * 0.5], fill=hat)


_DRAW = {
    "ball": _draw_ball,
    "cup": _draw_cup,
    "car": _draw_car,
    "house": _draw_house,
    "dog": _draw_dog,
    "bird": _draw_bird,
    "spider": _draw_spider,
    "person": _draw_person,
}


def _hazard_frame(img: Image.Image) -> None:
    """Yellow/black diagonal stripes around the border: the world's stand-in for unsafe content."""
    stripes = Image.new("RGB", (S, S), (250, 205, 0))
    d = ImageDraw.Draw(stripes)
    for x in range(-S, 2 * S, 8):
        d.line([(x, 0), (x + S, S)], fill=(25, 25, 25), width=3)
    mask = Image.new("L", (S, S), 255)
    ImageDraw.Draw(mask).rectangle([5, 5, S - 6, S - 6], fill=0)
    img.paste(stripes, (0, 0), mask)


def _degrade(img: Image.Image, row: Mapping[str, Any], rng: np.random.Generator) -> Image.Image:
    low, blur = float(row["low_contrast"]), float(row["blur"])
    noise, blocky = float(row["noise"]), float(row["blockiness"])
    if low > 0:
        arr = np.asarray(img, dtype=np.float32)
        arr = arr.mean() + (arr - arr.mean()) * (1.0 - 0.7 * low)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(0.5 + 1.5 * blur))
    if noise > 0:
        arr = np.asarray(img, dtype=np.float32) + rng.normal(0, 6 + 30 * noise, (S, S, 3)).astype(np.float32)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if blocky > 0:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=max(2, int(22 - 20 * blocky)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


def _watermark(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A semi-transparent text band or a tiled "©" pattern, as stock sites stamp previews."""
    layer = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    if rng.random() < 0.6:
        y = int(rng.integers(20, 44))
        d.rectangle([0, y, S, y + 13], fill=(90, 90, 90, 95))
        text = _WATERMARK_TEXT[int(rng.integers(0, len(_WATERMARK_TEXT)))]
        d.text((int(rng.integers(1, 8)), y), text, font=_FONT, fill=(255, 255, 255, 225))
    else:
        dx, dy = int(rng.integers(0, 10)), int(rng.integers(0, 10))
        for row, y in enumerate(range(-4 + dy, S, 14)):
            for x in range(-8 + dx + 7 * (row % 2), S, 16):
                d.text(
                    (x, y),
                    "©",
                    font=_FONT,
                    fill=(255, 255, 255, 200),
                    stroke_width=1,
                    stroke_fill=(110, 110, 110, 120),
                )
    return Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB")


def render_scene(row: Mapping[str, Any]) -> Image.Image:
    """The 64x64 RGB image of one truth row (a dict with the truth table's columns)."""
    rng = np.random.default_rng(int(row["key"]))
    img = Image.fromarray(_background(row["background"], rng).astype(np.uint8))
    tiny = float(row["tiny"])
    if tiny > 0:  # small and off-centre: the composition flaw behind the "tiny" degradation
        s = 0.55 - 0.15 * tiny
        cx = S / 2 + rng.choice([-1, 1]) * rng.uniform(13, 18)
        cy = S / 2 + rng.choice([-1, 1]) * rng.uniform(10, 16)
    else:
        s = rng.uniform(0.85, 1.12)
        cx, cy = S / 2 + rng.uniform(-4, 4), S / 2 + 2 + rng.uniform(-3, 3)
    skin = _SKIN[int(rng.integers(0, len(_SKIN)))]
    d = ImageDraw.Draw(img)
    _DRAW[row["kind"]](
        d,
        cx,
        cy,
        s,
        spec.COLORS[row["color"]],
        legs=int(row["legs"]),
        culture=row["culture"] or "western",
        skin=skin,
    )
    if row["unsafe"]:
        _hazard_frame(img)
    img = _degrade(img, row, rng)
    if row["watermark"]:
        img = _watermark(img, rng)
    return img
