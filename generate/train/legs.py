"""The leg counter: a small CNN that counts the visible legs of a subject in a generated image.

Neither zero-shot CLIP nor the world judge's dark-pixel rule counts legs on the embedded model's
generations (they blur, merge and recolor legs). Generated images have no leg truth, but the
world's renders do, and the embedded Stable Diffusion can carry a render into its own image domain:

1. **Scenes.** World truth rows (``curate.world.sample``, seed ``recipe.seed``) whose ``legs`` are
   redrawn so every count from 1 to ``max_legs`` is common for every limbed kind (the world draws
   92% of them with the expected count), plus a share of unlimbed kinds (cars have dark wheels) as
   class 0, rendered by the world's own renderer.
2. **Into the generator's domain.** Every render goes through the embedded SD's VAE (encode, then
   decode: its blur, color shift and artefacts), or, for ``img2img_share`` of them, through the
   embedded img2img pipeline at a low strength under the scene's own ``"{color} {kind}"`` prompt,
   with the demo's sampler settings (DPM++ 2M, 15 steps, CFG 7): the denoiser redraws the
   subject as it draws its own, while a low strength keeps the legs that were there.
3. **As the images are shown.** 64 -> 256 -> 64 px Lanczos, as generations are saved (upscaled for
   the invisible watermark) and read back at the judge's input size, then random flips, shifts,
   blur, noise and contrast while training.

The classifier then trains with cross-entropy on the drawn counts (stage 1, ``steps``), and is
fine-tuned (stage 2, ``tune_*``) on batches of which ``tune_labelled_share`` are hand-labelled
generations of the embedded model (``tests/generate/fixtures/legs_train``: 396 images of seeds
100-108 and 200-212, labelled by looking; rows with ``split`` "train", oversampled with
replacement) and the rest synthetic scenes: the generator's own failures (merged, faded, extra
legs) that the renders do not show. The fixture's ``split`` "val" rows (25% of those, stratified
by subject and count, plus 80 generations of seeds 500-509 from the current sampling core) chose
every setting; ``unclear`` rows are never used. The human-label test set
(``tests/evaluate/fixtures/human_labels``) is read by neither stage: it is measured in
``tests/generate/test_legs_model.py`` and models/README.md.

Reproduce: ``python -m t2iscope.generate.train.legs --out models/legs`` (stage 1 about 15 minutes
on 2 CPU cores, stage 2 about 2 minutes on one; ``--no-tune`` stops after stage 1).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from t2iscope import fileio
from t2iscope.generate.train import loop
from t2iscope.nets import IMAGENET_MEAN, IMAGENET_STD, LegsCNN
from t2iscope.weights import LEGS

SIZE = 64  # the embedded generator's native size and the counter's input
SHOWN = 256  # generations are saved at 256 px (the watermark's upscale) and read back at 64
LABELS = Path("tests/generate/fixtures/legs_train")  # hand-labelled generations (stage 2)


@dataclass(frozen=True)
class LegsRecipe:
    """Every size, share and rate of the leg counter's data and training."""

    seed: int = 0
    scenes: int = 6000  # rendered scenes (limbed and not)
    unlimbed_share: float = 0.1  # scenes of unlimbed kinds: class 0
    expected_share: float = 0.35  # limbed scenes keeping the kind's expected count
    max_legs: int = 10  # classes are 0 .. max_legs
    img2img_share: float = 0.25  # the rest go through the VAE only
    strengths: tuple[float, ...] = (0.2, 0.3, 0.4)  # img2img strengths, one per batch in turn
    sd_batch: int = 64
    steps: int = 700
    batch: int = 64
    lr: float = 2e-3
    width: int = 32
    val_scenes: int = 320  # a separately seeded synthetic validation set, same pipeline
    # Stage 2: fine-tune on hand-labelled generations (tests/generate/fixtures/legs_train, split "train")
    tune_steps: int = 300
    tune_lr: float = 1e-3
    tune_labelled_share: float = 0.75  # of every batch, drawn (with replacement) from the labelled rows


def _scene_rows(n: int, seed: int, r: LegsRecipe) -> list[dict]:
    """``n`` world truth rows with their leg counts redrawn (see the module docstring)."""
    from t2iscope.curate.world import spec
    from t2iscope.curate.world.sample import sample_shard

    rng = np.random.default_rng(np.random.SeedSequence([seed, 15]))
    limbed, unlimbed = [], []
    n_unlimbed = round(n * r.unlimbed_share)
    shard = 0
    while len(limbed) < n - n_unlimbed or len(unlimbed) < n_unlimbed:
        _, truth = sample_shard(seed + 1000, shard, shard * 4000, 4000)
        for row in truth.to_pylist():
            (limbed if row["legs_expected"] > 0 else unlimbed).append(row)
        shard += 1
    rows = limbed[: n - n_unlimbed] + unlimbed[:n_unlimbed]
    for row in rows:
        expected = spec.KINDS[row["kind"]]
        if expected and rng.random() >= r.expected_share:
            row["legs"] = int(rng.integers(1, r.max_legs + 1))
        else:
            row["legs"] = expected
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


def _as_shown(images: list[Image.Image]) -> torch.Tensor:
    """uint8 ``N x 3 x 64 x 64`` after the 64 -> 256 -> 64 Lanczos round trip of saved generations."""
    arrays = [
        np.asarray(
            im.convert("RGB")
            .resize((SHOWN, SHOWN), Image.Resampling.LANCZOS)
            .resize((SIZE, SIZE), Image.Resampling.LANCZOS)
        )
        for im in images
    ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def cached_data(
    n: int, seed: int, r: LegsRecipe, sd_folder: Path, device: str, work: Path
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`make_data`, kept in ``work`` keyed by everything it depends on (reruns skip it)."""
    fields = ("unlimbed_share", "expected_share", "max_legs", "img2img_share", "strengths", "sd_batch")
    key = repr((n, seed, [getattr(r, f) for f in fields], str(Path(sd_folder).resolve())))
    path = work / f"data-{hashlib.sha1(key.encode()).hexdigest()[:12]}.pt"
    if path.exists():
        data = torch.load(path, weights_only=True)
        return data["images"], data["labels"]
    images, labels = make_data(n, seed, r, sd_folder, device)
    with fileio.atomic_path(path) as tmp:
        torch.save({"images": images, "labels": labels}, tmp)
    return images, labels


def make_data(
    n: int, seed: int, r: LegsRecipe, sd_folder: Path, device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images ``N x 3 x 64 x 64``, int64 leg counts ``N``): renders carried into the SD domain."""
    from diffusers import StableDiffusionImg2ImgPipeline

    from t2iscope.curate.world.render import render_scene
    from t2iscope.generate.samplers import make_scheduler
    from t2iscope.weights import read_stable_diffusion

    rows = _scene_rows(n, seed, r)
    pipe = read_stable_diffusion(sd_folder).to(device)
    img2img = StableDiffusionImg2ImgPipeline(**pipe.components, requires_safety_checker=False)
    img2img.scheduler = make_scheduler("DPM++ 2M", pipe.scheduler.config)
    img2img.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 16]))
    out: list[Image.Image] = []
    batches = range(0, len(rows), r.sd_batch)
    for b, start in enumerate(tqdm(batches, desc=f"legs data (seed {seed})", unit="batch")):
        chunk = rows[start : start + r.sd_batch]
        renders = [render_scene(row) for row in chunk]
        if rng.random() < r.img2img_share:
            style = "a {} {}" if rng.random() < 0.5 else "{} {}"
            prompts = [style.format(row["color"], row["kind"]) for row in chunk]
            out += img2img(
                prompt=prompts,
                image=renders,
                strength=r.strengths[b % len(r.strengths)],
                num_inference_steps=15,
                guidance_scale=7.0,
                generator=torch.Generator().manual_seed(seed * 100003 + b),
                output_type="pil",
            ).images
        else:
            x = torch.from_numpy(np.stack([np.asarray(im) for im in renders])).permute(0, 3, 1, 2)
            x = x.float().to(device) / 127.5 - 1.0
            with torch.no_grad():
                y = pipe.vae.decode(pipe.vae.encode(x).latent_dist.mean).sample
            y = ((y.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
            out += [Image.fromarray(a) for a in y]
    labels = torch.tensor([row["legs"] for row in rows], dtype=torch.long)
    return _as_shown(out), labels


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Float ``N x 3 x S x S`` in [0, 255]: flips, shifts and scale, blur, contrast and noise."""
    n = len(x)
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    scale = 0.85 + 0.3 * torch.rand(n, generator=gen)
    shift = (torch.rand(n, 2, generator=gen) - 0.5) * 0.25
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    sigma = 0.05 + 1.2 * float(torch.rand(1, generator=gen))  # one blur per batch: cheap on CPU
    k = torch.exp(-(torch.arange(-2, 3, dtype=torch.float32) ** 2) / (2 * sigma**2))
    k = (k / k.sum()).view(1, 1, 1, 5).repeat(3, 1, 1, 1)
    x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="replicate"), k, groups=3)
    x = F.conv2d(F.pad(x, (0, 0, 2, 2), mode="replicate"), k.transpose(2, 3), groups=3)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = 0.75 + 0.5 * torch.rand(n, 1, 1, 1, generator=gen)
    x = mean + (x - mean) * contrast + (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 30
    x = x + torch.randn(x.shape, generator=gen) * 8 * torch.rand(n, 1, 1, 1, generator=gen)
    return x.clamp(0, 255)


def train_legs(images: torch.Tensor, labels: torch.Tensor, r: LegsRecipe, work: Path, device: str) -> LegsCNN:
    torch.manual_seed(r.seed)
    model = LegsCNN(r.width, r.max_legs + 1).to(device)
    mean = torch.tensor(model.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(model.std).view(1, 3, 1, 1) * 255
    opt = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(r.seed)

    def step(_: int) -> dict[str, float]:
        idx = torch.randint(len(images), (r.batch,), generator=gen)
        x = ((_augment(images[idx].float(), gen) - mean) / std).to(device)
        logits = model(x)
        loss = F.cross_entropy(logits, labels[idx].to(device), label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"ce": loss.item(), "acc": (logits.argmax(-1).cpu() == labels[idx]).float().mean().item()}

    model.train()
    loop.run("legs", {"model": model}, opt, r.steps, step, work)
    return model.eval().cpu()


def read_labelled(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images ``N x 3 x 64 x 64``, leg counts ``N``): the rows of ``split`` with a numeric ``legs``.

    ``folder/labels.csv`` has ``image, subject, legs, split, seed, prompt``; ``legs`` is a count or
    ``unclear`` (never trained on). Images are the saved 256 px generations, Lanczos-downscaled.
    """
    import csv

    from t2iscope.errors import DataError

    path = folder / "labels.csv"
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [row for row in csv.DictReader(fh) if row.get("split") == split]
    except OSError as exc:
        raise DataError(f"{path}: cannot read labels ({exc.strerror})") from None
    images, labels = [], []
    for n, row in enumerate(rows, start=2):
        if not row["legs"].isdigit():
            continue
        with Image.open(folder / row["image"]) as im:
            images.append(im.convert("RGB").resize((SIZE, SIZE), Image.Resampling.LANCZOS))
        legs = int(row["legs"])
        if legs > LegsRecipe.max_legs:
            raise DataError(f"{path}: row {n}: legs {legs} above {LegsRecipe.max_legs}")
        labels.append(legs)
    if not images:
        raise DataError(f"{path}: no rows with split '{split}' and a numeric legs")
    pixels = torch.from_numpy(np.stack([np.asarray(im) for im in images])).permute(0, 3, 1, 2)
    return pixels.contiguous(), torch.tensor(labels, dtype=torch.long)


def tune_legs(
    model: LegsCNN,
    synthetic: tuple[torch.Tensor, torch.Tensor],
    labelled: tuple[torch.Tensor, torch.Tensor],
    r: LegsRecipe,
    work: Path,
    device: str,
) -> LegsCNN:
    """Stage 2: continue training ``model`` on batches mixing labelled generations (oversampled)
    with the synthetic scenes, so the counter learns how the generator fails without forgetting
    the synthetic counts it rarely sees labelled (1, 3, 5-7, 9, 10 legs)."""
    torch.manual_seed(r.seed + 2)
    model = model.to(device)
    mean = torch.tensor(model.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(model.std).view(1, 3, 1, 1) * 255
    opt = torch.optim.AdamW(model.parameters(), lr=r.tune_lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(r.seed + 2)
    n_lab = round(r.batch * r.tune_labelled_share)
    (s_images, s_labels), (l_images, l_labels) = synthetic, labelled

    def step(_: int) -> dict[str, float]:
        si = torch.randint(len(s_images), (r.batch - n_lab,), generator=gen)
        li = torch.randint(len(l_images), (n_lab,), generator=gen)
        images = torch.cat([s_images[si], l_images[li]])
        labels = torch.cat([s_labels[si], l_labels[li]])
        x = ((_augment(images.float(), gen) - mean) / std).to(device)
        logits = model(x)
        loss = F.cross_entropy(logits, labels.to(device), label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"ce": loss.item(), "acc": (logits.argmax(-1).cpu() == labels).float().mean().item()}

    model.train()
    loop.run("legs-tune", {"model": model}, opt, r.tune_steps, step, work)
    return model.eval().cpu()


@torch.no_grad()
def accuracy(model: LegsCNN, images: torch.Tensor, labels: torch.Tensor) -> float:
    pred = torch.cat(
        [model.probabilities(images[i : i + 512]).argmax(-1) for i in range(0, len(images), 512)]
    )
    return float((pred == labels).float().mean())


def save_legs(model: LegsCNN, r: LegsRecipe, out: Path, extra: dict) -> Path:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with fileio.atomic_path(out / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    config = {
        "architecture": LEGS,
        "width": r.width,
        "classes": r.max_legs + 1,
        "input_size": SIZE,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "input": "RGB resized (Lanczos) to 64x64, scaled to 0-1, normalised with mean/std",
        "output": f"{r.max_legs + 1} logits: visible legs 0 .. {r.max_legs}; count = argmax",
        "recipe": {k: getattr(r, k) for k in r.__dataclass_fields__},
        **extra,
    }
    fileio.write_json(out / "config.json", config)
    return out


def train_and_save(
    out: Path,
    sd_folder: Path,
    device: str = "cpu",
    r: LegsRecipe | None = None,
    labels: Path | None = LABELS,
) -> dict:
    """Make the data, train (stage 1), fine-tune on ``labels`` (stage 2, skipped when None),
    measure on the synthetic and the labelled validation sets and write ``out``."""
    r = r or LegsRecipe()
    work = out.parent / "_train" / "legs"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tuning = (read_labelled(labels, "train"), read_labelled(labels, "val")) if labels else None
    images, labels_ = cached_data(r.scenes, r.seed, r, sd_folder, device, work)
    val_images, val_labels = cached_data(r.val_scenes, r.seed + 1, r, sd_folder, device, work)
    t_data = time.perf_counter() - t0
    (work / "legs.ckpt.pt").unlink(missing_ok=True)
    model = train_legs(images, labels_, r, work, device)
    validation: dict = {"synthetic_accuracy_stage1": round(accuracy(model, val_images, val_labels), 4)}
    if tuning:
        validation["labelled_accuracy_stage1"] = round(accuracy(model, *tuning[1]), 4)
        (work / "legs-tune.ckpt.pt").unlink(missing_ok=True)
        model = tune_legs(model, (images, labels_), tuning[0], r, work, device)
        validation["labelled_accuracy"] = round(accuracy(model, *tuning[1]), 4)
        validation["labelled_n"] = len(tuning[1][1])
    validation["synthetic_accuracy"] = round(accuracy(model, val_images, val_labels), 4)
    validation["n"] = r.val_scenes
    t_all = time.perf_counter() - t0
    extra = {
        "validation": validation,
        "labels": str(labels) if labels else None,
        "train_seconds": {"data": round(t_data, 1), "total": round(t_all, 1)},
    }
    save_legs(model, r, out, extra)
    loop.log_line(work, f"legs: done in {t_all:.0f}s ({extra})")
    return extra


@click.command("legs")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("models/legs"),
    show_default=True,
    help="Folder to write (config.json + model.safetensors); the log goes to OUT/../_train/legs.",
)
@click.option(
    "--sd",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("models/sd"),
    show_default=True,
    help="The embedded Stable Diffusion whose image domain the counter learns.",
)
@click.option(
    "--labels",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=LABELS,
    show_default=True,
    help="Hand-labelled generations for stage 2 (labels.csv with split train/val + images/).",
)
@click.option("--no-tune", is_flag=True, help="Stage 1 only (synthetic data, no labelled generations).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--quick", is_flag=True, help="A few scenes and steps: a smoke test, not a model.")
def legs_command(out: Path, sd: Path, labels: Path, no_tune: bool, device: str, quick: bool) -> None:
    """Train the leg counter (renders carried into the embedded SD's image domain).

    Example: t2iscope generate train legs --out models/legs
    """
    torch.set_num_threads(max(1, torch.get_num_threads()))
    quick_r = LegsRecipe(scenes=128, val_scenes=64, steps=3, sd_batch=32, tune_steps=3)
    r = quick_r if quick else LegsRecipe()
    extra = train_and_save(out, sd, device, r, None if no_tune else labels)
    click.echo(f"wrote {out} ({extra})")


if __name__ == "__main__":
    legs_command()
