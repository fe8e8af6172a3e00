"""World sampling: determinism, row identity, and the LAION-like mixes the issue asks for."""

from __future__ import annotations

import mmh3
import numpy as np
import pyarrow as pa
import pytest

from t2iscope.curate.world import domains, spec
from t2iscope.curate.world.sample import METADATA_COLUMNS, row_keys, sample_shard

N = 20_000


@pytest.fixture(scope="module")
def big() -> tuple[dict, dict]:
    metadata, truth = sample_shard(seed=3, shard=0, start=0, n=N)
    return metadata.to_pydict(), {c: np.array(v, dtype=object) for c, v in truth.to_pydict().items()}


def test_same_seed_same_tables_other_seed_differs() -> None:
    a = sample_shard(1, 0, 0, 300)
    b = sample_shard(1, 0, 0, 300)
    c = sample_shard(2, 0, 0, 300)
    assert a[0].equals(b[0]) and a[1].equals(b[1])
    assert not a[0].equals(c[0])


def test_shards_are_independent_of_each_other() -> None:
    """Shard 1 does not depend on shard 0 having been sampled: generation can stream."""
    alone = sample_shard(5, 1, 100, 50)
    sample_shard(5, 0, 0, 100)
    again = sample_shard(5, 1, 100, 50)
    assert alone[1].equals(again[1])
    assert not alone[1].column("key").equals(sample_shard(5, 0, 0, 50)[1].column("key"))


def test_keys_unique_across_rows_and_shards() -> None:
    keys = np.concatenate([row_keys(0, 0, 50_000), row_keys(0, 50_000, 50_000)])
    assert keys.dtype == np.uint64
    assert len(np.unique(keys)) == len(keys)


def test_metadata_has_laion_columns_and_types() -> None:
    metadata, _ = sample_shard(0, 0, 0, 50)
    assert tuple(metadata.column_names) == METADATA_COLUMNS
    assert metadata.schema.field("hash").type == pa.int64()
    assert metadata.schema.field("WIDTH").type == pa.int64()
    for col in ("similarity", "pwatermark", "punsafe", "AESTHETIC_SCORE"):
        assert pa.types.is_floating(metadata.schema.field(col).type)


def test_hash_is_laion_mmh3_of_url_and_text_and_url_ends_in_key(big: tuple[dict, dict]) -> None:
    md, truth = big
    for (
        url,
        text,
        h,
        key,
    ) in zip(md["URL"], md["TEXT"], md["hash"], truth["key"], strict=True):
        assert mmh3.hash64(url + text)[0] == h
        assert url.endswith(f"/{key:016x}.jpg")
    assert list(truth["hash"]) == md["hash"]
    assert len(set(md["hash"])) == N


def test_language_mix_english_majority_and_noise(big: tuple[dict, dict]) -> None:
    md, truth = big
    lang = np.array(md["LANGUAGE"])
    share = {code: float(np.mean(lang == code)) for code in spec.LANGUAGE_MIX}
    assert 0.55 < share["en"] < 0.68
    assert min(share.values()) > 0.03
    caption_lang = truth["caption_lang"][truth["caption_lang"] != None]  # noqa: E711 (object array)
    for code, p in spec.LANGUAGE_MIX.items():
        assert abs(np.mean(caption_lang == code) - p) < 0.015, code
    texts = np.array(md["TEXT"], dtype=object)
    assert any(any("\u0400" <= ch <= "\u04ff" for ch in t) for t in texts[lang == "ru"])  # Cyrillic
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in texts[lang == "zh"])  # CJK
    noise = truth["caption_noise"]
    wrong = noise == "wrong_tag"
    assert 0.02 < wrong.mean() < 0.04
    assert (lang[wrong] != truth["caption_lang"][wrong]).all()
    assert (texts[noise == "empty"] == "").all() and 0.005 < (noise == "empty").mean() < 0.02
    assert (lang[noise == "junk"] == "nolang").all()
    lengths = np.array([len(t) for t in texts])
    assert (lengths[noise == "long"] >= 1500).all() and (lengths[noise == "clean"] < 200).all()


def test_domain_mix_is_heavy_tailed_like_laion(big: tuple[dict, dict]) -> None:
    _, truth = big
    names, counts = np.unique(truth["domain"].astype(str), return_counts=True)
    order = np.argsort(-counts)
    shares = counts[order] / N
    assert names[order][0] == "pinimg.com"
    assert 0.075 < shares[0] < 0.095
    assert 0.44 < shares[:100].sum() < 0.58
    assert len(names) > 2_000  # a long tail
    hosts = truth["host"].astype(str)
    doms = truth["domain"].astype(str)
    assert all(h == d or h.endswith("." + d) for h, d in zip(hosts, doms, strict=True))
    assert (hosts != doms).mean() > 0.5
    assert {"i0.wp.com", "cdn.shopify.com", "ichef.bbci.co.uk"} <= set(hosts)
    assert any(d.endswith((".co.uk", ".com.au")) for d in doms)


def test_expected_domain_probabilities_match_the_design() -> None:
    p = domains.domain_probabilities()
    assert p.sum() == pytest.approx(1.0)
    assert p[0] == pytest.approx(0.085)
    assert np.sort(p)[::-1][:100].sum() == pytest.approx(domains.TOP100_TARGET, abs=0.01)


def test_legs_culture_and_marks_follow_the_spec(big: tuple[dict, dict]) -> None:
    _, truth = big
    kind = truth["kind"]
    expected = np.array([spec.KINDS[k] for k in kind])
    legs, legs_exp = truth["legs"].astype(int), truth["legs_expected"].astype(int)
    assert (legs_exp == expected).all()
    limbed = expected > 0
    noisy = legs != legs_exp
    assert not noisy[~limbed].any()
    assert 0.06 < noisy[limbed].mean() < 0.10
    assert (legs[limbed] >= 1).all()
    marked = np.isin(kind, spec.CULTURE_KINDS)
    assert all(c is None for c in truth["culture"][~marked])
    assert set(truth["culture"][marked]) == set(spec.CULTURES)
    assert not truth["mentions_culture"][~marked].any()
    east = truth["culture"] == "east_asian"
    lang = truth["caption_lang"]
    assert east[marked & (lang == "zh")].mean() > east[marked & (lang == "en")].mean() + 0.25
    assert 0.10 < truth["watermark"].astype(bool).mean() < 0.14
    assert 0.01 < truth["unsafe"].astype(bool).mean() < 0.03


def test_scores_are_noisy_functions_of_the_truth(big: tuple[dict, dict]) -> None:
    md, truth = big
    pw, wm = np.array(md["pwatermark"]), truth["watermark"].astype(bool)
    assert pw[wm].mean() > 0.7 and pw[~wm].mean() < 0.2
    assert (pw[~wm] < 0.8).mean() > 0.99
    pu, unsafe = np.array(md["punsafe"]), truth["unsafe"].astype(bool)
    assert pu[unsafe].mean() > 0.6 and pu[~unsafe].mean() < 0.05
    aes, score = truth["aesthetic"].astype(float), np.array(md["AESTHETIC_SCORE"])
    assert np.corrcoef(aes, score)[0, 1] > 0.9
    assert score.min() >= 1.0 and score.max() <= 10.0
    sim, noise = np.array(md["similarity"]), truth["caption_noise"]
    assert sim[noise == "clean"].mean() > sim[noise == "junk"].mean() + 0.08


def test_sizes_realistic_with_swapped_and_wrong_rows(big: tuple[dict, dict]) -> None:
    md, truth = big
    w, h = np.array(md["WIDTH"]), np.array(md["HEIGHT"])
    tw, th = truth["true_width"].astype(int), truth["true_height"].astype(int)
    size_noise = truth["size_noise"]
    ok, swapped, wrong = size_noise == "ok", size_noise == "swapped", size_noise == "wrong"
    assert (w[ok] == tw[ok]).all() and (h[ok] == th[ok]).all()
    assert (w[swapped] == th[swapped]).all() and (h[swapped] == tw[swapped]).all()
    assert ((w[wrong] != tw[wrong]) | (h[wrong] != th[wrong])).all()
    assert 0.015 < swapped.mean() < 0.025 and 0.005 < wrong.mean() < 0.015
    assert 0.08 < ((tw >= 1024) & (th >= 1024)).mean() < 0.14
    assert 0.02 < (np.maximum(tw, th) < 128).mean() < 0.06
    assert (np.maximum(tw, th) / np.minimum(tw, th) >= 3).mean() > 0.01
    mid = (np.maximum(tw, th) >= 300) & (np.maximum(tw, th) <= 1200)
    assert mid.mean() > 0.7


def test_captions_name_flaws_more_often_the_worse_they_are(big: tuple[dict, dict]) -> None:
    md, truth = big
    names = list(spec.QUALITY_WORDS["en"])
    flaws = ("blur", "noise", "low_contrast", "blockiness", "tiny")
    english = (truth["caption_lang"] == "en") & (truth["caption_noise"] == "clean")
    sev = np.stack([truth[f].astype(float) for f in flaws], axis=1)
    named = np.array([[n in text.split(", ")[1:] for n in names] for text in md["TEXT"]])
    assert not named[english & (sev.max(1) == 0)].any()  # clean images are never called blurry
    mild, severe = (sev > 0) & (sev < 0.5), sev > 0.8
    rows = english[:, None]
    assert named[mild & rows].mean() < named[severe & rows].mean() - 0.2
    assert 0.55 < named[(sev > 0) & rows].mean() < 0.9
