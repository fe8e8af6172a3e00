"""The ``world`` judge: reads synthetic scenes back with the world's own rendering rules.

- color: the palette hue that most strongly saturated pixels are closest to (backgrounds are pale,
  so the object's color wins by saturation; the border is ignored for the unsafe hazard frame);
- legs: connected components of dark (``LEG_COLOR``-ish) pixels, for limbed kinds only, since
  car wheels are dark too;
- kind and culture: nearest neighbour over shape masks against reference scenes drawn with
  ``render_scene`` itself (clean, random jitter), so the judge follows the renderer as it evolves;
- watermark: the renderer's two stamps, a darkened full-width text band or tiled white glyphs.

It is exact or near-exact on clean world images and degrades on blurred, noisy or generated ones
(measured against human labels of embedded-model generations: ``t2iscope evaluate validity``);
it knows only the world's words, so a suite asking for anything else is refused (``check``).
This is the only module of ``evaluate`` that reads the world's vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
from PIL import Image
from scipy import ndimage

from t2iscope.curate.world import spec
from t2iscope.evaluate.judges import judge
from t2iscope.evaluate.vocabulary import Vocabulary
from t2iscope.generate.attributes import NO, YES

S = spec.IMAGE_SIZE
BORDER = 6  # hazard frame width + 1
DARK_MAX = 80
MIN_LEG_PIXELS = 3
GRID = 16
REFS_PER_CLASS = 60
WATERMARK_BAND = 8.0  # grey levels; chosen on world images (98-99% agreement with the truth)
_PALETTE = np.array(list(spec.COLORS.values()), dtype=np.float32)


def _hue(rgb: np.ndarray) -> np.ndarray:
    """Hue in degrees of float RGB arrays (..., 3)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx, mn = rgb.max(-1), rgb.min(-1)
    d = np.where(mx - mn == 0, 1, mx - mn)
    h = np.where(mx == r, (g - b) / d % 6, np.where(mx == g, (b - r) / d + 2, (r - g) / d + 4))
    return h * 60.0


_PALETTE_HUE = _hue(_PALETTE)


def _prepare(img: Image.Image) -> np.ndarray:
    if img.size != (S, S):
        img = img.resize((S, S), Image.Resampling.BOX)
    return np.asarray(img.convert("RGB"), dtype=np.float32)


def _saturation(a: np.ndarray) -> np.ndarray:
    return a.max(-1) - a.min(-1)


def object_mask(a: np.ndarray) -> tuple[np.ndarray, int | None]:
    """Pixels of the object's palette hue, and the palette index (None if nothing stands out)."""
    sat = _saturation(a)
    inner = np.zeros(sat.shape, bool)
    inner[BORDER:-BORDER, BORDER:-BORDER] = True
    top = np.percentile(sat[inner], 99)
    strong = inner & (sat >= max(25.0, 0.5 * top)) & (a.max(-1) >= DARK_MAX)
    if strong.sum() < 4:
        return strong, None
    dist = np.abs(_hue(a[strong])[:, None] - _PALETTE_HUE[None, :])
    dist = np.minimum(dist, 360 - dist)
    votes = np.bincount(dist.argmin(1), weights=_saturation(a[strong]), minlength=len(_PALETTE))
    best = int(votes.argmax())
    hue = _hue(a)
    d = np.abs(hue - _PALETTE_HUE[best])
    mask = inner & (sat >= max(20.0, 0.35 * top)) & (np.minimum(d, 360 - d) < 20)
    return mask, best


def dark_components(a: np.ndarray, bridge: int = 0) -> tuple[np.ndarray, int]:
    """Labelled dark components inside the border and their count (small specks ignored).

    ``bridge`` closes vertical gaps up to that many pixels first, so a leg cut by a watermark's
    text stays one leg (legs are >= 2 px apart sideways, so this never joins two of them).
    """
    dark = a.max(-1) < DARK_MAX
    if bridge:
        dark = ndimage.binary_closing(dark, structure=np.ones((bridge, 1), bool))
    dark[:BORDER] = dark[-BORDER:] = False
    dark[:, :BORDER] = dark[:, -BORDER:] = False
    labels, n = ndimage.label(dark, structure=np.ones((3, 3)))
    if n == 0:
        return labels, 0
    sizes = ndimage.sum(dark, labels, index=range(1, n + 1))
    return labels, int((np.asarray(sizes) >= MIN_LEG_PIXELS).sum())


def foreground(a: np.ndarray) -> np.ndarray:
    """Pixels that differ from their row's background (the row median): object, roof, hat, legs."""
    bg = np.median(a, axis=1, keepdims=True)
    fg = np.abs(a - bg).sum(-1) > 60
    fg[:BORDER] = fg[-BORDER:] = False
    fg[:, :BORDER] = fg[:, -BORDER:] = False
    return fg


def shape_features(a: np.ndarray) -> np.ndarray:
    """Object, dark and foreground masks cropped to their box and pooled to GRID x GRID, plus aspect."""
    obj, _ = object_mask(a)
    dark = a.max(-1) < DARK_MAX
    fg = foreground(a)
    ys, xs = np.nonzero(fg | obj)
    if len(ys) == 0:
        return np.zeros(3 * GRID * GRID + 1, np.float32)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    chans = []
    for m in (obj, dark & fg, fg & ~obj & ~dark):
        crop = Image.fromarray((m[y0:y1, x0:x1] * 255).astype(np.uint8))
        chans.append(np.asarray(crop.resize((GRID, GRID), Image.Resampling.BOX), np.float32) / 255)
    aspect = np.log((x1 - x0) / (y1 - y0))
    return np.concatenate([c.ravel() for c in chans] + [np.array([aspect * 4], np.float32)])


def culture_features(a: np.ndarray) -> np.ndarray:
    """The top of the subject (roof or headwear), pooled to GRID x GRID: the object's shape there
    (roofs share the object's hue, whatever it is) and the colors of everything else (hats)."""
    obj, _ = object_mask(a)
    fg = foreground(a) | obj
    ys, xs = np.nonzero(fg)
    if len(ys) == 0:
        return np.zeros(GRID * GRID * 4, np.float32)
    y0, x0, x1 = ys.min(), xs.min(), xs.max() + 1
    y1 = y0 + max(2, int((ys.max() + 1 - y0) * 0.45))
    other = (a * (fg & ~obj)[..., None])[y0:y1, x0:x1].astype(np.uint8)
    shape = (obj[y0:y1, x0:x1] * 255).astype(np.uint8)
    pooled = [
        np.asarray(Image.fromarray(x).resize((GRID, GRID), Image.Resampling.BOX), np.float32) / 255
        for x in (other, shape)
    ]
    return np.concatenate([p.ravel() for p in pooled])


def _reference_row(kind: str, culture: str | None, key: int, rng: np.random.Generator) -> dict[str, Any]:
    return {
        "key": key,
        "kind": kind,
        "culture": culture,
        "legs": spec.KINDS[kind],
        "color": list(spec.COLORS)[int(rng.integers(len(spec.COLORS)))],
        "background": list(spec.BACKGROUNDS)[int(rng.integers(len(spec.BACKGROUNDS)))],
        "tiny": 0.0,
        "unsafe": False,
        "low_contrast": 0.0,
        "blur": 0.0,
        "noise": 0.0,
        "blockiness": 0.0,
        "watermark": False,
    }


@lru_cache(maxsize=1)
def references() -> tuple[np.ndarray, np.ndarray, list[tuple[str, str | None]]]:
    """Features of clean scenes rendered by the world itself, per (kind, culture) class."""
    from t2iscope.curate.world.render import render_scene

    rng = np.random.default_rng(12345)
    feats, cult, labels = [], [], []
    classes = [(k, c) for k in spec.KINDS for c in (spec.CULTURES if k in spec.CULTURE_KINDS else (None,))]
    for kind, culture in classes:
        for i in range(REFS_PER_CLASS):
            row = _reference_row(kind, culture, 10_000 + len(feats) * 7 + i, rng)
            row["watermark"] = i % 2 == 1  # stamps change the masks: learn both looks
            a = _prepare(render_scene(row))
            feats.append(shape_features(a))
            cult.append(culture_features(a))
            labels.append((kind, culture))
    return np.stack(feats), np.stack(cult), labels


def band_score(rows: np.ndarray) -> float:
    """How much darker the darkest 10-15-row band is than the 4 rows above and below it."""
    c = np.concatenate([[0.0], np.cumsum(rows)])
    best = 0.0
    for length in range(10, 16):
        s = np.arange(4, len(rows) - length - 4)
        inside = (c[s + length] - c[s]) / length
        above = (c[s] - c[s - 4]) / 4
        below = (c[s + length + 4] - c[s + length]) / 4
        if len(s):
            best = max(best, float((np.minimum(above, below) - inside).max()))
    return best


def visible_watermark(a: np.ndarray) -> bool:
    """The renderer's stamps darken full-width rows: look for a band on *both* edges of the image.

    Both edges, so that an object (or a tiny off-centre one) darkening one side is not a stamp.
    """
    lum = a.mean(-1)
    left = band_score(np.median(lum[:, 2:12], axis=1))
    right = band_score(np.median(lum[:, S - 12 : S - 2], axis=1))
    return min(left, right) >= WATERMARK_BAND


class WorldJudge:
    """Rule-based judge for the synthetic world's scenes."""

    name = "world"
    # attribute -> the words it can answer (None: any count)
    KNOWS: ClassVar[dict[str, tuple[str, ...] | None]] = {
        "subject": tuple(spec.KINDS),
        "color": tuple(spec.COLORS),
        "legs": None,
        "culture": spec.CULTURES,
        "watermark": (NO, YES),
    }

    def answers(self, vocabulary: Vocabulary) -> tuple[str, ...]:
        return tuple(self.KNOWS)

    def check(self, vocabulary: Vocabulary) -> str | None:
        for attribute, labels in vocabulary.labels.items():
            if attribute not in self.KNOWS:
                answers = ", ".join(self.KNOWS)
                return f"asks for {attribute}, which judge 'world' cannot answer (it answers {answers})"
            known = self.KNOWS[attribute]
            unknown = [str(v) for v in labels if known is not None and v not in known]
            if unknown:
                return (
                    f"asks for {attribute} {', '.join(unknown[:3])}: judge 'world' knows only the synthetic "
                    f"world's words ({', '.join(known or ())}); use judge 'clip'"
                )
        return None

    def attributes(
        self, images: Sequence[Image.Image], vocabulary: Vocabulary | None = None
    ) -> list[dict[str, Any]]:
        ref_feats, ref_cult, ref_labels = references()
        kinds = np.array([k for k, _ in ref_labels])
        out = []
        for img in images:
            a = _prepare(img)
            _, color = object_mask(a)
            f = shape_features(a)
            kind, culture = ref_labels[int(((ref_feats - f) ** 2).sum(1).argmin())]
            if culture is not None:  # second look, at the roof or headwear only, among this kind
                same = np.flatnonzero(kinds == kind)
                dist = ((ref_cult[same] - culture_features(a)) ** 2).sum(1)
                culture = ref_labels[int(same[dist.argmin()])][1]
            # Spider legs fan out 4 px apart vertically: bridging would join them.
            bridge = 0 if kind == "spider" else 7
            legs = dark_components(a, bridge)[1] if kind in spec.LIMBED_KINDS else 0
            out.append(
                {
                    "subject": kind,
                    "color": None if color is None else list(spec.COLORS)[color],
                    "legs": legs,
                    "culture": culture,
                    "watermark": YES if visible_watermark(a) else NO,
                }
            )
        return out


@judge("world")
def world_judge() -> WorldJudge:
    """Exact-by-construction judge for the embedded synthetic world."""
    return WorldJudge()
