"""AUTOMATIC1111's samplers by their web-UI names, each with its default schedule type.

A1111 (>= 1.9, modules/sd_samplers_kdiffusion.py ``samplers_k_diffusion`` and
modules/sd_samplers_timesteps.py) pairs a sampler with a "Schedule type"; "Automatic" picks the
sampler's own (Karras for DPM++ 2M, DPM2, DPM2 a and DPM++ 2S a, else Uniform). Names from
before 1.9 ("DPM++ 2M Karras", "LMS Karras", ...) are read as sampler + Karras, as A1111's
infotext reader does; "PNDM" (diffusers' name for PLMS) is read as PLMS.

k-diffusion samplers run on sigma tables (:mod:`~t2iscope.generate.schedules`); DDIM and PLMS on
A1111's timesteps; UniPC on diffusers' ``UniPCMultistepScheduler`` with A1111's defaults
(variant bh1, order 3, lower order final) over time-uniform steps from the top of the schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    KDPM2AncestralDiscreteScheduler,
    KDPM2DiscreteScheduler,
    LMSDiscreteScheduler,
    PNDMScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from t2iscope.errors import ConfigError
from t2iscope.generate import sampling
from t2iscope.generate.schedules import AUTOMATIC, check_schedule_type
from t2iscope.registry import Registry

K_DIFFUSION, TIMESTEPS, DIFFUSERS = "k-diffusion", "timesteps", "diffusers"


@dataclass(frozen=True)
class Sampler:
    """One A1111 sampler: its update rule, family and default schedule type."""

    summary: str  # one line for `t2iscope generate list samplers`
    rule: Callable[..., Any] | None
    family: str = K_DIFFUSION
    schedule: str = "Uniform"  # what "Automatic" means for this sampler
    discard_penultimate: bool = False  # A1111's discard_next_to_last_sigma (DPM2, DPM2 a)
    ancestral: bool = False  # draws fresh noise every step, so images change with steps
    second_order: bool = False  # two model calls per step: prompt schedules count twice the steps

    def total_steps(self, steps: int) -> int:
        """Model calls a prompt-editing schedule spans (A1111's ``SamplerData.total_steps``)."""
        return steps * 2 if self.second_order else steps

    def resolve_schedule(self, schedule_type: str) -> str:
        """The schedule type actually used; timestep samplers have their own (A1111 ignores it)."""
        check_schedule_type(schedule_type)
        if self.family != K_DIFFUSION:
            return AUTOMATIC
        return self.schedule if schedule_type == AUTOMATIC else schedule_type


SAMPLERS: Registry[Sampler] = Registry("sampler")
for _name, _sampler in {
    "DPM++ 2M": Sampler(
        "DPM-Solver++(2M), second-order multistep (Lu et al. 2022)", sampling.dpmpp_2m, schedule="Karras"
    ),
    "DPM++ 2S a": Sampler(
        "DPM-Solver++(2S) ancestral: two model calls and fresh noise per step",
        sampling.dpmpp_2s_ancestral,
        schedule="Karras",
        ancestral=True,
        second_order=True,
    ),
    "Euler a": Sampler(
        "Euler ancestral: fresh noise every step, so images change with steps",
        sampling.euler_ancestral,
        ancestral=True,
    ),
    "Euler": Sampler("Euler's method: first order, deterministic", sampling.euler),
    "LMS": Sampler("Linear multistep (order 4) over the noise levels", sampling.lms),
    "Heun": Sampler(
        "Heun's method: second order, two model calls per step", sampling.heun, second_order=True
    ),
    "DPM2": Sampler(
        "DPM-Solver-2: second order, midpoint in log sigma",
        sampling.dpm_2,
        schedule="Karras",
        discard_penultimate=True,
        second_order=True,
    ),
    "DPM2 a": Sampler(
        "DPM2 ancestral",
        sampling.dpm_2_ancestral,
        schedule="Karras",
        discard_penultimate=True,
        ancestral=True,
        second_order=True,
    ),
    "DDIM": Sampler("Deterministic first-order steps on A1111's timesteps (eta 0)", sampling.ddim, TIMESTEPS),
    "PLMS": Sampler("Pseudo linear multistep on A1111's timesteps (LDM's PLMS)", sampling.plms, TIMESTEPS),
    "UniPC": Sampler("Unified predictor-corrector (bh1, order 3), made for few steps", None, DIFFUSERS),
}.items():
    SAMPLERS.register(_name)(_sampler)

# Older spellings and what they mean: (sampler, schedule type)
ALIASES = {
    **{f"{name} Karras": (name, "Karras") for name in ("DPM++ 2M", "DPM++ 2S a", "LMS", "DPM2", "DPM2 a")},
    "PNDM": ("PLMS", AUTOMATIC),
}


def resolve(sampler: str, schedule_type: str = AUTOMATIC, field: str = "sampler") -> tuple[str, str]:
    """(sampler name, schedule type) with old spellings read as A1111 reads them.

    ``DPM++ 2M Karras`` + Automatic -> (``DPM++ 2M``, ``Karras``). Raises ConfigError for an
    unknown name (listing the valid ones) or an unknown schedule type, or an old ``X Karras``
    name combined with another schedule type.
    """
    if sampler in ALIASES:
        name, implied = ALIASES[sampler]
        if implied != AUTOMATIC and schedule_type not in (AUTOMATIC, implied):
            raise ConfigError(f"{field} {sampler!r} implies schedule type {implied}; got {schedule_type!r}")
        return name, implied if schedule_type == AUTOMATIC else schedule_type
    if sampler not in SAMPLERS:
        valid = ", ".join([*SAMPLERS.names(), *ALIASES])
        raise ConfigError(f"unknown {field} {sampler!r}; valid: {valid}")
    check_schedule_type(schedule_type)
    return sampler, schedule_type


# diffusers' nearest scheduler for each name (its documented A1111 mapping), for the places that
# run a stock diffusers pipeline: a trained model folder's scheduler, benchmarks' baseline.
# Latents are not images, so DDIM never clips x0 (A1111's does not either).
_DIFFUSERS: dict[str, tuple[type[SchedulerMixin], dict[str, Any]]] = {
    "DPM++ 2M": (DPMSolverMultistepScheduler, {}),
    "DPM++ 2S a": (DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++"}),
    "Euler a": (EulerAncestralDiscreteScheduler, {}),
    "Euler": (EulerDiscreteScheduler, {}),
    "LMS": (LMSDiscreteScheduler, {}),
    "Heun": (HeunDiscreteScheduler, {}),
    "DPM2": (KDPM2DiscreteScheduler, {}),
    "DPM2 a": (KDPM2AncestralDiscreteScheduler, {}),
    "DDIM": (DDIMScheduler, {"clip_sample": False}),
    "PLMS": (PNDMScheduler, {"skip_prk_steps": True}),
    "UniPC": (UniPCMultistepScheduler, {}),
}


def unipc_scheduler(config: Any) -> SchedulerMixin:
    """diffusers' UniPC with A1111's defaults (uni_pc_variant bh1, order 3, lower order final).

    A1111's time-uniform UniPC runs from t=999 down to the lowest noise level (t_0 = 1/N), so the
    last step lands on sigma_min, not 0 (diffusers' bh1 step to sigma 0 also gives NaN).
    """
    return UniPCMultistepScheduler.from_config(
        config,
        solver_type="bh1",
        solver_order=3,
        lower_order_final=True,
        timestep_spacing="linspace",
        final_sigmas_type="sigma_min",
    )


def make_scheduler(name: str, config: Any) -> SchedulerMixin:
    """diffusers' nearest scheduler for sampler ``name`` on ``config`` (Karras names use Karras sigmas).

    For stock diffusers pipelines only; t2iscope's own generation samples with A1111's rules.
    Raises ConfigError for an unknown name.
    """
    sampler, schedule = resolve(name)
    cls, overrides = _DIFFUSERS[sampler]
    if schedule == "Karras":
        overrides = {**overrides, "use_karras_sigmas": True}
    return cls.from_config(config, **overrides)
