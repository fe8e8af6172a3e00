"""The Quality page over a real quality audit (`t2iscope evaluate run`, the embedded CLIP and
aesthetic head) of fixture_runs' CFG-sweep generation against world renders in a webdataset shard:
the trade-off points, the per-setting table and a generated image's nearest reference images."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from fixture_runs import APP, make_generation, make_world, write_audit_run
from streamlit.testing.v1 import AppTest

from t2iscope.cli import main
from t2iscope.dashboards import data

PAGE = "views/quality.py"


@pytest.fixture(scope="module")
def quality_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs folder whose audit ran `quality` with paths relative to the folder above it (as the
    demo runs from the repository), so the page must find the files the audit named under its root."""
    top = tmp_path_factory.mktemp("quality")
    root = top / "runs"
    make_world(root / "world")
    make_generation(root / "gen")  # 2 prompts x 2 languages x 2 seeds x cfg 3, 7; one broken image
    renders = sorted((root / "world" / "images").rglob("*.png"))[1:31]  # the first is corrupt
    (root / "shards").mkdir()
    with tarfile.open(root / "shards" / "00000.tar", "w") as tar:
        for i, f in enumerate(renders):
            blob = f.read_bytes()
            info = tarfile.TarInfo(f"{i:09d}.png")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    (top / "audit.yaml").write_text(
        "inputs: {generation: [runs/gen]}\naudits: {quality: {reference: runs/shards, n_boot: 20}}\n"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(top)
        mp.setenv("T2ISCOPE_FEATURE_CACHE", str(top / "feature-cache"))
        assert main(["evaluate", "run", "audit.yaml", "--out", "runs/audit"]) == 0
    return root


@pytest.fixture(scope="module")
def table(quality_runs: Path) -> pd.DataFrame:
    return pd.read_parquet(quality_runs / "audit" / "quality.parquet")


def open_page(runs: Path, use_runs) -> AppTest:
    use_runs(runs)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_audit_rows_keep_the_audit_s_own_run(quality_runs: Path) -> None:
    rows = data.audit_rows((str(quality_runs / "audit"),), ("quality",))
    assert set(rows["run"].dropna()) == {"gen", "(reference)"} and set(rows["audit_run"]) == {"audit"}


def test_tradeoff_points_per_cfg_level(quality_runs: Path, table: pd.DataFrame, use_runs) -> None:
    at = open_page(quality_runs, use_runs)
    charts = at.get("vega_lite_chart")  # Altair: the trade-off, then the per-setting chart
    assert len(charts) == 2
    tradeoff = charts[0]
    assert all(f'"{c}"' in tradeoff.proto.spec for c in ("clip_score_low", "distance_high", "cfg_scale"))
    points = at.dataframe[0].value
    manifest = pd.read_parquet(quality_runs / "gen" / "manifest.parquet")
    readable = manifest.iloc[:-1]  # make_generation breaks its last image
    assert points["cfg_scale"].tolist() == [3.0, 7.0]
    assert points["n"].tolist() == readable.groupby("cfg_scale").size().tolist()  # 8 and 7 images
    cfg = table[(table["by"] == "cfg_scale") & (table["curve"] == "(all)")]
    for metric in ("cmmd", "clip_score"):
        want = cfg[cfg["metric"] == metric].assign(level=lambda d: d["level"].astype(float))
        want = want.set_index("level").loc[points["cfg_scale"]]
        assert points[metric].to_numpy() == pytest.approx(want["value"].to_numpy())
        assert points[f"{metric}_high"].to_numpy() == pytest.approx(want["ci_high"].to_numpy())
    at.radio(key="distance").set_value("fd").run()
    fd = cfg[cfg["metric"] == "fd"].assign(level=lambda d: d["level"].astype(float)).set_index("level")
    shown = at.dataframe[0].value
    assert shown["fd"].to_numpy() == pytest.approx(fd.loc[shown["cfg_scale"], "value"].to_numpy())


def test_every_metric_by_setting_with_n_and_intervals(quality_runs: Path, table: pd.DataFrame, use_runs):
    at = open_page(quality_runs, use_runs)
    assert at.selectbox(key="metric").value == "cmmd" and at.selectbox(key="quality_by").value == "cfg_scale"
    shown = at.dataframe[1].value.set_index("level")
    want = table[(table["metric"] == "cmmd") & (table["by"] == "cfg_scale") & (table["curve"] == "(all)")]
    assert set(shown.index) == set(want["level"])
    for row in want.itertuples():
        assert shown.loc[row.level, "n"] == row.n and shown.loc[row.level, "ci_low"] == pytest.approx(
            row.ci_low
        )
    at.selectbox(key="quality_by").set_value("language").run()
    assert set(at.dataframe[1].value["level"]) == {"en", "de"}
    assert any("Skipped 1:" in c.value and "generated image" in c.value for c in at.caption)  # the broken one


def test_a_generated_image_beside_its_nearest_reference_images(
    quality_runs: Path, table: pd.DataFrame, use_runs
) -> None:
    near = table[table["metric"] == "nearest_reference"]
    closest = near[near["rank"] == 1].sort_values("value").iloc[0]
    at = open_page(quality_runs, use_runs)
    assert at.selectbox(key="image").value == closest["level"]  # the nearest pair comes first
    assert len(at.image) == 4  # the generated image, then its 3 neighbours read from the tar
    captions = [c for image in at.image for c in image.captions]
    manifest = pd.read_parquet(quality_runs / "gen" / "manifest.parquet")
    prompt = manifest.loc[manifest["image_path"] == f"images/{Path(closest['level']).name}", "prompt"]
    assert captions[0].startswith(f"`generated: {prompt.iloc[0]} · cfg_scale ")
    mine = near[near["level"] == closest["level"]].sort_values("rank")
    assert [c.split(" · ")[1] for c in captions[1:]] == [f"distance {v:.3f}" for v in mine["value"]]
    assert all(c.endswith(f"{r}`") for c, r in zip(captions[1:], mine["reference"], strict=True))
    other = sorted(set(near["level"]) - {closest["level"]})[0]
    at.selectbox(key="image").set_value(other).run()
    assert len(at.image) == 4 and not at.error


def test_files_outside_the_runs_folder_are_not_shown(
    quality_runs: Path, table: pd.DataFrame, use_runs, tmp_path: Path
) -> None:
    """A table naming images out of the runs folder (absolute, ``..``) shows placeholders."""
    root = tmp_path / "runs"
    shutil.copytree(quality_runs, root, ignore=shutil.ignore_patterns("audit"))
    secret = tmp_path / "secret.png"
    shutil.copy(next((root / "world" / "images").rglob("*.png")), secret)
    near = table["metric"] == "nearest_reference"
    first = table.loc[near & (table["rank"] == 1)].sort_values("value").iloc[0]["level"]
    bad = table.copy()
    bad.loc[near & (bad["level"] == first) & (bad["rank"] == 1), "reference"] = str(secret)
    bad.loc[near & (bad["level"] == first) & (bad["rank"] == 2), "reference"] = "runs/../../secret.png"
    write_audit_run(root / "audit", {"quality": bad})
    at = open_page(root, use_runs)
    assert len(at.image) == 2  # the generated image and the one neighbour inside the folder
    placeholders = [c.value for c in at.caption if "no readable image" in c.value]
    assert len(placeholders) == 2 and "secret.png" in placeholders[0]


def test_no_quality_audit_says_what_to_run(runs_dir: Path, use_runs) -> None:
    at = open_page(runs_dir, use_runs)  # fixture_runs' audit ran bias, limbs and watermark audits
    assert "No audit run here ran the quality audit" in at.info[0].value
    assert "generate suite cfg-steps" in at.code[0].value
