"""Every page through Streamlit's AppTest, asserting on numbers from the fixture runs folder."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from fixture_runs import APP, DOMAINS
from streamlit.testing.v1 import AppTest


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "error", "warning", "success")
        for e in at.get(kind)
    ]
    return "\n".join(str(p) for p in parts)


def test_overview_lists_every_run(runs_dir, use_runs):
    use_runs(runs_dir)
    at = open_page("views/overview.py")
    assert [m.value for m in at.metric] == ["1", "1", "1", "1"]
    assert "`curated`" in texts(at)


def test_empty_folder_says_what_to_run(tmp_path, use_runs):
    use_runs(tmp_path)
    for page in (
        "views/overview.py",
        "views/explorer.py",
        "views/funnel.py",
        "views/gallery.py",
        "views/bias.py",
    ):
        at = open_page(page)
        assert "t2iscope" in "\n".join(e.value for e in at.info), page
        assert not at.error


def test_explorer_counts_and_filters(runs_dir, use_runs):
    use_runs(runs_dir)
    kept = pd.read_parquet(runs_dir / "curated" / "kept")
    at = open_page("views/explorer.py")
    assert at.metric[0].value == str(len(kept))
    at.multiselect(key="languages").select("de").run()
    assert at.metric[0].value == str(int((kept["lang"] == "de").sum()))
    langs = at.dataframe[0].value
    assert langs["language"].tolist() == ["de"]


def test_explorer_filter_value_with_a_quote(runs_dir, use_runs):
    use_runs(runs_dir)
    kept = pd.read_parquet(runs_dir / "curated" / "kept")
    quoted = next(d for d in DOMAINS if "'" in d)
    at = open_page("views/explorer.py")
    at.multiselect(key="domains").select(quoted).run()
    assert not at.error
    assert at.metric[0].value == str(int((kept["domain"] == quoted).sum()))
    at.text_input(key="text").input("it's").run()
    assert not at.error
    assert at.metric[0].value == "0"


def test_explorer_world_thumbnails_survive_a_corrupt_image(runs_dir, use_runs):
    use_runs(runs_dir)
    at = open_page("views/explorer.py")
    at.selectbox(key="dataset").select_index(1).run()  # the world
    assert at.metric[0].value == str(len(pd.read_parquet(runs_dir / "world" / "metadata")))
    at.text_input(key="text").input("#0").run()  # only row 0's caption has "#0"; its image is corrupt
    assert "unreadable image" in texts(at)
    assert not at.error


def test_funnel_matches_stats(runs_dir, use_runs, stats):
    use_runs(runs_dir)
    at = open_page("views/funnel.py")
    funnel = at.dataframe[0].value
    assert funnel["rows_in"].tolist() == [s["rows_in"] for s in stats["stages"]]
    assert funnel["rows_out"].tolist() == [s["rows_out"] for s in stats["stages"]]
    assert at.metric[0].value == f"{stats['rows_out']:,}"
    reasons = at.dataframe[1].value
    expected = {(s["stage"], r): n for s in stats["stages"] for r, n in s["dropped"].items()}
    assert (
        dict(zip(zip(reasons["stage"], reasons["reason"], strict=True), reasons["rows"], strict=True))
        == expected
    )


def test_funnel_two_runs_side_by_side(runs_dir, use_runs, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(runs_dir / "curated", root / "a")
    shutil.copytree(runs_dir / "curated", root / "b")
    (root / "b" / "stats.json").write_text("{broken")
    use_runs(root)
    at = open_page("views/funnel.py")
    assert len(at.selectbox) == 2
    assert "stats.json: not valid JSON" in at.error[0].value  # run b, beside a working run a
    assert len(at.dataframe) >= 2


def test_run_with_missing_table_is_a_message(runs_dir, use_runs, tmp_path):
    shutil.copytree(runs_dir / "curated", tmp_path / "curated")
    shutil.rmtree(tmp_path / "curated" / "kept")
    use_runs(tmp_path)
    at = open_page("views/explorer.py")
    assert "no kept/*.parquet" in at.error[0].value


def test_gallery_grid_and_languages(runs_dir, use_runs):
    use_runs(runs_dir)
    manifest = pd.read_parquet(runs_dir / "gen" / "manifest.parquet")
    at = open_page("views/gallery.py")
    dog_en = manifest[(manifest["prompt_id"] == "dog") & (manifest["language"] == "en")]
    assert at.subheader[0].value == dog_en["prompt"].iloc[0]
    headers = [m.value for m in at.markdown if m.value.startswith("**cfg_scale")]
    assert headers == [f"**cfg_scale = {v}**" for v in sorted(dog_en["cfg_scale"].unique())]
    captions = [c for image in at.image for c in image.captions]
    grid = {
        f"seed {r.seed} · cfg {r.cfg_scale:g} · {r.steps} steps · {r.sampler}" for r in dog_en.itertuples()
    }
    assert grid <= set(captions)
    across = [c.split(":")[0] for c in captions if ": " in c]
    assert across == ["de", "en"]  # the same concept, one image per language


def test_gallery_corrupt_image_is_a_placeholder(runs_dir, use_runs):
    use_runs(runs_dir)
    at = open_page("views/gallery.py")
    at.selectbox(key="prompt_id").select("spider").run()
    at.selectbox(key="language").select("de").run()
    assert "unreadable image" in texts(at)
    assert not at.error


def test_bias_page(runs_dir, use_runs):
    use_runs(runs_dir)
    bias = pd.read_parquet(runs_dir / "audit" / "language_bias.parquet")
    culture = pd.read_parquet(runs_dir / "audit" / "culture.parquet")
    at = open_page("views/bias.py")
    adherence = at.dataframe[0].value.set_index("language")
    want = bias[bias["metric"] == "both_match"].set_index("language")
    assert adherence["value"].to_dict() == pytest.approx(want["value"].to_dict())
    assert adherence["ci_low"].to_dict() == pytest.approx(want["ci_low"].to_dict())
    shares = at.dataframe[1].value
    want = culture[(culture["metric"] == "share")]
    assert set(shares["source"]) == {"generated", "training", "parity"}
    assert len(shares) == len(want) and "(all)" not in set(shares["culture"])
    assert "Skipped 3: prompt names no world color and kind" in texts(at)


def test_limbs_page_by_subject_then_by_seed(runs_dir, use_runs):
    use_runs(runs_dir)
    limbs = pd.read_parquet(runs_dir / "audit" / "limbs.parquet")
    at = open_page("views/limbs.py")
    shown = at.dataframe[0].value.set_index("level")
    by_subject = limbs[limbs["by"] == "subject"]
    for row in by_subject.itertuples():
        assert shown.loc[row.level, "value"] == pytest.approx(row.value)
        assert shown.loc[row.level, "ci_high"] == pytest.approx(row.ci_high)
    at.selectbox(key="limbs_by").select("seed").run()
    assert sorted(at.dataframe[0].value["level"]) == ["0", "1"]


def test_watermark_page(runs_dir, use_runs):
    use_runs(runs_dir)
    wm = pd.read_parquet(runs_dir / "audit" / "watermark.parquet")
    wm = wm[wm["metric"] == "bit_accuracy"]
    at = open_page("views/watermark.py")
    shown = at.dataframe[0].value
    assert set(shown["method"]) == set(wm["method"])
    assert sorted(shown["strength"].unique()) == sorted(wm["strength"].unique())
    worst = shown.sort_values("value").iloc[0]
    assert (worst["method"], worst["strength"]) == ("dwtDct", 1.0)


def test_audit_pages_without_their_table(runs_dir, use_runs, tmp_path):
    shutil.copytree(runs_dir / "audit", tmp_path / "audit")
    (tmp_path / "audit" / "watermark.parquet").unlink()
    use_runs(tmp_path)
    at = open_page("views/watermark.py")
    assert "No watermark audit table" in at.info[0].value
    assert not at.error
