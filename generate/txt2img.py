"""txt2img: prompts to images with diffusers' StableDiffusionPipeline and A1111 conditioning."""

from __future__ import annotations

from PIL import Image

from t2iscope.generate.conditioning import encode_batch
from t2iscope.generate.models import Model
from t2iscope.generate.params import Params, check_same_settings
from t2iscope.generate.samplers import make_scheduler
from t2iscope.generate.seeds import generators


def txt2img(model: Model, batch: list[Params]) -> list[Image.Image]:
    """One image per entry of ``batch`` (single-image Params with concrete seeds, shared settings)."""
    # 1. Check inputs
    for p in batch:
        p.check()
    check_same_settings(batch)
    first = batch[0]
    # 2. Conditioning (emphasis, BREAK and long prompts come in through the embeddings)
    cond, uncond = encode_batch(model, [p.prompt for p in batch], [p.negative_prompt for p in batch])
    # 3. Sampler (and the per-step bar the single-image commands show)
    model.pipe.scheduler = make_scheduler(first.sampler, model.scheduler_config)
    model.pipe.set_progress_bar_config(**model.progress_bar())
    # 4. Denoise and decode; one CPU generator per image keeps a seed's image batch-independent
    return model.pipe(
        prompt_embeds=cond,
        negative_prompt_embeds=uncond,
        num_inference_steps=first.steps,
        guidance_scale=first.cfg_scale,
        guidance_rescale=first.cfg_rescale,
        width=first.width or model.native_size,
        height=first.height or model.native_size,
        generator=generators([p.seed for p in batch]),
        output_type="pil",
    ).images
