"""The dashboards' queries against pandas computations over the same fixture tables."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixture_runs import DOMAINS, write_audit_run

from t2iscope import fileio
from t2iscope.dashboards import data
from t2iscope.dashboards.discover import discover
from t2iscope.errors import DataError


@pytest.fixture
def kept(runs_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(runs_dir / "curated" / "kept")


@pytest.fixture
def ds(runs_dir: Path) -> data.Dataset:
    return data.Dataset("curation", str(runs_dir / "curated"))


def test_count_with_every_filter(ds, kept):
    f = data.Filters(
        languages=("en", "de"),
        domains=tuple(DOMAINS[:3]),
        min_width=768,
        min_height=512,
        ranges=(("AESTHETIC_SCORE", 4.5, 6.0),),
        text="A RED",
    )
    want = kept[
        kept["lang"].isin(f.languages)
        & kept["domain"].isin(f.domains)
        & (kept["WIDTH"] >= 768)
        & (kept["HEIGHT"] >= 512)
        & kept["AESTHETIC_SCORE"].between(4.5, 6.0)
        & kept["TEXT"].str.lower().str.contains("a red")
    ]
    assert len(want) > 0
    assert data.summary(ds, f).rows == len(want)


def test_values_with_quotes_and_sql_are_data(ds, kept):
    quoted = next(d for d in DOMAINS if "'" in d)
    assert data.summary(ds, data.Filters(domains=(quoted,))).rows == int((kept["domain"] == quoted).sum())
    assert data.summary(ds, data.Filters(text="'; DROP TABLE x; --")).rows == 0


def test_unknown_column_is_refused(ds):
    with pytest.raises(DataError, match="no column"):
        data.histogram(ds, 'WIDTH" FROM x; --', data.Filters())


def test_histogram_counts_every_row(ds, kept):
    hist = data.histogram(ds, "AESTHETIC_SCORE", data.Filters(), bins=7)
    assert hist["rows"].sum() == len(kept)
    assert hist["start"].iloc[0] == pytest.approx(kept["AESTHETIC_SCORE"].min())
    assert hist["stop"].iloc[-1] == pytest.approx(kept["AESTHETIC_SCORE"].max())
    assert len(hist) <= 7


def test_summary_and_domain_coverage(ds, kept):
    summary = data.summary(ds, data.Filters())
    assert summary.rows == len(kept)
    assert summary.languages["rows"].tolist() == kept["lang"].value_counts().tolist()
    counts = summary.domains
    assert counts["rows"].tolist() == kept["domain"].value_counts().tolist()
    cov = data.domain_coverage(counts)
    shares = kept["domain"].value_counts(normalize=True).cumsum().tolist()
    assert cov["coverage"].tolist() == pytest.approx(shares)
    assert cov["top_domains"].tolist() == list(range(1, len(shares) + 1))


def test_coverage_is_log_spaced_on_many_domains():
    counts = pd.DataFrame({"domain": [f"d{i}" for i in range(10_000)], "rows": np.arange(10_000, 0, -1)})
    cov = data.domain_coverage(counts, points=50)
    assert len(cov) <= 50 and cov["top_domains"].iloc[0] == 1 and cov["top_domains"].iloc[-1] == 10_000
    assert cov["coverage"].iloc[-1] == pytest.approx(1.0) and cov["coverage"].is_monotonic_increasing


def test_sample_is_reproducible_and_filtered(ds):
    f = data.Filters(languages=("fr",))
    a, b = data.sample(ds, f, 5, seed=1), data.sample(ds, f, 5, seed=1)
    assert a["hash"].tolist() == b["hash"].tolist()
    assert set(a["lang"]) == {"fr"} and len(a) == 5


def test_world_dataset_joins_domain_from_truth(runs_dir):
    world = data.Dataset("world", str(runs_dir / "world"))
    truth = pd.read_parquet(runs_dir / "world" / "truth")
    assert data.language_column(world) == "LANGUAGE"
    got = data.summary(world, data.Filters()).domains
    assert dict(zip(got["domain"], got["rows"], strict=True)) == truth["domain"].value_counts().to_dict()
    top = data.summary(world, data.Filters(domains=(got["domain"].iloc[0],)))
    assert top.rows == got["rows"].iloc[0]
    assert top.domains["rows"].tolist() == [got["rows"].iloc[0]]


def test_funnel_and_reasons_follow_stats(runs_dir, stats):
    run = str(runs_dir / "curated")
    funnel = data.funnel(run)
    assert funnel["stage"].tolist() == [s["stage"] for s in stats["stages"]]
    assert funnel["dropped"].sum() == stats["rows_in"] - stats["rows_out"]
    reasons = data.drop_reasons(run)
    assert reasons["rows"].sum() == stats["rows_in"] - stats["rows_out"]


def test_drop_reasons_fall_back_to_the_dropped_table(runs_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs_dir / "curated", run)
    (run / "stats.json").write_text('{"stages": [{"stage": "min_size", "rows_in": 240, "rows_out": 180}]}')
    dropped = pd.read_parquet(run / "dropped")
    reasons = data.drop_reasons(str(run))
    assert (
        dict(zip(reasons["reason"], reasons["rows"], strict=True))
        == dropped["reason"].value_counts().to_dict()
    )


def test_bad_stats_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="missing"):
        data.funnel(str(tmp_path))
    (tmp_path / "stats.json").write_text('{"stages": [{"name": "x"}]}')
    with pytest.raises(DataError, match="stage 1 lacks rows_in"):
        data.funnel(str(tmp_path))


def test_manifest_resolves_images_and_checks_columns(runs_dir, tmp_path):
    df = data.manifest(str(runs_dir / "gen"), str(runs_dir))
    assert all(Path(p).is_file() for p in df["image_file"]) and not any(df["image_problem"])
    pd.DataFrame({"prompt": ["x"]}).to_parquet(tmp_path / "manifest.parquet")
    with pytest.raises(DataError, match="missing column"):
        data.manifest(str(tmp_path), str(tmp_path))


def test_audit_rows_by_audit_name(runs_dir):
    rows = data.audit_rows((str(runs_dir / "audit"),), ("limbs",))
    assert set(rows["audit"]) == {"limbs"} and set(rows["run"]) == {"audit"}
    assert data.slice_columns(rows) == ["by", "level", "subject"]  # attribute is one value (legs): no slice


def test_a_reused_audit_folder_shows_only_its_runs_audits(runs_dir, tmp_path):
    """Issue 14 item 9 in the dashboards: tables an older run left beside run.json's are never
    read, and a folder whose run did not finish is no run at all (as in `evaluate report`)."""
    tables = {p.stem: pd.read_parquet(p) for p in (runs_dir / "audit").glob("*.parquet")}
    audit, older = tmp_path / "audit", tmp_path / "older"
    write_audit_run(audit, {"limbs": tables["limbs"]})
    fileio.write_parquet(audit / "watermark.parquet", tables["watermark"])  # an older run's, valid
    fileio.write_parquet(older / "limbs.parquet", tables["limbs"].assign(value=0.0))  # no run.json
    found = discover(tmp_path)
    assert (found.audits, found.unfinished) == ((audit,), (older,))
    assert data.audit_rows((str(audit),), ("watermark",)).empty
    rows = data.audit_rows((str(audit),), ("limbs", "watermark"))
    pd.testing.assert_frame_equal(rows.drop(columns="run"), tables["limbs"])
    with pytest.raises(DataError, match=r"older: unfinished audit run \(no run\.json\)"):
        data.audit_rows((str(older),), ("limbs",))


def test_languages_in_and_out(runs_dir, kept):
    langs = data.languages(str(runs_dir / "curated")).set_index("language")
    assert langs["rows_out"].to_dict() == kept["lang"].value_counts().to_dict()
    assert langs["rows_in"].sum() == len(pd.read_parquet(runs_dir / "world" / "metadata"))


def _with_a1111_settings(runs_dir, tmp_path, **columns) -> Path:
    gen = tmp_path / "gen"
    shutil.copytree(runs_dir / "gen", gen)
    df = pd.read_parquet(gen / "manifest.parquet")
    fileio.write_parquet(gen / "manifest.parquet", df.assign(**{k: v(df) for k, v in columns.items()}))
    return gen


def test_manifest_reads_a1111_settings_and_defaults_the_rows_made_before_them(runs_dir, tmp_path):
    """Issue 17: a manifest with A1111's later settings reads them; a null (a row made before
    them, resumed into a newer manifest) is the default that image was made with."""
    gen = _with_a1111_settings(
        runs_dir, tmp_path,
        scheduler=lambda df: ["Karras"] * (len(df) - 1) + [None],
        clip_skip=lambda df: [2.0] * (len(df) - 1) + [None],
        subseed_strength=lambda df: [None] * len(df),
    )  # fmt: skip
    df = data.manifest(str(gen), str(tmp_path))
    assert list(df["scheduler"])[-2:] == ["Karras", ""] and list(df["clip_skip"])[-2:] == [2, 1]
    assert set(df["subseed_strength"]) == {0.0}
    old = data.manifest(str(runs_dir / "gen"), str(runs_dir))  # made before: no such columns at all
    assert "scheduler" not in old and len(old) == len(df)


def test_a_setting_that_is_no_number_is_one_line(runs_dir, tmp_path):
    gen = _with_a1111_settings(runs_dir, tmp_path, clip_skip=lambda df: ["two"] * len(df))
    with pytest.raises(DataError, match="column clip_skip holds object, not numbers"):
        data.manifest(str(gen), str(tmp_path))
