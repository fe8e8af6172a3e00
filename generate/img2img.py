"""img2img: re-noise an image part of the way and denoise it under a prompt.

``strength`` is the fraction of the schedule that is re-noised, as in Stable Diffusion's img2img
script (``t_enc = int(strength * steps)``): 0 returns the input, 1 ignores it.
"""

from __future__ import annotations

from diffusers import StableDiffusionImg2ImgPipeline
from PIL import Image

from t2iscope.errors import ConfigError
from t2iscope.generate.conditioning import encode_batch
from t2iscope.generate.models import Model
from t2iscope.generate.params import Params, check_same_settings, check_strength, target_size
from t2iscope.generate.samplers import make_scheduler
from t2iscope.generate.seeds import generators


def check_request(batch: list[Params], image: Image.Image, strength: float) -> tuple[int, int]:
    """Every check of :func:`img2img` that needs no model; returns the (width, height) to generate.

    Raises ConfigError for parameters outside the limits, a batch that does not share its
    settings, a cfg_rescale, or an image whose own size is not a valid one (without --width/--height).
    """
    for p in batch:
        p.check()
    check_same_settings(batch)
    check_strength(strength)
    if batch[0].cfg_rescale:
        raise ConfigError("cfg_rescale is not available for img2img (diffusers' img2img pipeline has none)")
    return target_size(batch[0], image)


def img2img(model: Model, batch: list[Params], image: Image.Image, strength: float) -> list[Image.Image]:
    """One image per entry of ``batch``, each started from ``image`` re-noised by ``strength``."""
    # 1. Check inputs
    width, height = check_request(batch, image, strength)
    first = batch[0]
    init = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    # 2. Nothing to re-noise: SD's script would run zero steps
    if int(strength * first.steps) < 1:
        return [init.copy() for _ in batch]
    # 3. Conditioning and sampler
    cond, uncond = encode_batch(model, [p.prompt for p in batch], [p.negative_prompt for p in batch])
    pipe = StableDiffusionImg2ImgPipeline(**model.pipe.components, requires_safety_checker=False)
    pipe.set_progress_bar_config(**model.progress_bar())
    pipe.scheduler = make_scheduler(first.sampler, model.scheduler_config)
    # 4. Re-noise, denoise and decode
    return pipe(
        image=[init] * len(batch),
        strength=strength,
        prompt_embeds=cond,
        negative_prompt_embeds=uncond,
        num_inference_steps=first.steps,
        guidance_scale=first.cfg_scale,
        generator=generators([p.seed for p in batch]),
        output_type="pil",
    ).images
