"""A tiny randomly initialised Stable Diffusion folder, shaped like the embedded model.

64x64 images, VAE scale factor 4, 16x16x4 latents, CLIP tokenizer: every pipeline path runs for
real in well under a second per image. Saved once per session as a standard diffusers folder, so
tests load it exactly as users load theirs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from t2iscope.generate.models import Model, load_model
from t2iscope.generate.tokenizer_files import write_clip_tokenizer_files


def build_tiny_sd(folder: Path) -> Path:
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=16,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 32),
        latent_channels=4,
        norm_num_groups=16,
        sample_size=64,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
        )
    )
    tokenizer = CLIPTokenizer.from_pretrained(write_clip_tokenizer_files(folder / "_tok"))
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    out = folder / "tiny-sd"
    pipe.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_sd_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sd(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny_model(tiny_sd_path: Path) -> Model:
    return load_model(tiny_sd_path, device="cpu")


@contextlib.contextmanager
def _record_unet_calls(model: Model) -> Iterator[list[tuple[int, ...]]]:
    shapes: list[tuple[int, ...]] = []
    hook = model.pipe.unet.register_forward_hook(lambda _m, args, _out: shapes.append(tuple(args[0].shape)))
    try:
        yield shapes
    finally:
        hook.remove()


@pytest.fixture
def unet_calls() -> Callable[[Model], contextlib.AbstractContextManager[list[tuple[int, ...]]]]:
    """``with unet_calls(model) as shapes:`` records the input shape of every U-Net forward call."""
    return _record_unet_calls
