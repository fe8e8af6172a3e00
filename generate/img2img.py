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
from t2iscope.generate.params import Params, check_same_settings, check_strength
from t2iscope.generate.samplers import make_scheduler
from t2iscope.generate.seeds import generators


def target_size(p: Params, image: Image.Image) -> tuple[int, int]:
    """Requested size, else the init image's own size (which must then be a multiple of 8)."""
    width, height = p.width or image.width, p.height or image.height
    if width % 8 or height % 8:
        raise ConfigError(f"image size {width}x{height} is not a multiple of 8; pass --width/--height")
    return width, height


def img2img(model: Model, batch: list[Params], image: Image.Image, strength: float) -> list[Image.Image]:
    """One image per entry of ``batch``, each started from ``image`` re-noised by ``strength``."""
    # 1. Check inputs
    for p in batch:
        p.check()
    check_same_settings(batch)
    check_strength(strength)
    first = batch[0]
    if first.cfg_rescale:
        raise ConfigError("cfg_rescale is not available for img2img (diffusers' img2img pipeline has none)")
    width, height = target_size(first, image)
    init = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    # 2. Nothing to re-noise: SD's script would run zero steps
    if int(strength * first.steps) < 1:
        return [init.copy() for _ in batch]
    # 3. Conditioning and sampler
    cond, uncond = encode_batch(model, [p.prompt for p in batch], [p.negative_prompt for p in batch])
    pipe = StableDiffusionImg2ImgPipeline(**model.pipe.components, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
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
