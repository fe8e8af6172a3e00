"""The pages over a world and a curation run written by the real `world make` and `curate run`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from fixture_runs import APP
from streamlit.testing.v1 import AppTest

from t2iscope.dashboards.discover import discover


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page(page).run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    return at


def test_real_runs_are_discovered(real_runs: Path):
    found = discover(real_runs)
    assert found.worlds == (real_runs / "world",) and found.curations == (real_runs / "curated",)


def test_funnel_matches_curate_runs_stats(real_runs: Path, use_runs):
    use_runs(real_runs)
    stats = json.loads((real_runs / "curated" / "stats.json").read_text())
    at = open_page("views/funnel.py")
    funnel = at.dataframe[0].value
    assert funnel["stage"].tolist() == [s["stage"] for s in stats["stages"]]
    assert funnel["rows_out"].tolist() == [s["rows_out"] for s in stats["stages"]]
    reasons = at.dataframe[1].value
    assert reasons["rows"].sum() == stats["rows_in"] - stats["rows_out"]
    langs = at.dataframe[2].value  # in: LAION's LANGUAGE, out: the detected lang
    assert langs["rows_in"].sum() == stats["rows_in"] and langs["rows_out"].sum() == stats["rows_out"]
    assert set(langs["language"]) == set(stats["languages"]["in"]) | set(stats["languages"]["out"])


def test_explorer_over_a_real_world_shows_its_images(real_runs: Path, use_runs):
    use_runs(real_runs)
    kept = pd.read_parquet(real_runs / "curated" / "kept")
    at = open_page("views/explorer.py")
    assert at.metric[0].value == str(len(kept))
    assert len(at.image) == 24  # every sampled kept row found its rendered scene in the world
    at.selectbox(key="dataset").select_index(1).run()
    assert at.metric[0].value == "400"
