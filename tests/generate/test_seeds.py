"""A seed gives the same image at any batch size; -1 picks a seed and records it."""

from __future__ import annotations

import numpy as np
import torch

from t2iscope.generate.limits import MAX_SEED
from t2iscope.generate.params import Params
from t2iscope.generate.seeds import batch_seeds, generators, resolve_seed
from t2iscope.generate.txt2img import txt2img


def test_batch_seeds_follow_a1111():
    assert batch_seeds(41, 3) == [41, 42, 43]


def test_random_seed_is_picked_and_consecutive():
    seeds = [p.seed for p in Params("x", seed=-1, batch_size=3).expand()]
    assert 0 <= seeds[0] <= MAX_SEED
    assert seeds == [seeds[0], seeds[0] + 1, seeds[0] + 2]
    assert resolve_seed(7) == 7


def test_a_random_batch_stays_within_the_seed_range(monkeypatch):
    # the random first seed leaves room for the batch: s..s+n-1 <= MAX_SEED
    monkeypatch.setattr("secrets.randbelow", lambda n: n - 1)
    assert batch_seeds(-1, 64)[-1] == MAX_SEED
    assert Params("x", seed=-1, batch_size=64).check().expand()[-1].seed == MAX_SEED


def test_generators_are_independent_per_seed():
    a, b = generators([5, 6])
    (c,) = generators([6])
    noise_b, noise_c = torch.randn(4, generator=b), torch.randn(4, generator=c)
    assert torch.equal(noise_b, noise_c)
    assert not torch.equal(torch.randn(4, generator=a), noise_b)


def test_seed_gives_same_image_at_any_batch_size(tiny_model):
    # Euler a is ancestral: it draws fresh noise at every step, the hard case for batch independence
    batch = Params("a red dog", seed=10, steps=3, sampler="Euler a", batch_size=3).expand()
    together = txt2img(tiny_model, batch)
    (alone,) = txt2img(tiny_model, [batch[1]])
    diff = np.abs(np.asarray(together[1], dtype=int) - np.asarray(alone, dtype=int))
    assert diff.max() <= 2
    assert np.abs(np.asarray(together[0], dtype=int) - np.asarray(alone, dtype=int)).mean() > 1
