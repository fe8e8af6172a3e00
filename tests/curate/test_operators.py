"""Every operator: DuckDB pushdown and Arrow agree row by row; each rule drops what it says."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from curate_rows import laion_table

from t2iscope.curate.operators import METADATA, OPERATORS, StageContext, load_all
from t2iscope.curate.operators.dedup import KeySet, laion_hash
from t2iscope.curate.readers import connect
from t2iscope.errors import DataError

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
    "caption": [{"min_words": 2}, {"min_chars": 6, "reject_junk": True}, {"min_words": 3, "min_chars": 6}],
}


def _sql_reasons(con: duckdb.DuckDBPyConnection, table: pa.Table, rules: list[tuple[str, str]]) -> list:
    case = " ".join(f"WHEN {c} THEN '{r}'" for c, r in rules)
    con.register("t", table)
    return [r[0] for r in con.execute(f"SELECT CASE {case} END FROM t").fetchall()]


@pytest.mark.parametrize(("name", "params"), [(n, p) for n, ps in PARAMS.items() for p in ps])
def test_pushdown_matches_arrow(name: str, params: dict) -> None:
    op = OPERATORS.get(name)
    rules = op.sql(set(NASTY.column_names), **params)
    assert rules is not None
    arrow = op.fn(NASTY, StageContext("nasty", METADATA), **params)
    sql = _sql_reasons(connect(threads=1), NASTY, rules)
    assert arrow.reason.to_pylist() == sql
    assert list(arrow.keep) == [r is None for r in sql]
    assert not all(arrow.keep), f"{name} {params}: fixture should make it drop something"


def test_every_operator_is_covered_or_arrow_only() -> None:
    arrow_only = {"language", "domain", "dedup"}
    assert set(OPERATORS.names()) == set(PARAMS) | arrow_only
    for name in arrow_only:
        assert OPERATORS.get(name).sql is None


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
