"""`t2iscope generate ...` commands: txt2img, img2img, inpaint, outpaint, suite, list, info, train.

Every command validates all its options and input files before loading a model, then calls the
Python API (t2iscope.generate.txt2img, .img2img, .inpaint, .outpaint, .run_suite) that does the
work. torch and diffusers are imported inside the commands so ``--help`` stays instant.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from t2iscope.generate import limits
from t2iscope.generate.info_cli import info
from t2iscope.generate.train.cli import train
from t2iscope.listing import Table, add_list_command

# inpaint.FILLS, repeated so that --help does not import torch (a test keeps them equal)
FILLS = ("fill", "original", "latent noise", "latent nothing")
# A1111's "Schedule type" labels (schedules.SCHEDULE_CHOICES, likewise repeated and kept equal by a
# test), each with what `generate list schedulers` says of it
SCHEDULERS = {
    "Automatic": "the sampler's own: Karras for DPM++ 2M, DPM++ 2S a, DPM2, DPM2 a; else Uniform",
    "Uniform": "timesteps evenly from the top of the schedule down (k-diffusion's get_sigmas)",
    "Karras": "Karras et al. 2022 (rho 7): more steps at low noise",
    "Exponential": "evenly spaced in log sigma",
    "Polyexponential": "k-diffusion's polyexponential (rho 1)",
    "SGM Uniform": "n+1 evenly spaced timesteps, the last (sigma_min) dropped (Stability's SGM)",
    "KL Optimal": "Sabour et al. 2024: evenly spaced in arctan(sigma)",
    "Simple": "every (1000/n)th of the model's own noise levels, from the top",
    "Normal": "evenly spaced timesteps between sigma_max and sigma_min",
    "DDIM": "the noise levels DDIM visits, as a sigma table",
    "Beta": "Lee et al. 2024: timesteps at the quantiles of Beta(0.6, 0.6)",
}


@click.group(
    epilog=(
        "Example:\n\n\b\n"
        '  t2iscope generate txt2img "a (red:1.2) dog on grass" --seed 1 --out dog.png\n'
        "  t2iscope generate info dog.png\n"
        "  t2iscope generate suite limbs --out runs/gen/limbs"
    )
)
def generate() -> None:
    """Generate images with latent diffusion: single prompts, suites, training."""


generate.add_command(info)
generate.add_command(train)


def _model_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed(
        [
            click.option(
                "--model",
                "model_path",
                type=click.Path(path_type=Path),
                default=None,
                help="Local diffusers folder or .safetensors/.ckpt file (default: embedded models/sd).",
            ),
            click.option(
                "--model-config",
                type=click.Path(path_type=Path),
                default=None,
                help="Override the inferred architecture of a single-file checkpoint: sd1, sd2, sd2-v or "
                "a diffusers folder.",
            ),
            click.option(
                "--lora-dir",
                type=click.Path(path_type=Path),
                default=None,
                help="Folder of LoRA .safetensors for <lora:name:weight> in prompts (A1111's models/Lora).",
            ),
            click.option(
                "--embeddings-dir",
                type=click.Path(path_type=Path),
                default=None,
                help="Folder of textual-inversion embeddings (.pt/.safetensors), used by file name in "
                "prompts (A1111's embeddings/).",
            ),
            click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda."),
            click.option("--compile", "compile_unet", is_flag=True, help="torch.compile the U-Net (CUDA)."),
            click.option(
                "--no-watermark", is_flag=True, help="Skip the invisible watermark (and its upscale)."
            ),
            click.option(
                "--watermark-method",
                default="dwtDct",
                show_default=True,
                help="dwtDct (as SD), dwtDctFixed, dwtDctSvd, rivaGan or treering (txt2img and suite only).",
            ),
            click.option(
                "--upscale",
                type=int,
                default=None,
                help=f"Integer Lanczos upscale of the output, 1..{limits.MAX_UPSCALE} "
                "(default: just enough to watermark).",
            ),
        ]
    ):
        fn = decorator(fn)
    return fn


# Limits (t2iscope.generate.limits, after A1111's sliders) are shown in --help and checked before
# any work; each option's error names it (`--cfg-scale must be a finite number from 0 to 30, got nan`).
_SIDE = f"Pixels, a multiple of 8 from {limits.MIN_SIDE} to {limits.MAX_SIDE}"


def _gen_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed(
        [
            click.argument("prompt"),
            click.option("--negative-prompt", "-n", default="", help="What to steer away from."),
            click.option(
                "--seed",
                type=int,
                default=limits.RANDOM_SEED,
                show_default=True,
                help=f"0..{limits.MAX_SEED}; -1 picks one and records it.",
            ),
            click.option(
                "--steps",
                type=int,
                default=limits.DEFAULT_STEPS,
                show_default=True,
                help=f"Sampling steps, 1..{limits.MAX_STEPS}.",
            ),
            click.option(
                "--cfg-scale",
                type=float,
                default=limits.DEFAULT_CFG_SCALE,
                show_default=True,
                help=f"Guidance scale, 0..{limits.MAX_CFG_SCALE:g} (1: the prompt alone; 0: the negative "
                "prompt alone).",
            ),
            click.option(
                "--cfg-rescale",
                type=float,
                default=limits.DEFAULT_CFG_RESCALE,
                show_default=True,
                help="Guidance rescale 0..1 (Lin et al. 2023); 0.7 tames color overshoot at high CFG.",
            ),
            click.option(
                "--sampler",
                default=limits.DEFAULT_SAMPLER,
                show_default=True,
                help="A1111 name; `t2iscope generate list samplers` lists them.",
            ),
            click.option(
                "--scheduler",
                type=click.Choice(tuple(SCHEDULERS)),
                default="Automatic",
                show_default=True,
                help="A1111's Schedule type: the noise levels the sampler visits (Automatic: the "
                "sampler's own; DDIM, PLMS and UniPC keep their own timesteps).",
            ),
            click.option(
                "--subseed",
                type=int,
                default=limits.RANDOM_SEED,
                show_default=True,
                help=f"A1111's Variation seed, 0..{limits.MAX_SEED}; -1 picks one.",
            ),
            click.option(
                "--subseed-strength",
                type=float,
                default=0.0,
                show_default=True,
                help="A1111's Variation strength 0..1: how far the starting noise moves toward the "
                "variation seed's.",
            ),
            click.option(
                "--clip-skip",
                type=int,
                default=limits.DEFAULT_CLIP_SKIP,
                show_default=True,
                help=f"A1111's Clip skip, 1..{limits.MAX_CLIP_SKIP}: 2 uses the text encoder's "
                "penultimate layer.",
            ),
            click.option(
                "--emphasis",
                type=click.Choice(limits.EMPHASIS_MODES),
                default=limits.DEFAULT_EMPHASIS,
                show_default=True,
                help="A1111's emphasis mode for (text:weight).",
            ),
            click.option("--width", type=int, default=None, help=f"{_SIDE} (default: model/image size)."),
            click.option("--height", type=int, default=None, help=f"{_SIDE} (default: model/image size)."),
            click.option(
                "--batch-size",
                type=int,
                default=limits.DEFAULT_BATCH_SIZE,
                show_default=True,
                help=f"Images from seeds s, s+1, ... in one batch, 1..{limits.MAX_BATCH_SIZE}.",
            ),
            click.option(
                "--out",
                type=click.Path(path_type=Path),
                required=True,
                help="Output PNG; with --batch-size > 1, NAME-SEED.png per image (NAME-SEED-vSUBSEED.png "
                "for variations).",
            ),
        ]
    ):
        fn = decorator(fn)
    return fn


def _model_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    """The shared model options (``_model_options``) as ``load_model`` / ``ModelSource.of`` keywords."""
    return {
        "device": kw["device"],
        "config": kw["model_config"],
        "compile_unet": kw["compile_unet"],
        "lora_dir": kw["lora_dir"],
        "embeddings_dir": kw["embeddings_dir"],
    }


def _load_model(kw: dict[str, Any]) -> Any:
    """The model the shared model options name (imported here: torch is slow to load)."""
    from t2iscope.generate.models import load_model

    return load_model(kw["model_path"], **_model_kwargs(kw))


def _watermark(kw: dict[str, Any]) -> str | None:
    """The watermark method the options ask for (None with --no-watermark); ConfigError when
    --no-watermark and a --watermark-method typed on the command line contradict each other."""
    from click.core import ParameterSource

    from t2iscope.errors import ConfigError

    if not kw["no_watermark"]:
        return kw["watermark_method"]
    if click.get_current_context().get_parameter_source("watermark_method") == ParameterSource.COMMANDLINE:
        raise ConfigError(
            f"--no-watermark and --watermark-method {kw['watermark_method']}: choose one "
            "(an image cannot be marked and unmarked)"
        )
    return None


def _run(
    mode: str,
    kw: dict[str, Any],
    work: Callable[..., list],
    strength: float | None = None,
    size: Callable[[list], tuple[int, int] | None] = lambda batch: None,
) -> None:
    """Shared tail of every single-prompt command: check, load, generate, save, report.

    ``size`` runs the mode's own checks on the batch (no model needed) and returns the output
    size when the inputs fix it (None: the model's native size).
    """
    from t2iscope.errors import ConfigError
    from t2iscope.generate.conditioning import network_fields
    from t2iscope.generate.output import OutputOptions, save
    from t2iscope.generate.params import Params
    from t2iscope.generate.watermark import LATENT_METHODS

    params = Params(
        prompt=kw["prompt"],
        negative_prompt=kw["negative_prompt"],
        seed=kw["seed"],
        steps=kw["steps"],
        cfg_scale=kw["cfg_scale"],
        cfg_rescale=kw["cfg_rescale"],
        sampler=kw["sampler"],
        scheduler=kw["scheduler"],
        width=kw["width"],
        height=kw["height"],
        batch_size=kw["batch_size"],
        subseed=kw["subseed"],
        subseed_strength=kw["subseed_strength"],
        clip_skip=kw["clip_skip"],
        emphasis=kw["emphasis"],
        **{name: kw[name] for name in _HIRES if name in kw},  # txt2img's own options
    ).check(cli=True)
    output = OutputOptions(watermark=_watermark(kw), upscale=kw["upscale"]).check(cli=True)
    if mode != "txt2img" and output.watermark in LATENT_METHODS:  # the key lives in txt2img's first noise
        raise ConfigError(
            f"--watermark-method {output.watermark} marks txt2img's initial noise only; {mode} starts "
            "from an image: choose dwtDct, dwtDctFixed, dwtDctSvd or rivaGan"
        )
    if kw["out"].is_dir():
        raise ConfigError(f"--out {kw['out']}: is a folder; give the PNG's file name")
    batch = params.expand()
    known = size(batch)
    if known is not None:
        output.check_size(*known, cli=True)
    model = _load_model(kw)
    if known is None:
        output.check_size(params.width or model.native_size, params.height or model.native_size, cli=True)
    model.progress = mode  # a per-step bar on stderr: a 150-step 2048px image takes a while
    images = work(model, batch)
    out: Path = kw["out"]
    for p, image in zip(batch, images, strict=True):
        # variations keep the seed, so they are told apart by the variation seed
        tag = f"{p.seed}-v{p.subseed}" if p.subseed_strength else f"{p.seed}"
        path = out if len(batch) == 1 else out.with_name(f"{out.stem}-{tag}{out.suffix or '.png'}")
        scale = save(
            path,
            image,
            p,
            model.model_id,
            output,
            strength,
            model_hash=model.model_hash,
            extra=network_fields(model, p),
        )
        click.echo(f"{path}  ({mode}, seed {p.seed}, {image.width}x{image.height}, output scale {scale})")


def _image(path: Path, what: str, mode: str = "RGB") -> Any:
    from t2iscope.generate.params import load_image

    return load_image(path, what, mode)


def _command(name: str, example: str) -> Callable[[Callable[..., Any]], click.Command]:
    def wrap(fn: Callable[..., Any]) -> click.Command:
        return generate.command(name, epilog=f"Example:\n\n\b\n  {example}")(_model_options(_gen_options(fn)))

    return wrap


_HIRES = ("enable_hr", "hr_scale", "hr_upscaler", "hr_second_pass_steps", "denoising_strength")


@_command(
    "txt2img",
    't2iscope generate txt2img "a red dog" --seed 1 --steps 20 --cfg-scale 7.5 '
    '--sampler "DPM++ 2M" --scheduler Karras --out x.png\n'
    '  t2iscope generate txt2img "a red dog" --seed 1 --enable-hr --hr-scale 2 --denoising-strength 0.6 '
    "--out big.png",
)
@click.option("--enable-hr", is_flag=True, help="A1111's Hires fix: a second pass, hr-scale times larger.")
@click.option(
    "--hr-scale",
    type=float,
    default=limits.DEFAULT_HR_SCALE,
    show_default=True,
    help=f"Hires fix: Upscale by, 1..{limits.MAX_HR_SCALE:g}.",
)
@click.option(
    "--hr-upscaler",
    type=click.Choice(limits.HR_UPSCALERS),
    default=limits.DEFAULT_HR_UPSCALER,
    show_default=True,
    help="Hires fix: how the first pass is enlarged (latents, or decoded pixels with Lanczos).",
)
@click.option(
    "--hr-second-pass-steps",
    type=int,
    default=0,
    show_default=True,
    help=f"Hires fix: steps of the second pass, 0..{limits.MAX_STEPS} (0: as many as --steps).",
)
@click.option(
    "--denoising-strength",
    type=float,
    default=limits.DEFAULT_DENOISING_STRENGTH,
    show_default=True,
    help="Hires fix: how much of the schedule the second pass re-noises, 0..1.",
)
def txt2img_cmd(**kw: Any) -> None:
    """Generate images from a prompt (A1111 syntax: (x:1.3), [x], [a:b:0.5], [a|b], AND, BREAK)."""
    from t2iscope.generate.treering import latent_mark
    from t2iscope.generate.txt2img import txt2img

    mark = latent_mark(_watermark(kw))
    _run("txt2img", kw, lambda model, batch: txt2img(model, batch, mark=mark))


@_command(
    "img2img", 't2iscope generate img2img "a blue dog" --image x.png --strength 0.6 --seed 1 --out y.png'
)
@click.option("--image", type=click.Path(path_type=Path), required=True, help="Init image.")
@click.option(
    "--strength",
    type=float,
    default=0.75,
    show_default=True,
    help="Fraction of the schedule re-noised: 0 keeps the image, 1 ignores it.",
)
def img2img_cmd(image: Path, strength: float, **kw: Any) -> None:
    """Re-noise an image part of the way and denoise it under a prompt."""
    from t2iscope.generate.img2img import check_request, img2img
    from t2iscope.generate.params import check_strength

    check_strength(strength, cli=True)
    init = _image(image, "--image")
    _run(
        "img2img",
        kw,
        functools.partial(_call_img2img, img2img, init, strength),
        strength,
        lambda batch: check_request(batch, init, strength),
    )


def _call_img2img(fn: Callable[..., list], init: Any, strength: float, model: Any, batch: list) -> list:
    return fn(model, batch, init, strength)


@_command(
    "inpaint",
    't2iscope generate inpaint "a red ball" --image x.png --mask m.png --fill original '
    "--mask-blur 4 --seed 1 --out y.png",
)
@click.option("--image", type=click.Path(path_type=Path), required=True, help="Image to repaint.")
@click.option(
    "--mask",
    type=click.Path(path_type=Path),
    required=True,
    help="Same size as --image; white = repaint, black = keep.",
)
@click.option("--strength", type=float, default=0.75, show_default=True, help="Denoising strength 0..1.")
@click.option(
    "--mask-blur",
    type=int,
    default=4,
    show_default=True,
    help=f"Gaussian blur radius of the mask, 0..{limits.MAX_MASK_BLUR} pixels.",
)
@click.option(
    "--fill",
    type=click.Choice(FILLS),
    default="original",
    show_default=True,
    help="Masked content before denoising (A1111's choices).",
)
@click.option("--only-masked", is_flag=True, help="Inpaint only the mask's box (+padding) at model size.")
@click.option(
    "--padding",
    type=int,
    default=32,
    show_default=True,
    help=f"Pixels around the mask's box, 0..{limits.MAX_PADDING}.",
)
def inpaint_cmd(
    image: Path,
    mask: Path,
    strength: float,
    mask_blur: int,
    fill: str,
    only_masked: bool,
    padding: int,
    **kw: Any,
) -> None:
    """Repaint the white area of a mask; the rest of the image is kept."""
    from t2iscope.errors import ConfigError
    from t2iscope.generate.inpaint import InpaintOptions, check_request, inpaint

    opts = InpaintOptions(strength, mask_blur, fill, only_masked, padding).check(cli=True)
    init, mask_image = _image(image, "--image"), _image(mask, "--mask", "L")
    if mask_image.size != init.size:
        raise ConfigError(
            f"--mask {mask}: size {mask_image.width}x{mask_image.height} does not match "
            f"--image {image} ({init.width}x{init.height})"
        )

    def size(batch: list) -> tuple[int, int]:
        check_request(batch, init, mask_image, opts)
        return init.size  # the result is composited back onto the whole image

    _run("inpaint", kw, lambda model, batch: inpaint(model, batch, init, mask_image, opts), strength, size)


@_command(
    "outpaint",
    't2iscope generate outpaint "a red dog on grass" --image x.png --right 32 --seed 1 --out wide.png',
)
@click.option("--image", type=click.Path(path_type=Path), required=True, help="Image to extend.")
@click.option("--left", type=int, default=0, help=f"Pixels to add on the left, 0..{limits.MAX_SIDE}.")
@click.option("--right", type=int, default=0, help=f"Pixels to add on the right, 0..{limits.MAX_SIDE}.")
@click.option("--top", type=int, default=0, help=f"Pixels to add on top, 0..{limits.MAX_SIDE}.")
@click.option("--bottom", type=int, default=0, help=f"Pixels to add at the bottom, 0..{limits.MAX_SIDE}.")
@click.option("--strength", type=float, default=0.9, show_default=True, help="Denoising strength 0..1.")
@click.option(
    "--mask-blur",
    type=int,
    default=4,
    show_default=True,
    help=f"Seam overlap and blur, 0..{limits.MAX_MASK_BLUR} pixels.",
)
def outpaint_cmd(
    image: Path, left: int, right: int, top: int, bottom: int, strength: float, mask_blur: int, **kw: Any
) -> None:
    """Extend the canvas by N pixels on any side and paint the new area to match.

    The extended canvas must be a multiple of 8 and at most 2048 pixels a side, the --width limit.
    """
    from t2iscope.generate.outpaint import OutpaintOptions, outpaint

    opts = OutpaintOptions(left, right, top, bottom, strength, mask_blur).check(cli=True)
    init = _image(image, "--image")
    canvas = opts.canvas_size(init)
    _run("outpaint", kw, lambda model, batch: outpaint(model, batch, init, opts), strength, lambda _: canvas)


@generate.command(
    "suite",
    epilog=(
        "Example:\n\n\b\n  t2iscope generate suite limbs --out runs/gen/limbs --limit 8\n"
        "  t2iscope generate suite my_suite.yaml --out runs/gen/mine --model ~/sd15 --device cuda\n"
        "  t2iscope generate suite limbs --out /shared/gen/limbs --engine ray --address head:6379\n"
        "  t2iscope generate suite neutral --out runs/gen/neutral --engine ray --workers 2\n\n"
        "Shipped suites: `t2iscope generate list suites`. Rerun the same command to resume "
        "(either engine). With --engine ray, --out and --model must be on a file system every "
        "node sees; docs/suites_on_ray.md."
    ),
)
@click.argument("suite")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for images + manifest.")
@click.option(
    "--limit",
    type=int,
    default=None,
    help=f"Only the first N images of the grid (a run makes at most {limits.MAX_SUITE_IMAGES:,}).",
)
@click.option(
    "--batch-size",
    type=int,
    default=8,
    show_default=True,
    help=f"Images per U-Net batch, 1..{limits.MAX_BATCH_SIZE}.",
)
@click.option(
    "--engine",
    type=click.Choice(("local", "ray")),
    default="local",
    show_default=True,
    help="local: this process; ray: shards of batches over Ray workers, same images and manifest.",
)
@click.option(
    "--address",
    default=None,
    help="With --engine ray: the cluster to join (host:port, ray://host:port or auto); "
    "default: start Ray on this machine.",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="With --engine ray: workers, each loading the model once (default: one per GPU, "
    "else one per node with all its CPUs).",
)
@_model_options
def suite_cmd(
    suite: str,
    out: Path,
    limit: int | None,
    batch_size: int,
    engine: str,
    address: str | None,
    workers: int | None,
    **kw: Any,
) -> None:
    """Run a prompt suite (name of a shipped suite or a YAML path) into images + manifest.parquet.

    The run holds OUT's lock: a second run into the same folder is refused until it ends.
    """
    from t2iscope.errors import ConfigError
    from t2iscope.generate.models import check_model_options, model_id_for
    from t2iscope.generate.output import OutputOptions
    from t2iscope.generate.run_suite import run_suite
    from t2iscope.generate.suites import load_suite

    spec = load_suite(suite)
    output = OutputOptions(watermark=_watermark(kw), upscale=kw["upscale"]).check(cli=True)
    if engine == "ray":
        from t2iscope.generate.suite_ray import ModelSource, run_suite_ray

        check_model_options(kw["model_path"], "cpu")  # the device is the workers', checked on the cluster
        source = ModelSource.of(kw["model_path"], **_model_kwargs(kw))
        summary = run_suite_ray(
            spec,
            out,
            source,
            address=address,
            workers=workers,
            limit=limit,
            batch_size=batch_size,
            output=output,
            cli=True,
        )
    else:
        options = (("--address", address), ("--workers", workers))
        given = [name for name, value in options if value is not None]
        if given:
            raise ConfigError(f"{given[0]} goes with --engine ray")
        check_model_options(kw["model_path"], kw["device"])  # a bad --model must not create --out
        summary = run_suite(
            spec,
            out,
            lambda: _load_model(kw),
            limit=limit,
            batch_size=batch_size,
            output=output,
            model_id=model_id_for(kw["model_path"]),
            cli=True,
        )
    click.echo(
        f"{summary.manifest}: {summary.total} rows ({summary.generated} generated, "
        f"{summary.skipped} already done)"
    )


def samplers_table() -> Table:
    """Every sampler by its AUTOMATIC1111 name, the schedule type Automatic gives it, and older names."""
    from t2iscope.generate.samplers import ALIASES, K_DIFFUSION, SAMPLERS

    older: dict[str, list[str]] = {}
    for alias, (name, schedule) in ALIASES.items():  # read as sampler + schedule, as A1111 reads them
        older.setdefault(name, []).append(alias if schedule == "Automatic" else f"{alias} (+{schedule})")
    rows = []
    for name in SAMPLERS:
        s = SAMPLERS.get(name)
        own = s.schedule if s.family == K_DIFFUSION else "own timesteps"
        rows.append((name, own, s.family, ", ".join(older.get(name, [])), s.summary))
    return ("sampler", "default schedule type", "kind", "older names", "summary"), rows


def schedulers_table() -> Table:
    """A1111's schedule types (``--scheduler``), in its dropdown's order."""
    return ("schedule type", "summary"), list(SCHEDULERS.items())


def suites_table() -> Table:
    """Every shipped suite: how many prompts, how many images it generates, and its description."""
    from t2iscope.generate.suites import grid_size, load_suite, shipped_suites

    rows = [(s.name, len(s.prompts), grid_size(s), s.description) for s in map(load_suite, shipped_suites())]
    return ("suite", "prompts", "images", "description"), rows


add_list_command(
    generate,
    "generate",
    {"samplers": samplers_table, "schedulers": schedulers_table, "suites": suites_table},
    aliases=("samplers",),
)
