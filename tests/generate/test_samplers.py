"""A1111's samplers and schedule types, checked against k-diffusion and A1111 themselves.

The reference values in fixtures/kdiffusion_tables.json were computed by k-diffusion 0.1.1.post1
and A1111's modules/sd_schedulers.py (see fixtures/kdiffusion_regenerate.py): every sigma table,
the sigma <-> timestep maps, and every sampler's update rule run on the exact denoiser of N(0, I)
data with fixed noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from t2iscope.errors import ConfigError
from t2iscope.generate import sampling
from t2iscope.generate.diffusion import noise_levels
from t2iscope.generate.params import Params
from t2iscope.generate.samplers import SAMPLERS, make_scheduler, resolve
from t2iscope.generate.schedules import SCHEDULE_TYPES, NoiseLevels, schedule_sigmas
from t2iscope.generate.txt2img import txt2img

REF = json.loads((Path(__file__).parent / "fixtures" / "kdiffusion_tables.json").read_text())
SD = {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}
LEVELS = NoiseLevels.from_config(SD)
# A1111 1.10's sampler list (modules/sd_samplers_kdiffusion.py, sd_samplers_timesteps.py) that is built here
A1111_NAMES = {
    "DPM++ 2M",
    "DPM++ 2S a",
    "Euler a",
    "Euler",
    "LMS",
    "Heun",
    "DPM2",
    "DPM2 a",
    "DDIM",
    "PLMS",
    "UniPC",
}


def test_registry_has_the_a1111_names():
    assert set(SAMPLERS) == A1111_NAMES


def test_noise_levels_match_k_diffusion():
    assert LEVELS.sigma_min == pytest.approx(REF["sigma_min"], rel=1e-6)
    assert LEVELS.sigma_max == pytest.approx(REF["sigma_max"], rel=1e-6)
    for n, sigmas in REF["get_sigmas"].items():
        np.testing.assert_allclose(LEVELS.uniform(int(n)), sigmas, rtol=1e-5)
    probe = REF["sigma_to_t"]
    np.testing.assert_allclose(
        LEVELS.sigma_to_t(torch.tensor(probe["sigma"])), probe["t"], rtol=1e-5, atol=1e-3
    )
    back = REF["t_to_sigma"]
    np.testing.assert_allclose(LEVELS.t_to_sigma(torch.tensor(back["t"])), back["sigma"], rtol=1e-5)


@pytest.mark.parametrize("label", sorted(SCHEDULE_TYPES))
def test_schedule_tables_match_a1111(label):
    for n, expected in REF["tables"][label].items():
        got = schedule_sigmas(label, int(n), LEVELS)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=f"{label} n={n}")


# A1111's "DDIM" schedule type is DDIM's own leading spacing (timesteps 1, 1 + 1000 // n, ...) by design
@pytest.mark.parametrize("label", sorted(set(SCHEDULE_TYPES) - {"DDIM"}))
@pytest.mark.parametrize("steps", [1, 2, 5])
def test_every_schedule_starts_at_the_top_of_the_noise(label, steps):
    """The fault: diffusers' leading spacing ran 1 step at t=1. A1111's tables start at sigma_max."""
    sigmas = schedule_sigmas(label, steps, LEVELS)
    assert len(sigmas) == steps + 1
    # A1111's KL Optimal ends on the lowest noise level instead of 0
    assert float(sigmas[-1]) == (pytest.approx(LEVELS.sigma_min) if label == "KL Optimal" else 0)
    assert float(sigmas[0]) == pytest.approx(LEVELS.sigma_max, rel=0.02)


def test_discard_penultimate_drops_the_next_to_last_sigma():
    full = schedule_sigmas("Karras", 6, LEVELS)
    np.testing.assert_allclose(
        schedule_sigmas("Karras", 5, LEVELS, discard_penultimate=True), [*full[:-2], 0]
    )


def _exact(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return x / (1 + sigma**2)


RULES = {
    "euler": sampling.euler,
    "euler_ancestral": sampling.euler_ancestral,
    "heun": sampling.heun,
    "dpm_2": sampling.dpm_2,
    "dpm_2_ancestral": sampling.dpm_2_ancestral,
    "lms": sampling.lms,
    "dpmpp_2s_ancestral": sampling.dpmpp_2s_ancestral,
    "dpmpp_2m": sampling.dpmpp_2m,
}


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("n", [1, 3, 8])
def test_update_rules_match_k_diffusion(name, n):
    x0 = torch.tensor(REF["x0"]).reshape(2, 4, 3, 3)
    queue = [torch.tensor(z).reshape(2, 4, 3, 3) for z in REF["noises"]]
    sigmas = schedule_sigmas("Karras", n, LEVELS)
    out = RULES[name](_exact, x0 * sigmas[0], sigmas, lambda: queue.pop(0))
    np.testing.assert_allclose(out.reshape(-1), REF["runs"][f"{name}/{n}"], atol=2e-5)


def test_timesteps_are_a1111s():
    assert sampling.timesteps(5).tolist() == [1, 201, 401, 601, 801]
    assert sampling.timesteps(1).tolist() == [1]


def test_old_sampler_names_read_as_a1111_reads_them():
    assert resolve("DPM++ 2M Karras") == ("DPM++ 2M", "Karras")
    assert resolve("PNDM") == ("PLMS", "Automatic")
    assert resolve("Euler a", "Exponential") == ("Euler a", "Exponential")
    with pytest.raises(ConfigError, match="implies schedule type Karras"):
        resolve("LMS Karras", "Exponential")
    with pytest.raises(ConfigError, match=r"unknown sampler 'Euler b'; valid: .*Euler a"):
        resolve("Euler b")
    with pytest.raises(ConfigError, match="scheduler must be one of Automatic, Uniform, Karras"):
        Params("x", scheduler="karras").check()


def test_automatic_is_the_samplers_own_schedule():
    assert SAMPLERS.get("DPM++ 2M").resolve_schedule("Automatic") == "Karras"
    assert SAMPLERS.get("Euler a").resolve_schedule("Automatic") == "Uniform"
    assert SAMPLERS.get("Euler a").resolve_schedule("SGM Uniform") == "SGM Uniform"


def test_diffusers_schedulers_keep_the_model_noise_schedule(tiny_model):
    """The stock-pipeline mapping (training previews, benchmark baseline) keeps the betas."""
    assert make_scheduler("DPM++ 2M Karras", tiny_model.scheduler_config).config.use_karras_sigmas
    for name in SAMPLERS:
        assert make_scheduler(name, tiny_model.scheduler_config).config.beta_end == pytest.approx(0.012)
    assert make_scheduler("DDIM", {**SD, "clip_sample": True}).config.clip_sample is False


@pytest.mark.parametrize("name", sorted(A1111_NAMES))
def test_every_sampler_generates(tiny_model, name):
    (image,) = txt2img(tiny_model, Params("a red dog", seed=3, steps=3, sampler=name).expand())
    arr = np.asarray(image)
    assert arr.shape == (64, 64, 3)
    assert np.isfinite(arr).all() and arr.std() > 0


@pytest.mark.parametrize(
    ("sampler", "calls"), [("Euler", 4), ("Heun", 7), ("DPM2", 7), ("DDIM", 3), ("PLMS", 4)]
)
def test_model_calls_per_sampler(tiny_model, unet_calls, sampler, calls):
    """Heun and DPM2 call twice per step but once on the last; DDIM runs steps - 1 calls as A1111's."""
    with unet_calls(tiny_model) as shapes:
        txt2img(tiny_model, [Params("x", seed=1, steps=4, sampler=sampler)])
    assert len(shapes) == calls


def test_the_embedded_model_noise_levels_are_sds(tiny_model):
    np.testing.assert_allclose(noise_levels(tiny_model).sigmas, LEVELS.sigmas)
