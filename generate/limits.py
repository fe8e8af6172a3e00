"""Generation defaults and limits, in one place (no torch import, so ``--help`` can show them).

Defaults and limits follow AUTOMATIC1111's web UI, so its users find what they know. ``Params``,
suite files (their defaults and grid axes) and every ``t2iscope generate`` option read these
constants; ``params.check_number`` refuses a value outside them with one line naming the field.

Sources: A1111 ``modules/ui.py`` sliders (Sampling steps 1..150, Width/Height up to 2048, CFG Scale
1..30, Batch size 1..8, Mask blur 0..64, Only masked padding 0..256), ``modules/processing.py``
(random seeds drawn below 2**32), ``scripts/postprocessing_upscale.py`` (Extras resize 1..8).
"""

from __future__ import annotations

import re

# Defaults (A1111's)
DEFAULT_STEPS = 20
DEFAULT_CFG_SCALE = 7.0
DEFAULT_CFG_RESCALE = 0.0  # guidance rescale off: plain CFG, as SD
# A1111's default through v1.5, and the scheduler the embedded model's folder ships, so `t2iscope generate`,
# the stock `from_pretrained` pipeline and the model card's figures all sample the same way.
DEFAULT_SAMPLER = "Euler a"
DEFAULT_BATCH_SIZE = 1
DEFAULT_CLIP_SKIP = 1  # A1111's "Clip skip" setting: 1 = last layer
DEFAULT_EMPHASIS = "Original"
EMPHASIS_MODES = ("Original", "No norm", "Ignore", "None")  # A1111 modules/sd_emphasis.py
# Hires fix (A1111 modules/processing.py StableDiffusionProcessingTxt2Img and ui.py): upscale by
# 2, latent upscaler, 0.7 denoising strength, second pass as many steps as the first
DEFAULT_HR_SCALE = 2.0
DEFAULT_HR_UPSCALER = "Latent"
HR_UPSCALERS = ("Latent", "Latent (nearest)", "Lanczos")
DEFAULT_DENOISING_STRENGTH = 0.7
# The suite manifest's columns for these settings (generate/run_suite.py SCHEMA), by kind, for the
# readers that check and show them (evaluate.context, dashboards.data)
A1111_TEXT_COLUMNS = ("scheduler", "emphasis", "hr_upscaler", "model_hash")
A1111_NUMBER_COLUMNS = (
    "subseed", "subseed_strength", "clip_skip", "hr_scale", "hr_second_pass_steps", "denoising_strength",
)  # fmt: skip
RANDOM_SEED = -1  # A1111's "pick one for me"

# Limits
MAX_STEPS = 150  # A1111's steps slider
MIN_SIDE = 8  # pixels; a side is a multiple of 8 (one latent pixel of SD's VAE). A1111's slider starts
# at 64, but the embedded model works at 64x64 and tests go smaller.
MAX_SIDE = 2048  # pixels, A1111's width/height sliders; also caps an outpaint canvas and the size an
# input image sets when no --width/--height is given
# A1111's slider is 1..30; 0..1 is allowed too (A1111's formula then leans toward the negative prompt)
MAX_CFG_SCALE = 30.0
MAX_CLIP_SKIP = 12  # A1111's "Clip skip" slider
MAX_HR_SCALE = 4.0  # A1111's "Upscale by" slider
MAX_SEED = 2**32 - 1  # A1111 draws seeds below 2**32; a batch from seed s uses s..s+n-1, all within
MAX_BATCH_SIZE = 64  # images in one U-Net batch: A1111's slider stops at 8, large GPUs take more
MAX_UPSCALE = 8  # integer output upscale, A1111's Extras "Resize" slider maximum
MAX_MASK_BLUR = 64  # pixels, A1111's "Mask blur" slider (also outpaint's seam overlap)
MAX_PADDING = 256  # pixels, A1111's "Only masked padding" slider
# An input image (--image, --mask) may hold at most PIL's default decompression-bomb threshold
# (Image.MAX_IMAGE_PIXELS, about 9459x9459); checked from the header, before any pixel is decoded.
MAX_INPUT_PIXELS = 89_478_485
# A suite run makes at most this many images (the grid's size, or --limit when smaller); the
# manifest is rewritten after every batch, so far larger runs belong in several folders.
MAX_SUITE_IMAGES = 1_000_000
# One grid axis holds at most this many values (every seed once), so counts stay machine integers;
# axes are expanded lazily, and --limit takes the first images of a grid of any size up to that.
MAX_AXIS_VALUES = MAX_SEED + 1


# A prompt's language: a code like en, de, zh-Hans or pt_BR (BCP 47's shape, loosely). It becomes
# part of image file names, so nothing else is accepted; RFC 5646 section 4.4.1: 35 characters hold
# any practical language tag.
LANGUAGE_CODE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")
MAX_LANGUAGE = 35


def is_language_code(text: str) -> bool:
    """True for a language code as suites write one (``fullmatch``: ``"en\\n"`` is not one)."""
    return len(text) <= MAX_LANGUAGE and LANGUAGE_CODE.fullmatch(text) is not None
