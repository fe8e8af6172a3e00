"""Sample one shard of the world: the truth of every scene, then the LAION columns it implies.

Everything is vectorised numpy except three per-row string steps (caption, URL, mmh3 hash).
Each shard draws from its own generator seeded by ``(seed, shard)``, so shards are independent:
generation streams shard by shard in flat memory, and shard 7 comes out the same whether or not
shards 0-6 were made in the same run.

Row identity: ``key`` is a uint64 unique per (seed, row) and is what URLs end in (16 hex digits).
``hash`` is LAION's ``mmh3.hash64(URL + TEXT)[0]``; it cannot be inside the URL it hashes, which is
why the URL carries ``key`` and the truth table carries both.
"""

from __future__ import annotations

from dataclasses import dataclass

import mmh3
import numpy as np
import pyarrow as pa

from t2iscope.curate.world import captions, domains, spec

KIND_NAMES: tuple[str, ...] = tuple(spec.KINDS)
COLOR_NAMES: tuple[str, ...] = tuple(spec.COLORS)
BACKGROUND_NAMES: tuple[str, ...] = tuple(spec.BACKGROUNDS)
HTTP_FAILURES: tuple[str, ...] = ("ok", "404", "timeout", "truncated", "html")
SIZE_NOISE: tuple[str, ...] = ("ok", "swapped", "wrong")
# Quality degradations: (rate, aesthetic penalty at full severity).
DEGRADATIONS: dict[str, tuple[float, float]] = {
    "blur": (0.14, 3.0),
    "noise": (0.14, 2.5),
    "low_contrast": (0.12, 2.2),
    "blockiness": (0.10, 2.6),
    "tiny": (0.08, 2.0),
}
METADATA_COLUMNS: tuple[str, ...] = (
    "URL",
    "TEXT",
    "WIDTH",
    "HEIGHT",
    "LANGUAGE",
    "similarity",
    "pwatermark",
    "punsafe",
    "AESTHETIC_SCORE",
    "hash",
)

_EMPTY, _JUNK, _LONG = (captions.NOISE_KINDS.index(k) for k in ("empty", "junk", "long"))


@dataclass(frozen=True)
class Rates:
    """Per-row probabilities of the world's noisy or marked properties."""

    leg_noise: float = 0.08
    watermark: float = 0.12
    unsafe: float = 0.02
    mentions_culture: float = 0.30
    http_404: float = 0.03
    http_timeout: float = 0.01
    http_truncated: float = 0.01
    http_html: float = 0.01
    noai: float = 0.02
    size_swapped: float = 0.02
    size_wrong: float = 0.01


DEFAULT_RATES = Rates()


def row_keys(seed: int, start: int, n: int) -> np.ndarray:
    """Unique uint64 keys for global rows ``start..start+n``: splitmix64 is a bijection."""
    with np.errstate(over="ignore"):
        index = np.arange(start + 1, start + n + 1, dtype=np.uint64)
        z = np.uint64(seed) * np.uint64(0xD1B54A32D192ED03) + index * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _culture(rng: np.random.Generator, kind: np.ndarray, lang: np.ndarray) -> np.ndarray:
    """CULTURES index for house/person rows (from CULTURE_PRIOR given caption language), else -1."""
    cdf = np.array(
        [
            np.cumsum([spec.CULTURE_PRIOR.get(lg, spec.CULTURE_PRIOR["default"])[c] for c in spec.CULTURES])
            for lg in captions.LANGS
        ]
    )
    u = rng.random(len(kind))
    culture = (u[:, None] > cdf[lang, :-1]).sum(axis=1)
    marked = np.isin(kind, [KIND_NAMES.index(k) for k in spec.CULTURE_KINDS])
    return np.where(marked, culture, -1)


def _sizes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Original (width, height): most 300-1200 px, ~4% tiny, ~10% >= 1024 on both sides, some panoramas."""
    aspects = np.array([1.0, 4 / 3, 3 / 4, 3 / 2, 2 / 3, 16 / 9, 9 / 16, 1.0])
    aspect = aspects[rng.integers(0, len(aspects), n)]
    long_side = np.clip(rng.lognormal(np.log(640), 0.35, n), 300, 1200)
    cls = rng.choice(4, size=n, p=[0.83, 0.04, 0.10, 0.03])  # normal, tiny, large, panorama
    long_side = np.where(cls == 1, rng.uniform(32, 127, n), long_side)
    aspect = np.where(cls == 2, rng.uniform(0.8, 1.25, n), aspect)
    long_side = np.where(cls == 2, rng.uniform(1024, 2600, n) * np.maximum(aspect, 1 / aspect), long_side)
    aspect = np.where(cls == 3, rng.uniform(3.0, 5.0, n), aspect)
    long_side = np.where(cls == 3, rng.uniform(1200, 3000, n), long_side)
    width = np.where(aspect >= 1, long_side, long_side * aspect)
    height = np.where(aspect >= 1, long_side / aspect, long_side)
    return np.maximum(np.rint(width), 16).astype(np.int64), np.maximum(np.rint(height), 16).astype(np.int64)


def _pick(names: tuple[str, ...], index: np.ndarray) -> list[str]:
    return np.array(names, dtype=object)[index].tolist()


def _beta_score(
    rng: np.random.Generator, flag: np.ndarray, pos: tuple[float, float], neg: tuple[float, float]
):
    return np.where(flag, rng.beta(*pos, len(flag)), rng.beta(*neg, len(flag)))


def sample_shard(
    seed: int, shard: int, start: int, n: int, rates: Rates = DEFAULT_RATES
) -> tuple[pa.Table, pa.Table]:
    """(metadata, truth) tables for global rows ``start..start+n`` of the world ``seed``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, shard]))

    # 1. The scene.
    lang = rng.choice(len(captions.LANGS), size=n, p=list(spec.LANGUAGE_MIX.values()))
    kind = rng.integers(0, len(KIND_NAMES), n)
    color = rng.integers(0, len(COLOR_NAMES), n)
    background = rng.integers(0, len(BACKGROUND_NAMES), n)
    culture = _culture(rng, kind, lang)
    mentions = (culture >= 0) & (rng.random(n) < rates.mentions_culture)
    legs_expected = np.array(list(spec.KINDS.values()))[kind]
    noisy_legs = (legs_expected > 0) & (rng.random(n) < rates.leg_noise)
    delta = rng.choice(np.array([-1, 1, 2]), size=n, p=[0.4, 0.35, 0.25])
    legs = np.where(noisy_legs, np.maximum(legs_expected + delta, 1), legs_expected)
    watermark = rng.random(n) < rates.watermark
    unsafe = rng.random(n) < rates.unsafe

    # 2. Quality: each degradation independently, with a severity; aesthetic truth follows from them.
    severity = {}
    penalty = np.zeros(n)
    for name, (rate, weight) in DEGRADATIONS.items():
        severity[name] = np.where(rng.random(n) < rate, rng.uniform(0.3, 1.0, n), 0.0)
        penalty += weight * severity[name]
    # The base draw is taste no pixel shows (rater noise); kept small so the truth is mostly visible.
    aesthetic = np.clip(rng.normal(6.4, 0.3, n) - penalty - 0.4 * watermark, 1.0, 10.0)

    # 3. The web: original size, domain, serving behaviour.
    true_w, true_h = _sizes(rng, n)
    size_noise = rng.choice(
        3, size=n, p=[1 - rates.size_swapped - rates.size_wrong, rates.size_swapped, rates.size_wrong]
    )
    factor = rng.choice(np.array([0.25, 0.5, 2.0, 3.0]), size=n)
    width = np.select([size_noise == 1, size_noise == 2], [true_h, np.rint(true_w * factor)], true_w).astype(
        np.int64
    )
    height = np.select([size_noise == 1, size_noise == 2], [true_w, np.rint(true_h * factor)], true_h).astype(
        np.int64
    )
    fail_p = [rates.http_404, rates.http_timeout, rates.http_truncated, rates.http_html]
    http_failure = rng.choice(len(HTTP_FAILURES), size=n, p=[1 - sum(fail_p), *fail_p])
    noai = rng.random(n) < rates.noai
    domain_idx = domains.sample_domains(rng, n)
    salt = rng.integers(0, 2**62, n)
    keys = row_keys(seed, start, n)

    # 4. Caption and LANGUAGE tag, with alt-text noise.
    noise = captions.sample_noise(rng, n)
    template = rng.integers(0, 1000, n)
    wrong_lang = (lang + rng.integers(1, len(captions.LANGS), n)) % len(captions.LANGS)
    texts = captions.clean_captions(lang, template, color, kind, background, np.where(mentions, culture, -1))
    quality_rng = np.random.default_rng(np.random.SeedSequence([seed, shard, 1]))
    texts = captions.mention_flaws(texts, lang, severity, quality_rng)
    for i in np.flatnonzero(noise == _EMPTY):
        texts[i] = ""
    for i in np.flatnonzero(noise == _JUNK):
        texts[i] = captions.junk_caption(int(salt[i]))
    for i in np.flatnonzero(noise == _LONG):
        texts[i] = captions.long_caption(texts[i], int(salt[i]))
    urls, hosts, doms = domains.make_urls(domain_idx, keys, salt)
    hashes = np.array([mmh3.hash64(u + t)[0] for u, t in zip(urls, texts, strict=True)], dtype=np.int64)
    no_lang = (noise == _EMPTY) | (noise == _JUNK)
    wrong = noise == captions.NOISE_KINDS.index("wrong_tag")
    lang_codes = np.array(captions.LANGS, dtype=object)
    language = np.where(
        no_lang, captions.NO_LANGUAGE, np.where(wrong, lang_codes[wrong_lang], lang_codes[lang])
    )

    # 5. LAION's score columns: noisy functions of the truth.
    similarity = rng.normal(0.315, 0.035, n) - 0.01 * (lang != 0) - 0.02 * penalty / 3
    similarity = np.select(
        [noise == _EMPTY, noise == _JUNK, noise == _LONG],
        [rng.normal(0.12, 0.03, n), rng.normal(0.17, 0.04, n), rng.normal(0.27, 0.04, n)],
        similarity,
    )
    pwatermark = _beta_score(rng, watermark, (6.0, 1.5), (1.1, 9.0))
    punsafe = _beta_score(rng, unsafe, (6.0, 2.0), (0.6, 40.0))
    aesthetic_score = np.clip(aesthetic + rng.normal(0.0, 0.3, n), 1.0, 10.0)

    metadata = pa.table(
        {
            "URL": pa.array(urls.tolist(), pa.string()),
            "TEXT": pa.array(texts.tolist(), pa.string()),
            "WIDTH": pa.array(width, pa.int64()),
            "HEIGHT": pa.array(height, pa.int64()),
            "LANGUAGE": pa.array(language.tolist(), pa.string()),
            "similarity": pa.array(np.clip(similarity, 0.0, 0.6)),
            "pwatermark": pa.array(pwatermark),
            "punsafe": pa.array(punsafe),
            "AESTHETIC_SCORE": pa.array(aesthetic_score),
            "hash": pa.array(hashes),
        }
    )
    truth = pa.table(
        {
            "hash": pa.array(hashes),
            "key": pa.array(keys, pa.uint64()),
            "shard": pa.array(np.full(n, shard, dtype=np.int32)),
            "kind": pa.array(_pick(KIND_NAMES, kind), pa.string()),
            "color": pa.array(_pick(COLOR_NAMES, color), pa.string()),
            "background": pa.array(_pick(BACKGROUND_NAMES, background), pa.string()),
            "culture": pa.array([spec.CULTURES[c] if c >= 0 else None for c in culture], pa.string()),
            "legs": pa.array(legs, pa.int8()),
            "legs_expected": pa.array(legs_expected, pa.int8()),
            "watermark": pa.array(watermark),
            "aesthetic": pa.array(aesthetic),
            "unsafe": pa.array(unsafe),
            **{name: pa.array(sev, pa.float32()) for name, sev in severity.items()},
            "caption_lang": pa.array(np.where(no_lang, None, lang_codes[lang]).tolist(), pa.string()),
            "caption_noise": pa.array(_pick(captions.NOISE_KINDS, noise), pa.string()),
            "mentions_culture": pa.array(mentions),
            "true_width": pa.array(true_w, pa.int64()),
            "true_height": pa.array(true_h, pa.int64()),
            "size_noise": pa.array(_pick(SIZE_NOISE, size_noise), pa.string()),
            "host": pa.array(hosts.tolist(), pa.string()),
            "domain": pa.array(doms.tolist(), pa.string()),
            "http_failure": pa.array(_pick(HTTP_FAILURES, http_failure), pa.string()),
            "noai": pa.array(noai),
        }
    )
    return metadata, truth
