"""Noise levels: the model's discrete sigmas and A1111's "Schedule type" tables over them.

A Stable Diffusion model is trained on 1000 discrete noise levels ``sigma_t = sqrt((1 - a_t) / a_t)``
(``a_t`` = alphas_cumprod of the model's beta schedule). A sampler run of ``n`` steps visits
``n`` of those levels, then 0. Which ones is the *schedule type* (A1111 >= 1.9 "Schedule type",
modules/sd_schedulers.py); every table here starts at the top of the schedule at any step count,
as A1111's and k-diffusion's do (diffusers' ``timestep_spacing="leading"`` with ``steps_offset=1``
does not: one step there runs at t=1, where the prompt cannot matter).

Formulas: k-diffusion (Crowson, ``k_diffusion/sampling.py``: get_sigmas_karras, _exponential,
_polyexponential; ``k_diffusion/external.py``: DiscreteSchedule.get_sigmas, sigma_to_t, t_to_sigma)
and A1111's modules/sd_schedulers.py (uniform, sgm_uniform, kl_optimal, simple, normal, ddim, beta).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from scipy import stats

from t2iscope.errors import ConfigError

AUTOMATIC = "Automatic"
KARRAS_RHO = 7.0  # Karras et al. 2022, eq. 5; A1111's default rho for Karras
POLYEXPONENTIAL_RHO = 1.0  # A1111's default rho for Polyexponential
BETA_ALPHA = BETA_BETA = 0.6  # A1111's beta_dist_alpha / beta_dist_beta defaults (Lee et al. 2024)


def alphas_cumprod(config: Any) -> torch.Tensor:
    """[num_train_timesteps] float32 cumulative alphas of a diffusers scheduler config.

    ``scaled_linear`` (SD 1.x/2.x: betas = linspace(sqrt(start), sqrt(end), N)**2) and ``linear``,
    computed in float64 as LDM's ``register_schedule`` does, stored float32 as LDM's buffer is.
    ``trained_betas`` wins when set. Raises ConfigError for another beta_schedule.
    """
    n = int(config["num_train_timesteps"])
    if config.get("trained_betas") is not None:
        betas = np.asarray(config["trained_betas"], dtype=np.float64)
    elif config["beta_schedule"] == "scaled_linear":
        betas = np.linspace(config["beta_start"] ** 0.5, config["beta_end"] ** 0.5, n, dtype=np.float64) ** 2
    elif config["beta_schedule"] == "linear":
        betas = np.linspace(config["beta_start"], config["beta_end"], n, dtype=np.float64)
    else:
        raise ConfigError(
            f"scheduler beta_schedule {config['beta_schedule']!r}: expected scaled_linear or linear"
        )
    return torch.from_numpy(np.cumprod(1.0 - betas)).float()


@dataclass(frozen=True)
class NoiseLevels:
    """The model's discrete noise levels (k-diffusion's ``DiscreteSchedule``).

    ``sigmas`` is [N] ascending (index t = training timestep), ``log_sigmas`` its log. The
    continuous maps between a sigma and a (fractional) timestep interpolate in log-sigma.
    """

    alphas_cumprod: torch.Tensor

    @classmethod
    def from_config(cls, config: Any) -> NoiseLevels:
        return cls(alphas_cumprod(config))

    @cached_property
    def sigmas(self) -> torch.Tensor:
        return ((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5

    @cached_property
    def log_sigmas(self) -> torch.Tensor:
        return self.sigmas.log()

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        """Fractional timestep(s) of ``sigma`` (same shape), clamped to [0, N-1]."""
        log_sigmas = self.log_sigmas.to(sigma.device)
        log_sigma = sigma.float().log().reshape(-1)
        dists = log_sigma - log_sigmas[:, None]  # [N, B]
        low = dists.ge(0).cumsum(dim=0).argmax(dim=0).clamp(max=log_sigmas.shape[0] - 2)
        high = low + 1
        w = ((log_sigmas[low] - log_sigma) / (log_sigmas[low] - log_sigmas[high])).clamp(0, 1)
        t = (1 - w) * low + w * high
        return t.reshape(sigma.shape)

    def t_to_sigma(self, t: torch.Tensor) -> torch.Tensor:
        """Sigma at fractional timestep(s) ``t`` (log-linear between the discrete levels)."""
        t = t.float()
        log_sigmas = self.log_sigmas.to(t.device)
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        return ((1 - w) * log_sigmas[low] + w * log_sigmas[high]).exp()

    def uniform(self, n: int) -> torch.Tensor:
        """k-diffusion's ``get_sigmas(n)``: n timesteps evenly from N-1 down to 0, then sigma 0."""
        t = torch.linspace(len(self.alphas_cumprod) - 1, 0, n)
        return _append_zero(self.t_to_sigma(t))


def _append_zero(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, x.new_zeros([1])])


def _karras(n: int, lo: float, hi: float, levels: NoiseLevels, rho: float = KARRAS_RHO) -> torch.Tensor:
    ramp = torch.linspace(0, 1, n)
    lo_inv, hi_inv = lo ** (1 / rho), hi ** (1 / rho)
    return _append_zero((hi_inv + ramp * (lo_inv - hi_inv)) ** rho)


def _exponential(n: int, lo: float, hi: float, levels: NoiseLevels) -> torch.Tensor:
    return _append_zero(torch.linspace(math.log(hi), math.log(lo), n).exp())


def _polyexponential(n: int, lo: float, hi: float, levels: NoiseLevels) -> torch.Tensor:
    ramp = torch.linspace(1, 0, n) ** POLYEXPONENTIAL_RHO
    return _append_zero(torch.exp(ramp * (math.log(hi) - math.log(lo)) + math.log(lo)))


def _uniform(n: int, lo: float, hi: float, levels: NoiseLevels) -> torch.Tensor:
    return levels.uniform(n)


def _timestep_table(n: int, lo: float, hi: float, levels: NoiseLevels, sgm: bool) -> torch.Tensor:
    start, end = levels.sigma_to_t(torch.tensor(hi)), levels.sigma_to_t(torch.tensor(lo))
    ts = (
        torch.linspace(float(start), float(end), n + 1)[:-1]
        if sgm
        else torch.linspace(float(start), float(end), n)
    )
    return _append_zero(levels.t_to_sigma(ts))


def _sgm_uniform(n: int, lo: float, hi: float, levels: NoiseLevels) -> torch.Tensor:
    return _timestep_table(n, lo, hi, levels, sgm=True)


def _normal(n: int, lo: float, hi: float, levels: NoiseLevels) -> torch.Tensor:
    return _timestep_table(n, lo, hi, levels, sgm=False)


def _kl_optimal(n: int, lo: float, hi: float, levels: NoiseLevels) -> torch.Tensor:
    # Sabour et al. 2024: sigmas = tan of a linear ramp in arctan(sigma); ends at sigma_min, then 0
    a_lo, a_hi = math.atan(lo), math.atan(hi)
    i = torch.arange(n + 1, dtype=torch.float32)
    return torch.tan(i / n * a_lo + (1.0 - i / n) * a_hi)


def _simple(n: int, lo: float, hi: float, levels: NoiseLevels) -> torch.Tensor:
    sigmas, stride = levels.sigmas, len(levels.sigmas) / n
    return _append_zero(torch.tensor([float(sigmas[-(1 + int(x * stride))]) for x in range(n)]))


def _ddim(n: int, lo: float, hi: float, levels: NoiseLevels) -> torch.Tensor:
    sigmas, stride = levels.sigmas, max(len(levels.sigmas) // n, 1)
    return _append_zero(torch.tensor([float(s) for s in sigmas[1::stride]][::-1]))


def _beta(n: int, lo: float, hi: float, levels: NoiseLevels) -> torch.Tensor:
    ts = stats.beta.ppf(1 - np.linspace(0, 1, n), BETA_ALPHA, BETA_BETA)
    return _append_zero(torch.tensor(lo + ts * (hi - lo), dtype=torch.float32))


SigmaTable = Callable[[int, float, float, NoiseLevels], torch.Tensor]

# A1111's labels, in its dropdown's order; each maps (n, sigma_min, sigma_max, levels) to n+1 sigmas.
SCHEDULE_TYPES: dict[str, SigmaTable] = {
    "Uniform": _uniform,
    "Karras": _karras,
    "Exponential": _exponential,
    "Polyexponential": _polyexponential,
    "SGM Uniform": _sgm_uniform,
    "KL Optimal": _kl_optimal,
    "Simple": _simple,
    "Normal": _normal,
    "DDIM": _ddim,
    "Beta": _beta,
}
SCHEDULE_CHOICES = (AUTOMATIC, *SCHEDULE_TYPES)


def check_schedule_type(name: str, field: str = "scheduler") -> str:
    """``name`` if it is one of A1111's schedule type labels, else ConfigError listing them."""
    if name not in SCHEDULE_CHOICES:
        raise ConfigError(f"{field} must be one of {', '.join(SCHEDULE_CHOICES)}; got {name!r}")
    return name


def schedule_sigmas(
    schedule_type: str, steps: int, levels: NoiseLevels, *, discard_penultimate: bool = False
) -> torch.Tensor:
    """[steps + 1] float32 sigmas, descending from the top of the schedule to 0 (A1111's get_sigmas).

    ``schedule_type`` is a resolved label (not Automatic: the sampler resolves that). Tables run
    from the model's sigma_max to its sigma_min. ``discard_penultimate`` (DPM2's option) computes
    steps + 1 levels and drops the next-to-last, as A1111 does.
    """
    table = SCHEDULE_TYPES[check_schedule_type(schedule_type)] if schedule_type != AUTOMATIC else None
    if table is None:
        raise ConfigError("schedule type Automatic must be resolved by the sampler first")
    n = steps + 1 if discard_penultimate else steps
    sigmas = table(n, levels.sigma_min, levels.sigma_max, levels).float()
    return torch.cat([sigmas[:-2], sigmas[-1:]]) if discard_penultimate else sigmas
