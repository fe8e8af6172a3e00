"""Where the world's images "live": a heavy-tailed domain mix shaped like LAION's.

The published analysis of LAION's aesthetic subset (Baio & Willison, 2022) found one Pinterest CDN
near 8.5% of rows, CDNs of WordPress, Shopify, Blogspot, Etsy, eBay, Flickr ... after it, the top
100 domains near half of all rows, and a long tail of hundreds of thousands of sites. We copy that
shape: a named head with fixed shares, then a Zipf-like tail over synthetic domains whose exponent is
solved so the top 100 domains hold ``TOP100_TARGET`` of rows.

Hosts are realistic CDN subdomains (``i0.wp.com``, ``1.bp.blogspot.com``, ``ichef.bbci.co.uk``), so
host, registrable domain and public suffix differ, as they do for tldextract on real data.
Every URL ends in ``/<key as 16 hex digits>.jpg``: the world server finds the image by that key.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from t2iscope.curate.world import fill


@dataclass(frozen=True)
class HeadDomain:
    """A named domain with its share of rows, its CDN hosts and a URL path pattern."""

    domain: str
    share: float
    hosts: tuple[str, ...]
    path: str  # a str.format pattern over a, b, c (hex), n (digits), y, m, site (a tail host), key


HEAD: tuple[HeadDomain, ...] = (
    HeadDomain(
        "pinimg.com",
        0.085,
        ("i.pinimg.com", "i0.pinimg.com", "i1.pinimg.com", "i2.pinimg.com"),
        "/736x/{a}/{b}/{c}/{key}.jpg",
    ),
    HeadDomain(
        "wp.com",
        0.030,
        ("i0.wp.com", "i1.wp.com", "i2.wp.com"),
        "/{site}/wp-content/uploads/{y}/{m}/{key}.jpg",
    ),
    HeadDomain("shopify.com", 0.026, ("cdn.shopify.com",), "/s/files/1/{n}/products/{key}.jpg"),
    HeadDomain(
        "blogspot.com",
        0.020,
        ("1.bp.blogspot.com", "2.bp.blogspot.com", "3.bp.blogspot.com", "4.bp.blogspot.com"),
        "/-{a}{b}/{c}/s1600/{key}.jpg",
    ),
    HeadDomain(
        "etsystatic.com", 0.012, ("i.etsystatic.com", "img0.etsystatic.com"), "/{n}/r/il/{a}/{key}.jpg"
    ),
    HeadDomain("alicdn.com", 0.010, ("ae01.alicdn.com", "sc01.alicdn.com"), "/kf/{a}{b}{c}/{key}.jpg"),
    HeadDomain("ebayimg.com", 0.008, ("i.ebayimg.com",), "/images/g/{a}{b}/s-l1600/{key}.jpg"),
    HeadDomain("media-amazon.com", 0.008, ("m.media-amazon.com",), "/images/I/{key}.jpg"),
    HeadDomain(
        "staticflickr.com",
        0.006,
        ("live.staticflickr.com", "farm1.staticflickr.com", "farm8.staticflickr.com"),
        "/{n}/{key}.jpg",
    ),
    HeadDomain("squarespace-cdn.com", 0.006, ("images.squarespace-cdn.com",), "/content/v1/{a}{b}/{key}.jpg"),
    HeadDomain("wixstatic.com", 0.005, ("static.wixstatic.com",), "/media/{a}_{b}/{key}.jpg"),
    HeadDomain("imgur.com", 0.005, ("i.imgur.com",), "/{key}.jpg"),
    HeadDomain("bbci.co.uk", 0.003, ("ichef.bbci.co.uk",), "/news/976/cpsprodpb/{a}/{key}.jpg"),
    HeadDomain("abc.net.au", 0.002, ("www.abc.net.au",), "/cm/rimage/{n}/{key}.jpg"),
)

TAIL_DOMAINS = 200_000  # synthetic long-tail sites
TAIL_OFFSET = 10.0  # flattens the top of the Zipf tail so no synthetic site outranks the named CDNs
TOP100_TARGET = 0.50

_TAIL_WORDS_A = (
    "sunny",
    "blue",
    "urban",
    "happy",
    "little",
    "golden",
    "wild",
    "modern",
    "cozy",
    "green",
    "vintage",
    "daily",
    "pixel",
    "bright",
    "silver",
    "crafty",
    "north",
    "royal",
    "simple",
    "fresh",
)
_TAIL_WORDS_B = (
    "garden",
    "shop",
    "studio",
    "home",
    "kitchen",
    "photos",
    "designs",
    "market",
    "blog",
    "store",
    "pets",
    "travel",
    "decor",
    "gallery",
    "life",
    "prints",
    "style",
    "world",
    "news",
    "crafts",
)
# (public suffix, weight): mostly .com, with multi-part suffixes so suffix != last label.
_TAIL_SUFFIXES = (
    ("com", 0.55),
    ("net", 0.07),
    ("org", 0.05),
    ("de", 0.06),
    ("co.uk", 0.05),
    ("fr", 0.04),
    ("ru", 0.04),
    ("com.au", 0.03),
    ("jp", 0.03),
    ("es", 0.03),
    ("com.br", 0.02),
    ("info", 0.02),
    ("co.jp", 0.01),
)
_TAIL_PATHS = (
    "/wp-content/uploads/{y}/{m}/{key}.jpg",
    "/images/products/{key}.jpg",
    "/media/catalog/product/{a}/{b}/{key}.jpg",
    "/photos/{n}/{key}.jpg",
    "/img/{key}.jpg",
)


@functools.cache
def domain_probabilities() -> np.ndarray:
    """P(domain index): head domains first (in ``HEAD`` order), then tail ranks 1..TAIL_DOMAINS."""
    head = np.array([h.share for h in HEAD])
    tail_mass = 1.0 - head.sum()
    ranks = np.arange(1, TAIL_DOMAINS + 1, dtype=np.float64) + TAIL_OFFSET
    in_top = 100 - len(HEAD)
    target = (TOP100_TARGET - head.sum()) / tail_mass
    lo, hi = 0.3, 3.0
    for _ in range(50):  # bisection on the Zipf exponent: top `in_top` tail ranks hold `target`
        a = (lo + hi) / 2
        w = ranks**-a
        w /= w.sum()
        lo, hi = (a, hi) if w[:in_top].sum() < target else (lo, a)
    return np.concatenate([head, w * tail_mass])


def sample_domains(rng: np.random.Generator, n: int) -> np.ndarray:
    """Domain indices (into ``domain_probabilities``) for ``n`` rows."""
    cdf = np.cumsum(domain_probabilities())
    return np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(cdf) - 1)


@functools.lru_cache(maxsize=65536)
def tail_site(rank: int) -> tuple[str, str, str]:
    """(registrable domain, host, path pattern) of tail site ``rank`` (0-based); fixed for all seeds."""
    mix = (rank * 2654435761 + 97) & 0xFFFFFFFF  # Knuth's multiplicative hash: stable, seed-free
    a = _TAIL_WORDS_A[mix % len(_TAIL_WORDS_A)]
    b = _TAIL_WORDS_B[(mix >> 8) % len(_TAIL_WORDS_B)]
    u = ((mix >> 12) % 10_000) / 10_000
    acc = 0.0
    suffix = _TAIL_SUFFIXES[-1][0]
    for name, weight in _TAIL_SUFFIXES:
        acc += weight
        if u < acc:
            suffix = name
            break
    domain = f"{a}{b}{rank}.{suffix}"
    prefix = ("www.", "", "www.", "img.", "cdn.", "static.", "www.", "")[(mix >> 24) % 8]
    return domain, prefix + domain, _TAIL_PATHS[(mix >> 4) % len(_TAIL_PATHS)]


def make_urls(
    index: np.ndarray, keys: np.ndarray, salt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(URL, host, registrable domain) per row; URLs end in ``keys`` and ``salt`` varies their paths."""
    n = len(index)
    salt = salt.astype(np.uint64)
    salt_hex = fill.hex_digits(salt)
    fields = {
        "key": fill.hex_digits(keys),
        "a": np.array([h[14:16] for h in salt_hex], dtype=object),
        "b": np.array([h[12:14] for h in salt_hex], dtype=object),
        "c": np.array([h[10:12] for h in salt_hex], dtype=object),
        "n": (1000 + (salt >> np.uint64(24)) % np.uint64(9000)).astype(str).astype(object),
        "y": (2012 + (salt >> np.uint64(36)) % np.uint64(11)).astype(str).astype(object),
        "m": np.array([f"{m:02d}" for m in range(1, 13)], dtype=object)[
            (salt >> np.uint64(40)) % np.uint64(12)
        ],
    }
    urls, hosts, names = (np.empty(n, dtype=object) for _ in range(3))
    pick = (salt >> np.uint64(44)).astype(np.int64)
    for h, head in enumerate(HEAD):
        rows = np.flatnonzero(index == h)
        if not len(rows):
            continue
        hosts[rows] = np.array(head.hosts, dtype=object)[pick[rows] % len(head.hosts)]
        names[rows] = head.domain
        sub = {k: v[rows] for k, v in fields.items()}
        sub["site"] = _proxied_sites()[(salt[rows] >> np.uint64(48)) % np.uint64(len(_proxied_sites()))]
        urls[rows] = "https://" + hosts[rows] + fill.fill(head.path, sub, len(rows))
    tail = np.flatnonzero(index >= len(HEAD))
    ranks, inverse = np.unique(index[tail] - len(HEAD), return_inverse=True)
    sites = [tail_site(int(r)) for r in ranks]
    names[tail] = np.array([s[0] for s in sites], dtype=object)[inverse]
    hosts[tail] = np.array([s[1] for s in sites], dtype=object)[inverse]
    pattern = np.array([_TAIL_PATHS.index(s[2]) for s in sites], dtype=np.int64)[inverse]
    for p, path in enumerate(_TAIL_PATHS):
        rows = tail[pattern == p]
        if len(rows):
            urls[rows] = (
                "https://" + hosts[rows] + fill.fill(path, {k: v[rows] for k, v in fields.items()}, len(rows))
            )
    return urls, hosts, names


@functools.cache
def _proxied_sites() -> np.ndarray:
    """Hosts that wp.com's Photon CDN proxies (``i0.wp.com/<site>/...``): the top tail sites."""
    return np.array([tail_site(r)[1] for r in range(5000)], dtype=object)
