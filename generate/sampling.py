"""The samplers' update rules, written after k-diffusion and A1111's timestep samplers.

Every rule takes ``model(x, sigma) -> denoised`` (the CFG denoiser, k-diffusion's convention:
``x`` is in sigma scaling, ``x = x0 + sigma * eps``), the sigma table from
:mod:`t2iscope.generate.schedules` and, for ancestral/SDE-free stochastic rules, ``noise()``
returning fresh N(0, 1) noise shaped like ``x`` (each image's own generator, so an image never
depends on its batch). Each returns the final latents.

Sources: k-diffusion ``k_diffusion/sampling.py`` (sample_euler, sample_euler_ancestral,
sample_heun, sample_dpm_2, sample_dpm_2_ancestral, sample_lms, sample_dpmpp_2s_ancestral,
sample_dpmpp_2m; Karras et al. 2022, Lu et al. 2022) and A1111 modules/sd_samplers_timesteps_impl.py
(ddim, plms), whose timesteps are A1111's ``range(0, 1000, 1000 // steps) + 1``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from scipy import integrate

from t2iscope.generate.schedules import NoiseLevels

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Noise = Callable[[], torch.Tensor]
Callback = Callable[[int], None] | None


def to_d(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """The Karras ODE derivative dx/dsigma."""
    return (x - denoised) / sigma


def ancestral_step(sigma_from: torch.Tensor, sigma_to: torch.Tensor, eta: float = 1.0) -> tuple:
    """(sigma_down, sigma_up): where a deterministic step lands and how much noise it adds back."""
    if not eta:
        return sigma_to, torch.zeros_like(sigma_to)
    up = torch.minimum(sigma_to, eta * (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5)
    return (sigma_to**2 - up**2) ** 0.5, up


def _tick(callback: Callback, i: int) -> None:
    if callback is not None:
        callback(i)


def euler(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise, callback: Callback = None):
    for i in range(len(sigmas) - 1):
        d = to_d(x, sigmas[i], model(x, sigmas[i]))
        x = x + d * (sigmas[i + 1] - sigmas[i])
        _tick(callback, i)
    return x


def euler_ancestral(
    model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise, callback: Callback = None
):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        down, up = ancestral_step(sigmas[i], sigmas[i + 1])
        x = x + to_d(x, sigmas[i], denoised) * (down - sigmas[i])
        if sigmas[i + 1] > 0:
            x = x + noise() * up
        _tick(callback, i)
    return x


def heun(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise, callback: Callback = None):
    for i in range(len(sigmas) - 1):
        d = to_d(x, sigmas[i], model(x, sigmas[i]))
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == 0:  # Euler on the last step
            x = x + d * dt
        else:
            x_2 = x + d * dt
            d_2 = to_d(x_2, sigmas[i + 1], model(x_2, sigmas[i + 1]))
            x = x + (d + d_2) / 2 * dt
        _tick(callback, i)
    return x


def _log_mid(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.log().lerp(b.log(), 0.5).exp()


def dpm_2(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise, callback: Callback = None):
    for i in range(len(sigmas) - 1):
        d = to_d(x, sigmas[i], model(x, sigmas[i]))
        if sigmas[i + 1] == 0:
            x = x + d * (sigmas[i + 1] - sigmas[i])
        else:
            mid = _log_mid(sigmas[i], sigmas[i + 1])
            x_2 = x + d * (mid - sigmas[i])
            x = x + to_d(x_2, mid, model(x_2, mid)) * (sigmas[i + 1] - sigmas[i])
        _tick(callback, i)
    return x


def dpm_2_ancestral(
    model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise, callback: Callback = None
):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        down, up = ancestral_step(sigmas[i], sigmas[i + 1])
        d = to_d(x, sigmas[i], denoised)
        if down == 0:
            x = x + d * (down - sigmas[i])
        else:
            mid = _log_mid(sigmas[i], down)
            x_2 = x + d * (mid - sigmas[i])
            x = x + to_d(x_2, mid, model(x_2, mid)) * (down - sigmas[i])
            x = x + noise() * up
        _tick(callback, i)
    return x


def _lms_coefficient(order: int, t: list[float], i: int, j: int) -> float:
    def basis(tau: float) -> float:
        prod = 1.0
        for k in range(order):
            if k != j:
                prod *= (tau - t[i - k]) / (t[i - j] - t[i - k])
        return prod

    return integrate.quad(basis, t[i], t[i + 1], epsrel=1e-4)[0]


def lms(
    model: Model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    noise: Noise,
    callback: Callback = None,
    order: int = 4,
):
    t = sigmas.double().cpu().tolist()
    ds: list[torch.Tensor] = []
    for i in range(len(sigmas) - 1):
        ds.append(to_d(x, sigmas[i], model(x, sigmas[i])))
        ds = ds[-order:]
        cur = min(i + 1, order)
        coefficients = [_lms_coefficient(cur, t, i, j) for j in range(cur)]
        x = x + sum(c * d for c, d in zip(coefficients, reversed(ds), strict=True))
        _tick(callback, i)
    return x


def _t(sigma: torch.Tensor) -> torch.Tensor:
    return sigma.log().neg()


def _sigma(t: torch.Tensor) -> torch.Tensor:
    return t.neg().exp()


def dpmpp_2s_ancestral(
    model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise, callback: Callback = None
):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        down, up = ancestral_step(sigmas[i], sigmas[i + 1])
        if down == 0:
            x = x + to_d(x, sigmas[i], denoised) * (down - sigmas[i])
        else:
            t, t_next = _t(sigmas[i]), _t(down)
            h = t_next - t
            s = t + h / 2
            x_2 = (_sigma(s) / _sigma(t)) * x - (-h / 2).expm1() * denoised
            x = (_sigma(t_next) / _sigma(t)) * x - (-h).expm1() * model(x_2, _sigma(s))
        if sigmas[i + 1] > 0:
            x = x + noise() * up
        _tick(callback, i)
    return x


def dpmpp_2m(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise, callback: Callback = None):
    old = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        t, t_next = _t(sigmas[i]), _t(sigmas[i + 1])
        h = t_next - t
        if old is None or sigmas[i + 1] == 0:
            x = (_sigma(t_next) / _sigma(t)) * x - (-h).expm1() * denoised
        else:
            r = (t - _t(sigmas[i - 1])) / h
            corrected = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old
            x = (_sigma(t_next) / _sigma(t)) * x - (-h).expm1() * corrected
        old = denoised
        _tick(callback, i)
    return x


# A1111's timestep samplers work in the variance-preserving scaling x_vp = x0 sqrt(a) + eps sqrt(1-a)
# on integer timesteps. They reach the model through the same sigma denoiser: at timestep t,
# x = x_vp / sqrt(a_t) and sigma = sigma_t, so eps = (x - denoised) / sigma.


def timesteps(steps: int) -> torch.Tensor:
    """A1111's timesteps for DDIM/PLMS: ``range(0, 1000, 1000 // steps) + 1``, clipped to 999."""
    return (torch.arange(0, 1000, 1000 // steps) + 1).clamp(0, 999)


def eps_at(
    model: Model, x_vp: torch.Tensor, t: int, levels: NoiseLevels
) -> tuple[torch.Tensor, torch.Tensor]:
    a = levels.alphas_cumprod[t]
    sigma = levels.sigmas[t].to(x_vp.device)
    x = x_vp / a.sqrt()
    denoised = model(x, sigma)
    return (x - denoised) / sigma, denoised


def ddim(model: Model, x: torch.Tensor, ts: torch.Tensor, levels: NoiseLevels, callback: Callback = None):
    """A1111's DDIM (eta 0): ``len(ts) - 1`` model calls from ts[-1] down to ts[1], as A1111 runs it."""
    ac = levels.alphas_cumprod.double()
    prev = torch.nn.functional.pad(ts[:-1], (1, 0))
    for i in range(len(ts) - 1):
        index = len(ts) - 1 - i
        a_t, a_prev = ac[ts[index]].float(), ac[prev[index]].float()
        _, x0 = eps_at(model, x, int(ts[index]), levels)
        e_t = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * e_t
        _tick(callback, i)
    return x


def plms(model: Model, x: torch.Tensor, ts: torch.Tensor, levels: NoiseLevels, callback: Callback = None):
    """A1111's PLMS: a pseudo improved-Euler first step, then Adams-Bashforth of order up to 4."""
    ac = levels.alphas_cumprod.double()
    prev = torch.nn.functional.pad(ts[:-1], (1, 0))
    old: list[torch.Tensor] = []

    def step(e_t: torch.Tensor, index: int) -> torch.Tensor:
        a_t, a_prev = ac[ts[index]].float(), ac[prev[index]].float()
        x0 = (x - (1 - a_t).sqrt() * e_t) / a_t.sqrt()
        return a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * e_t

    for i in range(len(ts) - 1):
        index = len(ts) - 1 - i
        e_t, _ = eps_at(model, x, int(ts[index]), levels)
        if not old:
            e_next, _ = eps_at(model, step(e_t, index), int(ts[max(index - 1, 0)]), levels)
            e_prime = (e_t + e_next) / 2
        elif len(old) == 1:
            e_prime = (3 * e_t - old[-1]) / 2
        elif len(old) == 2:
            e_prime = (23 * e_t - 16 * old[-1] + 5 * old[-2]) / 12
        else:
            e_prime = (55 * e_t - 59 * old[-1] + 37 * old[-2] - 9 * old[-3]) / 24
        x = step(e_prime, index)
        old = [*old, e_t][-3:]
        _tick(callback, i)
    return x
