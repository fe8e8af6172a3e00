"""The training stages and ``train_all``: which data each model sees, where outputs go, resume.

Data: CLIP, aesthetic and watermark heads train on the whole world (see heads.py for why); the
VAE and U-Net train on the curation run's kept rows when one is given, as SD trained on curated
LAION subsets. A stage whose output exists is skipped unless ``force``; a stage interrupted midway
resumes from its checkpoint in ``OUT/_train``. Measurement uses a separately seeded held-out world.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from t2iscope import fileio
from t2iscope.errors import ConfigError
from t2iscope.generate.train import clip as clip_mod
from t2iscope.generate.train import heads, loop, sd
from t2iscope.generate.train.corpus import Corpus, cached_world
from t2iscope.generate.train.recipe import STAGES, Recipe

OUTPUTS = {
    "clip": "clip/open_clip_model.safetensors",
    "aesthetic": "aesthetic/model.safetensors",
    "watermark": "watermark/model.safetensors",
    "vae": "_train/vae/diffusion_pytorch_model.safetensors",
    "unet": "sd/model_index.json",
    "measure": "metrics.json",
}


@dataclass(frozen=True)
class Job:
    """Where data comes from and where models go."""

    world: Path | None
    out: Path
    heldout: Path | None = None
    curated: Path | None = None
    device: str = "cpu"
    limit: int | None = None
    force: bool = False

    @property
    def work(self) -> Path:
        return self.out / "_train"

    def corpus(self, which: str, recipe: Recipe) -> Corpus:
        """'world' (all rows), 'curated' (kept rows, or all if no run) or 'heldout'."""
        if which == "heldout":
            if self.heldout is None:
                raise ConfigError("--heldout is required to measure (make one: t2iscope world make --seed 1)")
            source, curated, limit = self.heldout, None, recipe.measure.heldout_rows
        else:
            if self.world is None:
                raise ConfigError("--world is required to train")
            if which == "curated" and self.curated is None:
                which = "world"
            source, curated, limit = self.world, self.curated if which == "curated" else None, self.limit
        key = hashlib.sha1(f"{Path(source).resolve()}|{curated and Path(curated).resolve()}|{limit}".encode())
        return cached_world(source, self.work / f"corpus-{which}-{key.hexdigest()[:10]}.pt", curated, limit)


def _timed(job: Job, stage: str, seconds: float) -> None:
    path = job.work / "timings.json"
    timings = json.loads(path.read_text()) if path.exists() else {}
    timings[stage] = round(seconds, 1)
    fileio.write_json(path, timings)
    loop.log_line(job.work, f"{stage}: done in {seconds:.0f}s")


def run_stage(stage: str, job: Job, recipe: Recipe) -> None:
    """Train (or measure) one stage and write its files under ``job.out``."""
    from t2iscope.weights import OPEN_CLIP, load_model

    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; valid: {', '.join(STAGES)}")
    t0 = time.perf_counter()
    seed, dev = recipe.seed, job.device
    if stage == "clip":
        model = clip_mod.train_clip(job.corpus("world", recipe), recipe.clip, job.work, dev, seed)
        clip_mod.save_clip(model, recipe.clip, job.out / "clip")
    elif stage == "aesthetic":
        clip = load_model(job.out / "clip", dev, expect=OPEN_CLIP).model
        head = heads.train_aesthetic(clip, job.corpus("world", recipe), recipe.heads, job.work, dev, seed)
        heads.save_aesthetic(head, job.out / "aesthetic")
    elif stage == "watermark":
        model = heads.train_watermark(job.corpus("world", recipe), recipe.heads, job.work, dev, seed)
        heads.save_watermark(model, job.out / "watermark")
    elif stage == "vae":
        vae = sd.train_vae(job.corpus("curated", recipe), recipe.vae, job.work, dev, seed)
        vae.save_pretrained(job.work / "vae", safe_serialization=True)
    elif stage == "unet":
        from diffusers import AutoencoderKL
        from transformers import CLIPTokenizer

        from t2iscope.generate.tokenizer_files import write_clip_tokenizer_files

        vae = AutoencoderKL.from_pretrained(job.work / "vae")
        clip = load_model(job.out / "clip", expect=OPEN_CLIP).model
        text_encoder = clip_mod.to_hf_text_encoder(clip)
        tokenizer = CLIPTokenizer.from_pretrained(write_clip_tokenizer_files(job.work / "tokenizer"))
        unet = sd.train_unet(
            vae, text_encoder, tokenizer, job.corpus("curated", recipe), recipe.unet, job.work, dev, seed
        )
        sd.save_pipeline(vae, text_encoder, tokenizer, unet, job.out / "sd", recipe.unet.prediction_type)
    else:
        measure_all(job, recipe)
    _timed(job, stage, time.perf_counter() - t0)


def measure_all(job: Job, recipe: Recipe) -> dict[str, Any]:
    from t2iscope.generate.train import measure

    heldout = job.corpus("heldout", recipe)
    timings_path = job.work / "timings.json"
    metrics = {
        "heldout": {"world": str(job.heldout), "rows": len(heldout)},
        "scorers": measure.measure_scorers(job.out, heldout, job.device),
        "generator": measure.measure_generator(job.out, recipe.measure, job.device, job.work / "samples"),
        "recipe": dataclasses.asdict(recipe),
        "train_seconds": json.loads(timings_path.read_text()) if timings_path.exists() else {},
    }
    fileio.write_json(job.out / "metrics.json", metrics)
    return metrics


def train_all(job: Job, recipe: Recipe, stages: tuple[str, ...] = STAGES) -> None:
    """Run ``stages`` in order, skipping those whose output exists (unless ``job.force``)."""
    for stage in stages:
        if not job.force and (job.out / OUTPUTS[stage]).exists():
            loop.log_line(job.work, f"{stage}: output exists, skipped")
            continue
        if job.force:
            (job.work / f"{stage}.ckpt.pt").unlink(missing_ok=True)
        run_stage(stage, job, recipe)
