"""Every A1111 sampler name maps to its diffusers scheduler and produces an image."""

from __future__ import annotations

import numpy as np
import pytest
from diffusers import DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler, PNDMScheduler

from t2iscope.errors import ConfigError
from t2iscope.generate.params import Params
from t2iscope.generate.samplers import SAMPLERS, make_scheduler
from t2iscope.generate.txt2img import txt2img

A1111_NAMES = {"Euler", "Euler a", "DDIM", "DPM++ 2M", "DPM++ 2M Karras", "UniPC", "PNDM", "LMS", "Heun"}


def test_registry_has_the_a1111_names():
    assert set(SAMPLERS) == A1111_NAMES


def test_schedulers_keep_the_model_noise_schedule(tiny_model):
    karras = make_scheduler("DPM++ 2M Karras", tiny_model.scheduler_config)
    assert isinstance(karras, DPMSolverMultistepScheduler)
    assert karras.config.use_karras_sigmas
    assert not make_scheduler("DPM++ 2M", tiny_model.scheduler_config).config.use_karras_sigmas
    assert isinstance(make_scheduler("Euler a", tiny_model.scheduler_config), EulerAncestralDiscreteScheduler)
    pndm = make_scheduler("PNDM", tiny_model.scheduler_config)
    assert isinstance(pndm, PNDMScheduler) and pndm.config.skip_prk_steps
    for name in SAMPLERS:
        assert make_scheduler(name, tiny_model.scheduler_config).config.beta_end == pytest.approx(0.012)


def test_ddim_never_clips_latents():
    # A scheduler config without clip_sample (any non-DDIM class writes one) must not turn clipping on:
    # clipping x0 to [-1, 1] flattens unit-variance latents (color right 25% on the shipped model).
    config = EulerAncestralDiscreteScheduler(beta_schedule="scaled_linear").config
    assert "clip_sample" not in config
    assert make_scheduler("DDIM", config).config.clip_sample is False


def test_unknown_sampler_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown sampler 'Euler b'; valid: .*Euler a"):
        make_scheduler("Euler b", {})


@pytest.mark.parametrize("name", sorted(A1111_NAMES))
def test_every_sampler_generates(tiny_model, name):
    (image,) = txt2img(tiny_model, Params("a red dog", seed=3, steps=3, sampler=name).expand())
    arr = np.asarray(image)
    assert arr.shape == (64, 64, 3)
    assert arr.std() > 0
