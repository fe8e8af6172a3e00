"""Captions for scenes: templated in seven languages, with the noise LAION's alt-texts carry.

Noise kinds (truth column ``caption_noise``): ``wrong_tag`` (the LANGUAGE column names another
language, as language-ID mistakes do), ``empty``, ``junk`` (camera file names, punctuation) and
``long`` (SEO keyword stuffing, thousands of characters). Everything else is ``clean``. Captions of
flawed images often name the flaws ("..., blurry, grainy"), in the caption's language.
"""

from __future__ import annotations

import numpy as np

from t2iscope.curate.world import spec
from t2iscope.curate.world.fill import fill

LANGS: tuple[str, ...] = tuple(spec.LANGUAGE_MIX)
NOISE_KINDS: tuple[str, ...] = ("clean", "wrong_tag", "empty", "junk", "long")
NOISE_RATES: dict[str, float] = {"wrong_tag": 0.03, "empty": 0.01, "junk": 0.01, "long": 0.005}
NO_LANGUAGE = "nolang"  # LAION-multi's tag when no language could be detected

_JUNK = ("IMG_{n}.JPG", "DSC{n}", "!!!", "image", "{n}", "untitled-{n}", "photo {n}.jpeg", "...", "P{n}0001")
_SEO = (
    "free download",
    "hd wallpaper",
    "best price",
    "buy online",
    "cheap",
    "sale",
    "4k",
    "stock photo",
    "royalty free",
    "vector",
    "png",
    "clipart",
    "2024",
    "new",
    "gift idea",
    "top rated",
    "shipping",
)


def sample_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Noise kind index (into ``NOISE_KINDS``) per row."""
    rates = np.array([NOISE_RATES[k] for k in NOISE_KINDS[1:]])
    p = np.concatenate([[1.0 - rates.sum()], rates])
    return rng.choice(len(NOISE_KINDS), size=n, p=p)


def clean_captions(
    lang: np.ndarray,
    template: np.ndarray,
    color: np.ndarray,
    kind: np.ndarray,
    background: np.ndarray,
    culture: np.ndarray,
) -> np.ndarray:
    """Template captions, one per row (index arrays; ``culture`` -1 where the caption does not name it)."""
    out = np.empty(len(lang), dtype=object)
    for li, lg in enumerate(LANGS):
        words = {
            "c": np.array(spec.COLOR_WORDS[lg], dtype=object),
            "k": np.array(spec.KIND_WORDS[lg], dtype=object),
            "b": np.array(spec.BACKGROUND_WORDS[lg], dtype=object),
            "u": np.array([w + " " for w in spec.CULTURE_WORDS[lg]] + [""], dtype=object),  # [-1] -> ""
        }
        templates = spec.TEMPLATES[lg]
        in_lang = lang == li
        for ti, tpl in enumerate(templates):
            rows = np.flatnonzero(in_lang & (template % len(templates) == ti))
            fields = {
                "c": words["c"][color[rows]],
                "k": words["k"][kind[rows]],
                "b": words["b"][background[rows]],
                "u": words["u"][culture[rows]],
            }
            out[rows] = fill(tpl, fields, len(rows))
    return out


def mention_flaws(
    texts: np.ndarray,
    lang: np.ndarray,
    severity: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray:
    """Name a flawed image's flaws in its caption ("..., blurry, grainy"), the worst first.

    Each flaw is named with probability 0.5 + 0.5 * severity: uploaders mention what is obvious,
    so a caption tells quality apart about as often as web captions do, and more for severe flaws.
    ``severity`` maps degradation names, in ``spec.QUALITY_WORDS`` order, to per-row severities.
    """
    sev = np.stack(list(severity.values()), axis=1)
    named = (sev > 0) & (rng.random(sev.shape) < 0.5 + 0.5 * sev)
    out = texts.copy()
    for i in np.flatnonzero(named.any(axis=1)):
        words = spec.QUALITY_WORDS[LANGS[lang[i]]]
        out[i] = ", ".join([out[i], *(words[j] for j in np.argsort(-sev[i]) if named[i, j])])
    return out


def junk_caption(salt: int) -> str:
    return _JUNK[salt % len(_JUNK)].format(n=1000 + (salt >> 8) % 9000)


def long_caption(base: str, salt: int) -> str:
    """Keyword stuffing: the caption, then SEO phrases until it is 1,500-4,000 characters long."""
    target = 1500 + salt % 2500
    parts = [base]
    i = salt >> 12
    length = len(base)
    while length < target:
        word = f"{base} {_SEO[i % len(_SEO)]}" if i % 3 == 0 else _SEO[i % len(_SEO)]
        parts.append(word)
        length += len(word) + 2
        i = i * 1103515245 + 12345 & 0x7FFFFFFF
    return ", ".join(parts)
