"""Measure the shipped models against the world's exact truth on held-out data.

Every figure carries ``n`` and a 95% interval: Wilson for rates, a percentile bootstrap for
Spearman and ROC AUC. Models are loaded from the written files through ``t2iscope.weights``, the
loader curation and the judges use, so the numbers describe what ships and what curation computes.
Judges for generated images: color by the world's palette rule (nearest palette color among
saturated pixels), kind by tiny-CLIP zero-shot, legs by counting dark connected components (the
renderer draws legs as separated dark strokes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from t2iscope.curate.world import spec
from t2iscope.generate.train.corpus import Corpus
from t2iscope.generate.train.recipe import MeasureRecipe
from t2iscope.intervals import wilson
from t2iscope.nets import clip_embeddings
from t2iscope.weights import AESTHETIC, OPEN_CLIP, STABLE_DIFFUSION, WATERMARK, load_model

COLOR_NAMES = tuple(spec.COLORS)
KIND_NAMES = tuple(spec.KINDS)
PALETTE = np.array(list(spec.COLORS.values()), dtype=np.float32)
SATURATED_FLOOR, SATURATED_SHARE = 0.25, 0.6  # color vote: saturation > max(floor, share x p99)
DARK_MAX = 80  # the renderer's "dark" threshold (max channel below it)
GEN_SEED_BASE = 1_000_000  # sampling seeds far from any seed used to make training data


def rate(correct: np.ndarray) -> dict[str, float]:
    k, n = int(np.sum(correct)), len(correct)
    low, high = wilson(k, n)
    return {"value": k / n if n else float("nan"), "n": n, "ci_low": low, "ci_high": high}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def roc_auc(score: np.ndarray, label: np.ndarray) -> float:
    from scipy.stats import rankdata

    pos = label.astype(bool)
    ranks = rankdata(score)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def bootstrap(fn: Any, a: np.ndarray, b: np.ndarray, seed: int = 0, reps: int = 500) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    stats = [fn(a[i], b[i]) for i in (rng.integers(0, len(a), len(a)) for _ in range(reps))]
    low, high = np.nanpercentile(stats, [2.5, 97.5])
    return {"value": fn(a, b), "n": len(a), "ci_low": float(low), "ci_high": float(high)}


# -- judges -----------------------------------------------------------------------------------


def palette_color(images: np.ndarray) -> np.ndarray:
    """Index into COLORS per HxWx3 uint8 image: majority nearest-palette vote of saturated pixels."""
    x = images.astype(np.float32)
    mx, mn = x.max(-1), x.min(-1)
    sat = (mx - mn) / np.maximum(mx, 1)
    # Palette bodies have saturation >= 0.72, pale backgrounds ~0.2; low-contrast renders shrink
    # both, so the cut is relative to the image's most saturated pixels, with a floor.
    top = np.percentile(sat.reshape(len(x), -1), 99, axis=1)[:, None, None]
    saturated = (mx > 60) & (sat > np.maximum(SATURATED_FLOOR, SATURATED_SHARE * top))
    dist = ((x[..., None, :] - PALETTE) ** 2).sum(-1)
    nearest = dist.argmin(-1)
    out = np.full(len(images), -1)
    for i in range(len(images)):
        votes = np.bincount(nearest[i][saturated[i]], minlength=len(PALETTE))
        if votes.sum():
            out[i] = int(votes.argmax())
    return out


def leg_count(images: np.ndarray) -> np.ndarray:
    """Dark connected components per image (the renderer's legs are separated 2 px dark strokes)."""
    from scipy import ndimage

    dark = images.max(-1) < DARK_MAX
    return np.array([ndimage.label(d)[1] for d in dark])


class ClipJudge:
    """Zero-shot color and kind with prompt ensembles over the other attribute."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, device: str = "cpu") -> None:
        self.model, self.device = model.to(device).eval(), device
        with torch.no_grad():
            prompts = [f"a photo of a {c} {k}" for c in spec.COLOR_WORDS["en"] for k in spec.KIND_WORDS["en"]]
            txt = F.normalize(model.encode_text(tokenizer(prompts).to(device)).float(), dim=-1)
            txt = txt.view(len(COLOR_NAMES), len(KIND_NAMES), -1)
            self.colors = F.normalize(txt.mean(1), dim=-1)
            self.kinds = F.normalize(txt.mean(0), dim=-1)

    @torch.no_grad()
    def __call__(self, images_uint8: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        emb = clip_embeddings(self.model, images_uint8, self.device).to(self.device)
        return (emb @ self.colors.T).argmax(-1).cpu().numpy(), (emb @ self.kinds.T).argmax(-1).cpu().numpy()


# -- measurements -----------------------------------------------------------------------------


def measure_scorers(models: Path, heldout: Corpus, device: str) -> dict[str, Any]:
    clip = load_model(models / "clip", device, expect=OPEN_CLIP)
    judge = ClipJudge(clip.model, clip.tokenizer, device)
    color, kind = judge(heldout.images)
    color_true = np.array([COLOR_NAMES.index(c) for c in heldout.truth["color"]])
    kind_true = np.array([KIND_NAMES.index(k) for k in heldout.truth["kind"]])
    predicted = load_model(models / "aesthetic", device, expect=AESTHETIC).score(heldout.images).numpy()
    pw = load_model(models / "watermark", device, expect=WATERMARK).score(heldout.images).numpy()
    truth_aes = heldout.truth["aesthetic"].astype(np.float64)
    return {
        "clip_zero_shot_color": rate(color == color_true),
        "clip_zero_shot_kind": rate(kind == kind_true),
        "aesthetic_spearman": bootstrap(spearman, predicted, truth_aes),
        "watermark_roc_auc": bootstrap(roc_auc, pw, heldout.truth["watermark"].astype(bool)),
    }


def generation_prompts(lang: str) -> list[tuple[str, int, int]]:
    """(prompt, color index, kind index) for every color x kind cell, in the language's short template."""
    template = spec.TEMPLATES[lang][2]
    return [
        (template.format(c=spec.COLOR_WORDS[lang][c], k=spec.KIND_WORDS[lang][k], u="", b=""), c, k)
        for c in range(len(COLOR_NAMES))
        for k in range(len(KIND_NAMES))
    ]


@torch.no_grad()
def generate(
    pipe: Any, prompts: list[str], seeds: list[int], cfg: float, steps: int, device: str, rescale: float = 0.0
) -> np.ndarray:
    """uint8 N x 64 x 64 x 3 images from the stock pipeline, one seed per prompt."""
    out = []
    for i in range(0, len(prompts), 64):
        gens = [torch.Generator(device="cpu").manual_seed(s) for s in seeds[i : i + 64]]
        images = pipe(
            prompts[i : i + 64],
            num_inference_steps=steps,
            guidance_scale=cfg,
            guidance_rescale=rescale,
            generator=gens,
            output_type="np",
        ).images
        out.append((np.clip(images, 0, 1) * 255).round().astype(np.uint8))
    return np.concatenate(out)


def _save_grid(images: np.ndarray, path: Path, columns: int = len(KIND_NAMES)) -> None:
    """One row per color, one column per kind: the first image of every cell, for eyeballing."""
    from PIL import Image

    from t2iscope import fileio

    rows = len(images) // columns
    grid = images[: rows * columns].reshape(rows, columns, 64, 64, 3).transpose(0, 2, 1, 3, 4)
    with fileio.atomic_path(path) as tmp:
        Image.fromarray(grid.reshape(rows * 64, columns * 64, 3)).save(tmp, format="PNG")


def measure_generator(
    models: Path, r: MeasureRecipe, device: str, samples: Path | None = None
) -> dict[str, Any]:
    """Adherence per (language, CFG); with ``samples``, also a PNG grid of each batch's first cells."""
    from tqdm import tqdm

    pipe = load_model(models / "sd", device, expect=STABLE_DIFFUSION)
    clip = load_model(models / "clip", device, expect=OPEN_CLIP)
    judge = ClipJudge(clip.model, clip.tokenizer, device)
    results: dict[str, Any] = {}
    jobs = [(lang, cfg, 0.0) for lang in r.languages for cfg in r.cfg_scales]
    if r.cfg_rescale:
        jobs.append((r.languages[0], max(r.cfg_scales), r.cfg_rescale))
    for lang, cfg, rescale in tqdm(jobs, desc="measure generator", unit="batch"):
        cells = generation_prompts(lang) * r.prompts_per_cell
        seeds = [GEN_SEED_BASE + i for i in range(len(cells))]
        images = generate(pipe, [p for p, _, _ in cells], seeds, cfg, r.steps, device, rescale)
        want_color = np.array([c for _, c, _ in cells])
        want_kind = np.array([k for _, _, k in cells])
        got_color = palette_color(images)
        _, got_kind = judge(torch.from_numpy(images).permute(0, 3, 1, 2))
        key = f"{lang}_cfg{cfg:g}" + (f"_rescale{rescale:g}" if rescale else "")
        if samples is not None:
            _save_grid(images[: len(COLOR_NAMES) * len(KIND_NAMES)], samples / f"{key}.png")
        legs = leg_count(images)
        expected = np.array([spec.KINDS[KIND_NAMES[k]] for k in want_kind])
        limbed = expected > 0
        results[key] = {
            "color": rate(got_color == want_color),
            "kind": rate(got_kind == want_kind),
            "color_and_kind": rate((got_color == want_color) & (got_kind == want_kind)),
            "legs": rate((legs == expected)[limbed]),
            "steps": r.steps,
            "sampler": type(pipe.scheduler).__name__,
            "cfg_scale": cfg,
            "cfg_rescale": rescale,
            "language": lang,
        }
    return results
