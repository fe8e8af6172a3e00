"""Image quality and text alignment of generations against a reference set (issue 19).

For every generation folder (a model x suite run) and every setting of its grid (``cfg_scale``,
``steps``, ``sampler``) and prompt language, against one reference set (a ``curate download``
folder: the training data's own distribution; img2dataset shards; any image folder):

- ``clip_score`` (Hessel et al. 2021), also per prompt, and the reference's own captions as a
  baseline (run ``(reference)``);
- ``fd``, ``kid``, ``precision``, ``recall``, ``density``, ``coverage`` in the ``encoder``'s
  feature space (the embedded CLIP by default; any open_clip, torchvision or timm model from a
  local file, as dgm-eval recommends DINOv2 over Inception);
- ``cmmd`` (Jayasumana et al. 2024) on the ``clip`` model's embeddings;
- ``vendi`` (Friedman & Dieng 2023) per prompt (its images across seeds), and its mean over prompts;
- the ``aesthetic`` head's scores: mean and deciles (``q``) of each run and of the reference, and
  the gap of means (``aesthetic_gap``);
- ``nearest_reference``: each generated image's closest reference images (cosine distance in the
  encoder's features; the dashboard's Quality page shows them).

Formulas and intervals: ``evaluate.quality_metrics``; features, preprocessing and the cache:
``evaluate.features``. Rows carry ``run``, ``by`` (all, cfg_scale, steps, sampler, language,
prompt), ``level``, ``curve`` (the trade-off plot's curves: ``(all)`` or ``steps <s>`` for cfg
levels at one step count), ``encoder`` and ``n_reference``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from t2iscope.config import NonNegInt, PositiveInt, location, parse
from t2iscope.errors import ConfigError, DataError
from t2iscope.evaluate import quality_metrics as Q
from t2iscope.evaluate.audits.base import AUDITS
from t2iscope.evaluate.context import AuditContext
from t2iscope.evaluate.features import (
    EncoderSpec,
    Features,
    clip_encoder,
    extract,
    file_images,
    make_encoder,
    open_clip_folder,
    reference_images,
)
from t2iscope.evaluate.stats import NBoot
from t2iscope.evaluate.tables import measure, skipped, tidy
from t2iscope.paths import models_dir

ALL = "(all)"
REFERENCE = "(reference)"
FACTORS = ("cfg_scale", "steps", "sampler", "language")
DECILES = tuple(round(0.1 * i, 1) for i in range(1, 10))
PRDC = ("precision", "recall", "density", "coverage")
LABELS = {"fd": "FD", "kid": "KID", "cmmd": "CMMD", "vendi": "Vendi", **dict.fromkeys(PRDC, "PRDC")}


def minimum_images(metric: str, k: int = Q.PRDC_K) -> int:
    """The fewest images each set (generated, reference) needs for ``metric``: 2 for FD and KID (a
    covariance, an off-diagonal kernel mean) and CMMD (an interval needs two images to resample),
    ``k + 1`` for PRDC (each image's k-th nearest other image; Naeem et al. 2020), 2 for a
    prompt's Vendi score (one image has no diversity to measure)."""
    return k + 1 if metric in PRDC else 2


def shortfall(metric: str, n_generated: int, n_reference: int, k: int = Q.PRDC_K) -> str:
    """Why ``metric`` cannot be computed for these set sizes ('' when it can), as the row's note:
    ``too few generated images: 1; FD needs >= 2``."""
    need, label = minimum_images(metric, k), LABELS.get(metric, metric)
    why = [f"too few generated images: {n_generated}"] if n_generated < need else []
    why += [f"reference set too small: {n_reference} images"] if n_reference < need else []
    if not why:
        return ""
    return f"{' and '.join(why)}; {label} needs >= {need}" + (f" (k+1, k = {k})" if metric in PRDC else "")


@contextmanager
def _field(source: str, name: str) -> Iterator[None]:
    """Loading errors re-raised naming the YAML file and field: ``a.yaml: audits.quality.clip: ...``."""
    try:
        yield
    except (ConfigError, DataError) as exc:
        raise type(exc)(f"{location(source, ('audits', 'quality', name))}: {exc}") from None


def check_reference(ctx: AuditContext, params: Mapping[str, Any]) -> tuple[tuple[str, ...], str] | None:
    """The record's ``check_data``: ``reference``, when given, is a folder. Checked with the other
    input paths before any audit runs, not when AUDIT.yaml is read (a shipped config names the
    demo's folders before they exist)."""
    if params.get("reference") is None:
        return None
    path = Path(str(params["reference"]))
    if not path.is_dir():
        return ("reference",), f"{path}: not found (a download folder, img2dataset shards or an image folder)"
    return None


def _reference_path(ctx: AuditContext, reference: str | None) -> Path:
    if reference is not None:
        return Path(reference)
    world = ctx.inputs.world
    if world is None or not (Path(world) / "images").is_dir():
        raise ConfigError(
            "audit 'quality' needs reference: (a download folder, shards or images) or a world with images"
        )
    return Path(world) / "images"


def _factor_levels(df: pd.DataFrame, factor: str) -> list[Any]:
    return sorted(df[factor].dropna().unique().tolist(), key=lambda v: (str(type(v)), v))


@AUDITS.audit(
    "quality",
    title="Image quality against the reference set",
    section="t2iscope.evaluate.report_quality:section_quality",
    order=45,
    headline=("cmmd", {"by": "all"}, "min", "CMMD of the closest run to the reference set"),
    needs=("generation",),
    check_data=check_reference,
)
def quality_audit(
    ctx: AuditContext,
    reference: str | None = None,
    encoder: EncoderSpec | None = None,
    clip: str | None = None,
    aesthetic: str | None = None,
    k: PositiveInt = Q.PRDC_K,
    max_reference: PositiveInt = 10_000,
    neighbours: NonNegInt = 3,
    n_boot: NBoot = 100,
) -> pd.DataFrame:
    """Quality, alignment, diversity and aesthetics of each run and setting against ``reference``
    (a download folder, img2dataset shards or an image folder; default: ``inputs.world``'s images).

    ``encoder`` (FD, KID, PRDC, Vendi, neighbours; default the embedded CLIP), ``clip`` (an
    open_clip folder for CLIPScore and CMMD; default ``models/clip``), ``aesthetic`` (a
    ``laion-improved-aesthetic-mlp`` folder; default ``models/aesthetic``), ``k`` (PRDC's
    neighbours), ``max_reference`` (a seeded sample of larger sets), ``neighbours`` (nearest
    reference images kept per generated image; 0: none).
    """
    from t2iscope.weights import AESTHETIC, load_model

    spec = parse(EncoderSpec, encoder or {}, ctx.source, ("audits", "quality", "encoder"))
    gen = ctx.manifest().copy()  # first: an audit without generations stops before loading models
    gen["run"] = [Path(g).name for g, df, _ in ctx.manifests() for _ in range(len(df))]
    # 1. encoders: features shared through the cache when two of them are the same model
    with _field(ctx.source, "encoder"):
        feat_enc = make_encoder(spec)
    with _field(ctx.source, "clip"):
        clip_enc = clip_encoder(clip and open_clip_folder(clip), spec.device)
    with _field(ctx.source, "aesthetic"):
        aes_folder = (
            open_clip_folder(aesthetic, "an aesthetic head folder")
            if aesthetic
            else models_dir() / "aesthetic"
        )
        head = load_model(aes_folder, spec.device, expect=AESTHETIC)
        aes_enc = clip_encoder(head.clip.folder, spec.device)
    aes_judge = f"aesthetic:{aes_folder.name}"  # the head scores; aes_enc only feeds it
    # 2. the reference set (a seeded sample when large) and every generated image
    ref_set = reference_images(_reference_path(ctx, reference))
    if len(ref_set) > max_reference:
        keep = np.sort(np.random.default_rng(ctx.seed).choice(len(ref_set), max_reference, replace=False))
        ref_set = ref_set.take(keep)
    gen_set = file_images("generated", list(gen["image_file"]))
    rows: list[dict[str, Any]] = []

    def features(encoder: Any) -> tuple[Features, Features]:
        return extract(ref_set, encoder), extract(gen_set, encoder)

    ref_f, gen_f = features(feat_enc)
    ref_c, gen_c = features(clip_enc) if clip_enc.fingerprint != feat_enc.fingerprint else (ref_f, gen_f)
    ref_a, gen_a = features(aes_enc) if aes_enc.fingerprint != clip_enc.fingerprint else (ref_c, gen_c)
    for status, count in pd.Series([e for e in gen_f.errors if e]).value_counts().items():
        rows.append(skipped(int(count), f"generated image {status}"))
    bad_ref = int((~ref_f.ok).sum())
    if bad_ref:
        rows.append(skipped(bad_ref, "reference image missing or unreadable", run=REFERENCE))
    ok = gen_f.ok & gen_c.ok
    gen = gen[ok].reset_index(drop=True)
    g_feat, g_clip = gen_f.values[ok].astype(np.float64), gen_c.values[ok].astype(np.float64)
    r_feat, r_clip = ref_f.values[ref_f.ok].astype(np.float64), ref_c.values[ref_c.ok].astype(np.float64)
    n_ref = len(r_feat)
    # 3. per-image scores: CLIPScore against each image's own prompt, aesthetic head
    g_score = Q.clip_scores(g_clip, clip_enc.encode_text(list(gen["prompt"].astype(str))))
    g_aes = _aesthetic(head, gen_a.values[ok])
    r_aes = _aesthetic(head, ref_a.values[ref_a.ok])
    # 4. reference-side work done once for every group
    ref_stats = Q.gaussian_stats(r_feat) if n_ref >= 2 else None
    ref_self = Q.reference_self_kernel(r_clip) if n_ref else math.nan
    ref_radii = Q.knn_radii(r_feat, k) if n_ref > k else None
    extra = {"n_reference": n_ref}

    def put(metric: str, est: Q.Estimate, enc: str, note: str = "", **slices: Any) -> None:
        note = note or (_no_interval(est.n) if est.n and not np.isfinite(est.ci[0]) else "")
        rows.append(measure(metric, est.value, est.n, est.ci, note, encoder=enc, **slices, **extra))

    def two_sample(metric: str, n: int, enc: str, compute: Callable[[], Q.Estimate], **slices: Any) -> None:
        """A metric against the reference, or a nan row whose note says which set is too small."""
        why = shortfall(metric, n, n_ref, k)
        put(metric, Q.Estimate(math.nan, n, Q.NO_CI) if why else compute(), enc, why, **slices)

    def group(idx: np.ndarray, **slices: Any) -> None:
        x, c, n = g_feat[idx], g_clip[idx], len(idx)
        put("clip_score", Q.mean_estimate(g_score[idx], n_boot * 10, ctx.seed), clip_enc.name, **slices)
        fd = lambda: Q.frechet_distance(x, r_feat, n_boot, ctx.seed, ref_stats)  # noqa: E731
        two_sample("fd", n, feat_enc.name, fd, **slices)
        two_sample("kid", n, feat_enc.name, lambda: Q.kid(x, r_feat, n_boot=n_boot, seed=ctx.seed), **slices)
        two_sample("cmmd", n, clip_enc.name, lambda: Q.cmmd(c, r_clip, n_boot, ctx.seed, ref_self), **slices)
        why = shortfall("precision", n, n_ref, k)
        found = {} if why else Q.prdc(r_feat, x, k, n_boot * 10, ctx.seed, ref_radii)
        for name in PRDC:
            est = found.get(name, Q.Estimate(math.nan, n, Q.NO_CI))
            # recall and coverage are shares of the reference images: n stays the generated count
            share = f"a share of the {n_ref:,} reference images" if name in ("recall", "coverage") else ""
            put(name, est._replace(n=n), feat_enc.name, why or share, **slices)
        put("aesthetic", Q.mean_estimate(g_aes[idx], n_boot * 10, ctx.seed), aes_enc.name, **slices)
        if len(r_aes) and len(idx):
            put("aesthetic_gap", _gap(g_aes[idx], r_aes, n_boot * 10, ctx.seed), aes_enc.name, **slices)
        per_prompt = [
            Q.vendi_score(x[np.asarray(p)])
            for p in gen.iloc[idx].groupby(["prompt_id", "language"]).indices.values()
            if len(p) > 1
        ]
        if per_prompt:
            put(
                "vendi", Q.mean_estimate(np.array(per_prompt), n_boot * 10, ctx.seed), feat_enc.name, **slices
            )

    # 5. groups: each run whole, per setting of each factor that varies, cfg curves per step count
    for run, g in gen.groupby("run", sort=False):
        idx = g.index.to_numpy()
        group(idx, run=run, by="all", level=ALL, curve=ALL)
        for factor in FACTORS:
            levels = _factor_levels(g, factor)
            if len(levels) < 2:
                continue
            for level in levels:
                group(g.index[g[factor] == level].to_numpy(), run=run, by=factor, level=level, curve=ALL)
        if len(_factor_levels(g, "cfg_scale")) > 1 and len(_factor_levels(g, "steps")) > 1:
            for (steps, cfg), cell in g.groupby(["steps", "cfg_scale"]):
                group(cell.index.to_numpy(), run=run, by="cfg_scale", level=cfg, curve=f"steps {steps:g}")
        rows += _per_prompt(g, g_score, g_feat, clip_enc.name, feat_enc.name, run, n_boot * 10, ctx.seed)
    # 6. the reference's own baselines: its captions' CLIPScore, its aesthetic distribution
    if ref_set.texts and n_ref:
        texts = [t for t, good in zip(ref_set.texts, ref_c.ok, strict=True) if good]
        ref_score = Q.clip_scores(r_clip, clip_enc.encode_text(texts))
        est = Q.mean_estimate(ref_score, n_boot * 10, ctx.seed)
        put("clip_score", est, clip_enc.name, run=REFERENCE, by="all", level=ALL, curve=ALL)
    for run, values in [
        (REFERENCE, r_aes),
        *((r, g_aes[g.index]) for r, g in gen.groupby("run", sort=False)),
    ]:
        for q in DECILES if len(values) else ():
            est = _quantile(values, q, n_boot * 10, ctx.seed)
            put("aesthetic_q", est, aes_enc.name, run=run, by="all", level=ALL, curve=ALL, q=q)
    if neighbours and n_ref:
        labels = [lab for lab, good in zip(ref_set.labels, ref_f.ok, strict=True) if good]
        rows += _nearest(gen, g_feat, r_feat, labels, neighbours, feat_enc.name)
    df = tidy(rows, "quality", feat_enc.name)
    # each row's own scorer: its encoder, the aesthetic head for aesthetic rows (their encoder feeds it)
    df["judge"] = df["encoder"].where(df["encoder"].notna(), feat_enc.name)
    df.loc[df["metric"].str.startswith("aesthetic"), "judge"] = aes_judge
    return df


def _no_interval(n: int) -> str:
    return f"n={n}: no interval (a bootstrap needs >= 2)" if n < 2 else ""


def _aesthetic(model: Any, clip_features: np.ndarray) -> np.ndarray:
    """The head's scores of CLIP features (the head reads L2-normalised embeddings, as LAION's)."""
    import torch

    if not len(clip_features):
        return np.zeros(0)
    x = torch.from_numpy(np.asarray(clip_features, dtype=np.float32))
    device = next(model.head.parameters()).device
    with torch.inference_mode():
        out = model.head(torch.nn.functional.normalize(x, dim=-1).to(device)).squeeze(-1)
    return out.cpu().numpy().astype(np.float64)


def _gap(gen: np.ndarray, ref: np.ndarray, n_boot: int, seed: int) -> Q.Estimate:
    """Mean generated score minus mean reference score, both sets resampled (percentile bootstrap)."""
    rng = np.random.default_rng(seed)
    draws = np.array(
        [
            gen[rng.integers(0, len(gen), len(gen))].mean() - ref[rng.integers(0, len(ref), len(ref))].mean()
            for _ in range(n_boot)
        ]
    )
    lo, hi = np.quantile(draws, [0.025, 0.975]) if len(gen) > 1 else (math.nan, math.nan)
    return Q.Estimate(float(gen.mean() - ref.mean()), len(gen), (float(lo), float(hi)))


def _quantile(values: np.ndarray, q: float, n_boot: int, seed: int) -> Q.Estimate:
    """The ``q`` quantile of ``values`` with a percentile bootstrap interval."""
    rng = np.random.default_rng(seed)
    draws = np.quantile(values[rng.integers(0, len(values), (n_boot, len(values)))], q, axis=1)
    ci = tuple(float(v) for v in np.quantile(draws, [0.025, 0.975])) if len(values) > 1 else Q.NO_CI
    return Q.Estimate(float(np.quantile(values, q)), len(values), ci)  # type: ignore[arg-type]


def _per_prompt(
    g: pd.DataFrame,
    scores: np.ndarray,
    feats: np.ndarray,
    clip_name: str,
    feat_name: str,
    run: str,
    n_boot: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Per prompt (id and language): mean CLIPScore and the Vendi score of its images across seeds.

    A single prompt's Vendi score has no interval (resampling a handful of images with replacement
    only removes diversity); the mean over prompts carries one.
    """
    rows = []
    for (prompt_id, language), p in g.groupby(["prompt_id", "language"], sort=True):
        idx = p.index.to_numpy()
        slices = {"run": run, "by": "prompt", "level": f"{prompt_id} · {language}", "curve": ALL}
        est = Q.mean_estimate(scores[idx], n_boot, seed)
        note = _no_interval(est.n)
        rows.append(measure("clip_score", est.value, est.n, est.ci, note, encoder=clip_name, **slices))
        if len(idx) > 1:
            note = "one prompt's images: no interval"
            rows.append(
                measure("vendi", Q.vendi_score(feats[idx]), len(idx), note=note, encoder=feat_name, **slices)
            )
    return rows


def _nearest(
    gen: pd.DataFrame, g_feat: np.ndarray, r_feat: np.ndarray, labels: list[str], k: int, enc: str
) -> list[dict[str, Any]]:
    """Each generated image's ``k`` nearest reference images by cosine distance (value, in [0, 2])."""
    g = g_feat / np.clip(np.linalg.norm(g_feat, axis=1, keepdims=True), 1e-12, None)
    r = r_feat / np.clip(np.linalg.norm(r_feat, axis=1, keepdims=True), 1e-12, None)
    k = min(k, len(r))
    rows = []
    for start in range(0, len(g), 1024):
        dist = 1.0 - g[start : start + 1024] @ r.T
        order = np.argsort(dist, axis=1)[:, :k]
        for i, (near, d) in enumerate(zip(order, dist, strict=True)):
            row = gen.iloc[start + i]
            for rank, j in enumerate(near, 1):
                rows.append(
                    measure(
                        "nearest_reference",
                        float(d[j]),
                        1,
                        encoder=enc,
                        run=row["run"],
                        by="image",
                        level=str(row["image_file"]),
                        curve=ALL,
                        rank=rank,
                        reference=labels[j],
                    )
                )
    return rows
