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
from transformers import CLIPTextConfig, CLIPTextModel

from t2iscope.generate.models import Model, embedded_model_path, load_model
from t2iscope.generate.random_models import random_sd_pipeline


def build_tiny_sd(folder: Path) -> Path:
    out = folder / "tiny-sd"
    random_sd_pipeline("tiny").save_pretrained(out)
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


def _available_models() -> list[str]:
    """The tiny random model always; the embedded model too once models/sd exists."""
    return ["tiny", *(["embedded"] if (embedded_model_path() / "model_index.json").is_file() else [])]


@pytest.fixture(scope="session")
def embedded_model() -> Model:
    """The shipped embedded model (models/sd): tests of what users get run on it, never skipped."""
    return load_model(None, device="cpu")


@pytest.fixture(scope="session", params=_available_models())
def each_model(request: pytest.FixtureRequest, tiny_model: Model) -> Model:
    """Every model the end-to-end checks run on (tests/generate/test_modes_end_to_end.py)."""
    return tiny_model if request.param == "tiny" else load_model(None, device="cpu")


@pytest.fixture(scope="session")
def encoder() -> CLIPTextModel:
    """A 2-layer CLIP text encoder on CLIP's vocabulary, for the text-encoding tests."""
    torch.manual_seed(0)
    config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )
    return CLIPTextModel(config).eval()
