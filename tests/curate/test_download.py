"""A real img2dataset download from `world serve`, its failure modes, and a retry of failed rows."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from t2iscope.curate.download import DownloadOptions, download_run
from t2iscope.curate.recipe import recipe_from_dict
from t2iscope.curate.run import run_recipe
from t2iscope.errors import ConfigError
from t2iscope.paths import models_dir

RECIPE = recipe_from_dict(
    {
        "name": "dl",
        "stages": [{"unsafe": {"max_score": 0.5}}, {"resolution": {"min_side": 600}}],
        "post_download": [{"resolution": {"min_side": 600}}, {"dedup": {"by": "image"}}],
    },
    "dl.yaml",
)


@pytest.fixture(scope="module")
def downloaded(world_dir: Path, world_server: object, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("dl")
    run_recipe(RECIPE, str(world_dir), root / "run", progress=False)
    options = DownloadOptions(timeout=1, threads=8, via=world_server.url)  # type: ignore[attr-defined]
    first = download_run(root / "run", root / "shards", options)
    first_status = pq.read_table(root / "shards" / "status.parquet")
    retry = download_run(
        root / "run",
        root / "shards",
        DownloadOptions(timeout=5, threads=8, via=options.via),
        retry_failed=True,
    )
    return {"root": root, "first": first, "first_status": first_status, "retry": retry}


def _truth(world_dir: Path) -> dict[int, tuple[str, bool]]:
    truth = pq.read_table(world_dir / "truth", columns=["hash", "http_failure", "noai"]).to_pylist()
    return {r["hash"]: (r["http_failure"], bool(r["noai"])) for r in truth}


def test_every_row_has_status_and_failures_match_truth(downloaded: dict, world_dir: Path) -> None:
    status = downloaded["first_status"].to_pylist()
    kept = pq.read_table(downloaded["root"] / "run" / "kept")
    assert len(status) == kept.num_rows == downloaded["first"]["rows"] > 0
    truth = _truth(world_dir)
    for row in status:
        failure, noai = truth[row["hash"]]
        if failure == "404":
            assert row["status"] != "success" and "404" in row["error_message"]
        elif noai:
            assert row["status"] != "success" and "X-Robots-Tag" in row["error_message"]
        elif failure == "ok" and row["status"] != "success":
            # a shared, busy machine can miss a 1 s deadline; the retry below must recover it
            assert "timed out" in row["error_message"], row
        if row["status"] != "success":
            assert row["error_message"]


def test_retry_fetches_only_failed_rows(downloaded: dict, world_dir: Path) -> None:
    first, retry = downloaded["first"], downloaded["retry"]
    assert retry["attempted"] == first["failed"] > 0
    assert retry["success"] >= first["success"]
    status = pq.read_table(downloaded["root"] / "shards" / "status.parquet")
    attempts = dict(
        zip(status.column("row_id").to_pylist(), status.column("attempt").to_pylist(), strict=True)
    )
    before = downloaded["first_status"]
    for row_id, st in zip(
        before.column("row_id").to_pylist(), before.column("status").to_pylist(), strict=True
    ):
        assert attempts[row_id] == (1 if st == "success" else 2)
    truth = _truth(world_dir)
    # a stall of 2 s beats a 1 s timeout but not a 5 s one: timeouts recover on retry, 404s do not
    recovered = [
        truth[h][0]
        for h, s, a in zip(
            *(status.column(c).to_pylist() for c in ("hash", "status", "attempt")), strict=True
        )
        if s == "success" and a == 2
    ]
    assert "404" not in recovered
    for h, s in zip(status.column("hash").to_pylist(), status.column("status").to_pylist(), strict=True):
        if truth[h] == ("ok", False):
            assert s == "success"


def test_post_download_stages_and_outputs(downloaded: dict) -> None:
    root = downloaded["root"] / "shards"
    kept, dropped = pq.read_table(root / "kept"), pq.read_table(root / "dropped")
    post = downloaded["retry"]["post_download"]
    assert post["rows_in"] == downloaded["retry"]["success"] == kept.num_rows + dropped.num_rows
    assert "image" not in kept.column_names and {"pixel_width", "key", "URL"} <= set(kept.column_names)
    assert pc.min(pc.min_element_wise(kept.column("pixel_width"), kept.column("pixel_height"))).as_py() >= 600
    assert set(dropped.column("stage").to_pylist()) <= {"resolution", "dedup"}


def test_download_twice_needs_retry_flag(downloaded: dict) -> None:
    with pytest.raises(ConfigError, match="already downloaded; use --retry-failed"):
        download_run(downloaded["root"] / "run", downloaded["root"] / "shards", DownloadOptions())


# -- model folders are loaded before anything is fetched ------------------------------------------

MODEL_RECIPE = recipe_from_dict(
    {
        "name": "dl-models",
        "stages": [{"unsafe": {"max_score": 0.5}}],
        "post_download": [{"aesthetic": {"source": "model"}}, {"watermark": {"source": "auto"}}],
    },
    "dl-models.yaml",
)


@pytest.fixture(scope="module")
def model_run(world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("dl-models") / "run"
    run_recipe(MODEL_RECIPE, str(world_dir), run, progress=False)
    return run


def _broken_models(kind: str, root: Path) -> Path:
    """A T2ISCOPE_MODELS folder: empty, or the shipped heads with one of them broken."""
    root.mkdir()
    if kind == "empty":
        return root
    for name in ("clip", "aesthetic", "watermark"):
        shutil.copytree(models_dir() / name, root / name)
    if kind == "unknown architecture":
        config = root / "aesthetic" / "config.json"
        config.write_text(json.dumps({**json.loads(config.read_text()), "architecture": "mlp-9000"}))
    else:  # truncated weights of the second stage's model: every stage is loaded up front
        weights = root / "watermark" / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
    return root


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", r"aesthetic: not a model folder"),
        ("unknown architecture", r"aesthetic/config\.json: .*'mlp-9000'"),
        ("truncated", r"watermark/model\.safetensors: cannot read weights"),
    ],
)
def test_broken_model_folder_stops_before_any_download(
    kind: str,
    message: str,
    model_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from t2iscope.cli import main
    from t2iscope.curate import download

    started: list[object] = []
    monkeypatch.setattr(download, "_spawn_img2dataset", lambda kwargs, folder: started.append(folder))
    monkeypatch.setenv("T2ISCOPE_MODELS", str(_broken_models(kind, tmp_path / "models")))
    out = tmp_path / "shards"
    code = main(["curate", "download", str(model_run), "--out", str(out), "--via", "http://127.0.0.1:9"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and started == []  # img2dataset never started
    assert err.startswith("t2iscope: error: ") and "\n" not in err and re.search(message, err), err
    assert not out.exists()  # no images/, status.parquet or url list: the plain rerun works once fixed


def test_column_scores_need_no_model_folder(
    model_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from t2iscope.curate import download

    recipe = recipe_from_dict(
        {"name": "cols", "stages": [], "post_download": [{"aesthetic": {"source": "column"}}, "dedup"]},
        "cols.yaml",
    )
    monkeypatch.setattr(download, "_recipe", lambda run_dir, name: recipe)
    monkeypatch.setenv("T2ISCOPE_MODELS", str(_broken_models("empty", tmp_path / "models")))

    class Started(Exception):
        pass

    def spawn(kwargs: dict, folder: Path) -> None:
        raise Started

    monkeypatch.setattr(download, "_spawn_img2dataset", spawn)
    with pytest.raises(Started):  # reached the download: nothing to preload
        download_run(model_run, tmp_path / "shards", DownloadOptions(via="http://127.0.0.1:9"))
