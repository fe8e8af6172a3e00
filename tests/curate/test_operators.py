"""Every operator: DuckDB pushdown and Arrow agree row by row; each rule drops what it says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from curate_rows import laion_table, pushdown_reasons

from t2iscope.curate.operators import METADATA, OPERATORS, PIXELS, Columns, StageContext, load_all
from t2iscope.curate.operators.dedup import KeySet, laion_hash
from t2iscope.curate.operators.domain import check_domain_list
from t2iscope.curate.recipe import recipe_from_dict
from t2iscope.errors import ConfigError, DataError
from t2iscope.sql import Params

load_all()

NASTY = laion_table(
    8,
    URL=[
        "https://a.example.com/1.jpg",
        "ftp://a.example.com/2.jpg",
        "not a url",
        None,
        "https://b.example.co.uk/x y.jpg",
        "http://c.example.org/4.png?s=1",
        "https://a.example.com/1.jpg",
        "https://localhost/5.jpg",
    ],
    TEXT=["a dog", "IMG_0042.jpg", "untitled", "x" * 5000, None, "ein Hund im Gras", "www.example.com", "  "],
    WIDTH=[512.0, float("nan"), 100.0, 2048.0, 640.0, None, 3000.0, 0.0],
    HEIGHT=[512.0, 300.0, 900.0, 1024.0, 480.0, 480.0, 500.0, 10.0],
    pwatermark=[0.1, 0.8, 0.79, None, float("nan"), 0.5, 0.2, 0.99],
    punsafe=[0.0, 0.5, 0.49, 1.0, None, 0.2, 0.3, 0.6],
    AESTHETIC_SCORE=[5.0, 4.99, 6.5, None, 7.0, 5.5, float("nan"), 2.0],
    similarity=[0.31, 0.28, 0.2799, None, float("nan"), -0.1, 0.3, 1.0],
)

PARAMS = {
    "validity": [{}, {"max_caption_chars": 10}],
    "resolution": [
        {"min_side": 480},
        {"min_area": 300_000, "max_aspect_ratio": 2.0},
        {"max_side": 2048, "min_side": 10},
    ],
    "watermark": [{"max_score": 0.8}, {"max_score": 0.5}],
    "aesthetic": [{"min_score": 5.0}, {"min_score": 6.0}],
    "unsafe": [{"max_score": 0.5}],
    "clip_score": [{"min_score": 0.28}, {"min_score": 0.3}],
    "caption": [{"min_words": 2}, {"min_chars": 6, "reject_junk": True}, {"min_words": 3, "min_chars": 6}],
}


def _pushdown_reasons(tmp_path: Path, name: str, params: dict, table: pa.Table = NASTY) -> list:
    """The reason the engine gives each row with the stage inside its DuckDB query over parquet."""
    return pushdown_reasons(tmp_path, name, params, table)


@pytest.mark.parametrize(("name", "params"), [(n, p) for n, ps in PARAMS.items() for p in ps])
def test_pushdown_matches_arrow(tmp_path: Path, name: str, params: dict) -> None:
    sql = _pushdown_reasons(tmp_path, name, params)
    arrow = OPERATORS.get(name).fn(NASTY, StageContext("nasty", METADATA), **params)
    assert arrow.reason.to_pylist() == sql
    assert list(arrow.keep) == [r is None for r in sql]
    assert not all(arrow.keep), f"{name} {params}: fixture should make it drop something"


def test_every_operator_is_covered_or_arrow_only() -> None:
    arrow_only = {"language", "domain", "dedup", "near_dedup"}
    assert set(OPERATORS.names()) == set(PARAMS) | arrow_only
    for name in arrow_only:
        assert OPERATORS.get(name).rule is None


def _run(name: str, table: pa.Table, ctx: StageContext | None = None, **params: object):
    return OPERATORS.get(name).fn(table, ctx or StageContext("t.parquet", METADATA), **params)


def test_resolution_nan_and_zero_sizes_are_counted_not_passed() -> None:
    res = _run("resolution", NASTY, min_side=1)
    reasons = res.reason.to_pylist()
    assert reasons[1] == "size_missing" and reasons[5] == "size_missing" and reasons[7] == "size_missing"
    assert reasons[0] is None


def test_validity_reasons() -> None:
    reasons = _run("validity", NASTY).reason.to_pylist()
    assert reasons == [
        None,
        "url_invalid",
        "url_invalid",
        "url_missing",
        "url_invalid",
        None,
        None,
        "url_invalid",
    ]


def test_caption_junk_rule() -> None:
    reasons = _run("caption", NASTY, reject_junk=True).reason.to_pylist()
    assert reasons[1] == reasons[2] == reasons[6] == reasons[7] == "junk_caption"
    assert reasons[0] is None and reasons[5] is None and reasons[4] == "text_missing"


def test_missing_column_names_column_and_file() -> None:
    with pytest.raises(DataError, match=r"t\.parquet: stage 'watermark' needs column pwatermark"):
        _run("watermark", NASTY.drop_columns(["pwatermark"]))


def test_domain_uses_registrable_domain() -> None:
    res = _run("domain", NASTY, drop=["example.co.uk"])
    assert res.columns["domain"].to_pylist()[0] == "example.com"
    assert res.columns["host"].to_pylist()[4] == "b.example.co.uk"
    reasons = res.reason.to_pylist()
    assert reasons[4] == "domain_blocked" and reasons[2] == "host_missing" and reasons[0] is None


PINS = laion_table(
    7,
    URL=[
        "https://i.pinimg.com/1.jpg",
        "https://pinimg.com/2.jpg",
        "https://s.pinimg.com/3.jpg",
        "https://x.I.pinimg.com./4.jpg",
        "https://notpinimg.com/5.jpg",
        "https://pinimg.com.evil.org/6.jpg",
        "not a url",
    ],
)


def test_domain_lists_match_a_host_and_its_subdomains() -> None:
    """Blocklists name hosts: an entry matches that host and every host under it, not only a
    registrable domain (``drop: [i.pinimg.com]`` blocked nothing, ``keep: [i.pinimg.com]`` all)."""

    def reasons(**params: list[str]) -> list[str | None]:
        return _run("domain", PINS, **params).reason.to_pylist()

    blocked, not_kept = "domain_blocked", "domain_not_kept"
    assert reasons(drop=["i.pinimg.com"]) == [blocked, None, None, blocked, None, None, "host_missing"]
    assert reasons(drop=["PINIMG.com."]) == [blocked] * 4 + [None, None, "host_missing"]
    assert reasons(keep=["i.pinimg.com"]) == [
        None,
        not_kept,
        not_kept,
        None,
        not_kept,
        not_kept,
        "host_missing",
    ]
    assert reasons(keep=["pinimg.com"], drop=["s.pinimg.com"]) == [
        None, None, blocked, None, not_kept, not_kept, "host_missing"
    ]  # fmt: skip
    assert reasons(keep=["evil.org"]) == [not_kept] * 5 + [None, "host_missing"]
    assert _run("domain", PINS, drop=["i.pinimg.com"]).columns["domain"].to_pylist()[0] == "pinimg.com"


@pytest.mark.parametrize(("field", "entry"), [("keep", "com"), ("drop", "CO.UK."), ("keep", "xn--p1ai")])
def test_domain_lists_refuse_public_suffixes(field: str, entry: str) -> None:
    """``keep: [com]`` dropped every row; as a host entry it would match whole TLDs: refused."""
    with pytest.raises(ConfigError, match=rf"stage 'domain': {field}: '{entry}' is a public suffix"):
        _run("domain", PINS, **{field: ["pinimg.com", entry]})


def test_check_domain_list_for_the_recipe_parser() -> None:
    assert check_domain_list(["BBC.co.uk.", "0x7f.1", "[::FFFF:10.0.0.1]", "blogspot.com", "localhost"]) == (
        "bbc.co.uk",
        "127.0.0.1",
        "::ffff:10.0.0.1",
        "blogspot.com",  # a private suffix (the bundled list's ICANN part decides): a registrable name
        "localhost",
    )
    with pytest.raises(
        ValueError, match=r"^'co\.uk' is a public suffix: it would match every site under it$"
    ):
        check_domain_list(["bbc.co.uk", "co.uk"])
    for bad in ("bbc.co.uk/news", "256.1.1.1", "1.2.3.4.5", 7):
        with pytest.raises(ValueError, match=r"is not a domain name$"):
            check_domain_list([bad])


def test_domain_ip_entries_match_every_spelling_of_the_address() -> None:
    """``127.1``, ``0x7f.1`` and ``0177.0.0.1`` are 127.0.0.1 to getaddrinfo and browsers: they
    escaped ``drop: ["127.0.0.1"]``. The IPv4-mapped literal stays the host but matches too; an IP
    entry matches that address only, never a name that spells it (``127.0.0.1.nip.io``)."""
    table = laion_table(
        7,
        URL=[
            "http://127.1/a.jpg",
            "http://0x7f.1/a.jpg",
            "http://0177.0.0.1/a.jpg",
            "http://[::ffff:127.0.0.1]/a.jpg",
            "http://127.0.0.2/a.jpg",
            "http://127.0.0.1.nip.io/a.jpg",
            "http://256.1.1.1/a.jpg",
        ],
    )
    res = _run("domain", table, drop=["127.0.0.1"])
    hosts = ["127.0.0.1"] * 3 + ["::ffff:127.0.0.1", "127.0.0.2", "127.0.0.1.nip.io", None]
    assert res.columns["host"].to_pylist() == hosts
    assert res.columns["domain"].to_pylist() == [*hosts[:5], "nip.io", None]
    want = ["domain_blocked"] * 4 + [None, None, "host_missing"]
    for entry in ("127.0.0.1", "0x7f000001", "[::ffff:7f00:1]"):
        assert _run("domain", table, drop=[entry]).reason.to_pylist() == want, entry
    kept = _run("domain", table, keep=["127.0.0.2", "nip.io"]).reason.to_pylist()
    assert kept == ["domain_not_kept"] * 4 + [None, None, "host_missing"]


def test_dedup_first_occurrence_across_batches() -> None:
    ctx = StageContext("t", METADATA)
    first = _run("dedup", NASTY, ctx, by="url")
    assert first.reason.to_pylist()[6] == "duplicate_url" and first.keep[0]
    again = _run("dedup", NASTY.slice(0, 2), ctx, by="url")
    assert not again.keep.any()


def test_dedup_hash_is_computed_when_missing() -> None:
    table = NASTY.drop_columns(["hash"])
    res = _run("dedup", table, by="hash")
    assert res.columns["hash"].to_pylist() == NASTY.column("hash").to_pylist()


def test_laion_hash_matches_mmh3_convention() -> None:
    import mmh3

    assert laion_hash(["https://a/b.jpg"], ["cap"])[0] == mmh3.hash64("https://a/b.jpgcap")[0]


def test_keyset_survives_many_chunks() -> None:
    ks = KeySet()
    rng = np.random.default_rng(0)
    keys = rng.integers(-(2**62), 2**62, size=5000)
    for part in np.array_split(keys, 20):
        ks.add(part)
    assert ks.contains(keys).all()
    assert not ks.contains(keys + 1).any()
    assert len(ks.take_pending()) == 5000 and len(ks.take_pending()) == 0


def test_language_detects_and_reports_agreement() -> None:
    table = laion_table(
        4,
        TEXT=[
            "a red dog on the grass",
            "ein roter Hund auf dem Gras",
            "un chien rouge sur l'herbe",
            "红色的狗",
        ],
    ).append_column("LANGUAGE", pa.array(["en", "de", "en", "zh"]))
    res = _run("language", table, keep=["en", "de"], min_score=0.3)
    assert res.columns["lang"].to_pylist() == ["en", "de", "fr", "zh"]
    assert res.reason.to_pylist()[2:] == ["lang_not_kept", "lang_not_kept"]
    assert res.stats["agreement"]["en"] == {"n": 2, "agree": 1}


def test_resolution_after_download_reads_pixel_sizes() -> None:
    """The PIXELS phase runs the same rule on the decoded image's size, not LAION's WIDTH/HEIGHT."""
    pixels = NASTY.append_column("pixel_width", NASTY.column("WIDTH")).append_column(
        "pixel_height", NASTY.column("HEIGHT")
    )
    pixels = pixels.set_column(pixels.column_names.index("WIDTH"), "WIDTH", pa.nulls(8, pa.float64()))
    after = _run("resolution", pixels, StageContext("shards", PIXELS), min_side=480)
    before = _run("resolution", NASTY, min_side=480)
    assert after.reason.to_pylist() == before.reason.to_pylist()
    with pytest.raises(DataError, match="needs column pixel_width"):
        _run("resolution", NASTY, StageContext("shards", PIXELS), min_side=480)


@pytest.mark.parametrize(
    ("name", "column", "params", "reason"),
    [
        ("aesthetic", "AESTHETIC_SCORE", {"min_score": 4.99}, None),
        ("watermark", "pwatermark", {"max_score": 0.48}, "pwatermark>=0.48"),
        ("unsafe", "punsafe", {"max_score": 0.48}, "punsafe>=0.48"),
    ],
)
def test_float32_scores_compare_as_written(
    tmp_path: Path, name: str, column: str, params: dict, reason: str | None
) -> None:
    """A float32 score equal to the threshold as written is on it (float32(4.99) < 4.99 as doubles)."""
    table = NASTY.set_column(
        NASTY.column_names.index(column), column, pa.array([*params.values()] * 8, pa.float32())
    )
    assert _run(name, table, **params).reason.to_pylist() == [reason] * 8
    assert _pushdown_reasons(tmp_path, name, params, table) == [reason] * 8


@pytest.mark.parametrize(
    ("stage", "match"),
    [
        ({"dedup": {"by": "urll"}}, r"r\.yaml: stages 2 \(dedup\): by 'urll'; valid: hash, url, image"),
        ({"aesthetic": {"source": "bogus"}}, r"\(aesthetic\): source 'bogus'; valid: auto, column, model"),
        ({"watermark": {"source": "pixels"}}, r"\(watermark\): source 'pixels'"),
    ],
)
def test_enum_parameters_are_refused_when_the_recipe_is_read(stage: dict, match: str) -> None:
    """``Literal`` annotations: a bad choice stops at parse time, wherever the stage stands."""
    with pytest.raises(ConfigError, match=match):
        recipe_from_dict({"stages": ["dedup", stage]}, "r.yaml")


def test_source_model_before_download_is_refused_in_both_paths(tmp_path: Path) -> None:
    """The phase-dependent check stays at run time: pushed down or in Arrow, same one line."""
    with pytest.raises(ConfigError, match="source 'model' needs images; list it under post_download"):
        _pushdown_reasons(tmp_path, "aesthetic", {"source": "model"})
    with pytest.raises(ConfigError, match="source 'model' needs images"):
        _run("aesthetic", NASTY, source="model")


def test_rule_values_are_bound_never_formatted() -> None:
    """Thresholds reach DuckDB as parameters: the SQL text is the same whatever the values (NaN too)."""

    def text(name: str, params: dict) -> list[str]:
        cols = Columns(frozenset(NASTY.column_names), Params(), "t", name)
        return [cond for cond, _ in OPERATORS.get(name).rule(cols, StageContext("t", METADATA), **params)]

    for name, params in [(n, p) for n, ps in PARAMS.items() for p in ps]:
        for key, value in params.items():
            if isinstance(value, float):
                assert text(name, {**params, key: float("nan")}) == text(name, params)
            elif not isinstance(value, bool):
                assert text(name, {**params, key: value + 7}) == text(name, params)
