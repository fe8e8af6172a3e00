"""AUTOMATIC1111 sampler names mapped onto diffusers schedulers.

Users know the web UI's names ("Euler a", "DPM++ 2M Karras"); diffusers knows scheduler classes.
The table follows diffusers' documented A1111 mapping. A scheduler is rebuilt from the model's own
scheduler config, so the training noise schedule (betas, prediction type) always carries over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    LMSDiscreteScheduler,
    PNDMScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from t2iscope.registry import Registry


@dataclass(frozen=True)
class Sampler:
    """A diffusers scheduler class plus the config overrides that make it match the A1111 sampler."""

    scheduler: type[SchedulerMixin]
    summary: str  # one line for `t2iscope generate list`
    overrides: dict[str, Any] = field(default_factory=dict)

    def build(self, config: Any) -> SchedulerMixin:
        return self.scheduler.from_config(config, **self.overrides)


SAMPLERS: Registry[Sampler] = Registry("sampler")
for _name, _sampler in {
    "Euler": Sampler(EulerDiscreteScheduler, "Euler's method: first order, deterministic"),
    "Euler a": Sampler(
        EulerAncestralDiscreteScheduler,
        "Euler ancestral: fresh noise every step, so images change with steps",
    ),
    # Latents are not images: A1111's DDIM never clips x0 to [-1, 1], but diffusers' DDIM does unless
    # the model's config says otherwise (SD 1.x's does; a config written by another scheduler may not).
    "DDIM": Sampler(DDIMScheduler, "Deterministic first-order steps (eta 0)", {"clip_sample": False}),
    "DPM++ 2M": Sampler(DPMSolverMultistepScheduler, "DPM-Solver++ second-order multistep"),
    "DPM++ 2M Karras": Sampler(
        DPMSolverMultistepScheduler,
        "DPM++ 2M on Karras et al.'s noise levels (smaller steps near the end)",
        {"use_karras_sigmas": True},
    ),
    "UniPC": Sampler(UniPCMultistepScheduler, "Predictor-corrector multistep, made for few steps"),
    "PNDM": Sampler(
        PNDMScheduler, "A1111's PLMS: PNDM without the Runge-Kutta warm-up steps", {"skip_prk_steps": True}
    ),
    "LMS": Sampler(LMSDiscreteScheduler, "Linear multistep over the noise levels"),
    "Heun": Sampler(HeunDiscreteScheduler, "Heun's method: second order, two model calls per step"),
}.items():
    SAMPLERS.register(_name)(_sampler)


def make_scheduler(name: str, config: Any) -> SchedulerMixin:
    """A fresh scheduler for ``name`` built on ``config``; raises ConfigError listing valid names."""
    return SAMPLERS.get(name).build(config)
