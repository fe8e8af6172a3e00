"""The ``clip_score`` stage: LAION's ``similarity`` before download, CLIP on the pixels after.

Metadata: an absolute ``min_score`` and DataComp's ``top_fraction`` (a cutoff over every input
file, kept in ``_state/cutoffs.json``) give the same verdicts pushed into DuckDB and on Arrow.
Pixels: a held-out world (seed 1; the embedded CLIP trained on seed 0) as the download hands it
over, JPEGs from the world server's encoder, scored with the embedded tiny CLIP and with a
randomly initialised ViT-B-32 open_clip folder in the published layout.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from curate_rows import laion_table, pushdown_reasons

from t2iscope.cli import main
from t2iscope.curate import scorers
from t2iscope.curate.download import _post_download_stored, post_download
from t2iscope.curate.engine_local import LocalEngine
from t2iscope.curate.operators import CUTOFF, METADATA, OPERATORS, StageContext, load_all
from t2iscope.curate.recipe import Recipe, recipe_from_dict
from t2iscope.curate.run import run_recipe
from t2iscope.curate.world import layout
from t2iscope.errors import ConfigError, DataError
from t2iscope.generate.train.measure import roc_auc

load_all()
ROWS = 200
DOWNLOAD_SIDE = 256  # img2dataset's image_size in DownloadOptions


def _recipe(stages: list, post: list | None = None) -> Recipe:
    return recipe_from_dict({"name": "cs", "stages": stages, "post_download": post or []}, "cs.yaml")


def _set(table: pa.Table, name: str, values: pa.Array | list) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, values)


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table[name].to_numpy(zero_copy_only=False).astype(np.float64)


# -- metadata ---------------------------------------------------------------------------------------


def test_top_fraction_rule_agrees_through_sql_and_arrow(tmp_path: Path) -> None:
    """With a resolved cutoff the rule is an ordinary threshold: pushed down or on Arrow, same
    reasons; a float32 score equal to the cutoff is kept (ties included), null and NaN are missing."""
    sims = pa.array([0.31, 0.28, 0.2799, None, float("nan"), 0.28, -0.5, 1.0], pa.float32())
    table = _set(laion_table(8, similarity=sims.to_pylist()), "similarity", sims)
    cutoff = float(np.float32(0.28))  # what pool_cutoff returns when the quantile lands on a score
    params = {"top_fraction": 0.5}
    sql = pushdown_reasons(tmp_path, "clip_score", params, table, {CUTOFF: cutoff})
    arrow = OPERATORS.get("clip_score").fn(table, StageContext("t", METADATA, {CUTOFF: cutoff}), **params)
    below = "similarity<0.28(top 50%)"
    assert sql == arrow.reason.to_pylist() == [
        None, None, below, "similarity_missing", "similarity_missing", None, below, None
    ]  # fmt: skip
    with pytest.raises(ConfigError, match=r"^stage 'clip_score': top_fraction's cutoff .* not resolved"):
        OPERATORS.get("clip_score").fn(table, StageContext("t", METADATA), **params)


def _pool(write_shards, n_scored: int, seed: int = 0) -> tuple[Path, pa.Table]:
    """Three shards: ``n_scored`` distinct similarities, plus nulls and NaNs (never ranked)."""
    rng = np.random.default_rng(seed)
    sims = rng.permutation(np.linspace(-0.1, 0.5, n_scored)).astype(np.float32).tolist()
    sims += [None] * 7 + [float("nan")] * 5
    order = rng.permutation(len(sims))
    tables = []
    for part in np.array_split(order, 3):
        values = [sims[i] for i in part]
        table = laion_table(len(part), TEXT=[f"caption {int(i)}" for i in part], similarity=values)
        tables.append(_set(table, "similarity", pa.array(values, pa.float32())))
    return write_shards(*tables), pa.concat_tables(tables)


@pytest.mark.parametrize("fraction", [0.3, 0.123, 1.0])
def test_metadata_top_fraction_keeps_exactly_the_top_of_the_whole_pool(
    write_shards, tmp_path: Path, fraction: float
) -> None:
    folder, rows = _pool(write_shards, 1000)
    stats = run_recipe(
        _recipe([{"clip_score": {"top_fraction": fraction}}]), str(folder), tmp_path / "r", progress=False
    )
    x = _column(rows, "similarity")
    scored = x[~np.isnan(x)]
    expected = np.quantile(scored, 1 - fraction)  # numpy's default: linear interpolation
    pool = stats["stages"][0]["top_fraction"]
    assert pool["pool"] == 1000 and pool["column"] == "similarity" and pool["fraction"] == fraction
    assert pool["cutoff"] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    kept = pq.read_table(tmp_path / "r" / "kept")
    want = rows.filter(pc.greater_equal(pc.cast(rows["similarity"], pa.float64()), expected))
    assert sorted(kept["hash"].to_pylist()) == sorted(want["hash"].to_pylist())
    assert kept.num_rows == 1000 - math.ceil(999 * (1 - fraction) - 1e-9)  # pool_cutoff's count
    if (fraction * 1000).is_integer():
        assert kept.num_rows == round(fraction * 1000)
    dropped = stats["stages"][0]["dropped"]
    assert dropped.pop("similarity_missing") == 12  # nulls and NaNs: dropped, never ranked
    below = f"similarity<{pool['cutoff']:.4g}(top {fraction * 100:g}%)"
    assert dropped == ({} if fraction == 1 else {below: 1000 - kept.num_rows})


def test_resumed_run_reuses_the_cutoff_and_refuses_changed_input(
    write_shards, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = _pool(write_shards, 600)
    recipe, out = _recipe([{"clip_score": {"top_fraction": 0.3}}]), tmp_path / "r"
    run_recipe(recipe, str(folder), out, progress=False)
    saved = json.loads((out / "_state" / "cutoffs.json").read_text())
    # A kill during shard 2, with a cutoff only the stored file holds: the rerun must use it.
    for path in (out / "stats.json", out / "_state" / "part-00002.json", *out.glob("*/part-00002.parquet")):
        path.unlink()
    saved["stages"]["0"]["cutoff"] = stored = 0.25
    (out / "_state" / "cutoffs.json").write_text(json.dumps(saved))
    monkeypatch.setattr(LocalEngine, "pool_cutoffs", lambda *a: pytest.fail("recomputed the cutoff"))
    stats = run_recipe(recipe, str(folder), out, progress=False)
    assert stats["stages"][0]["top_fraction"]["cutoff"] == stored
    redone = pq.read_table(out / "dropped" / "part-00002.parquet")
    assert set(redone["reason"].to_pylist()) <= {"similarity<0.25(top 30%)", "similarity_missing"}
    assert pc.min(pq.read_table(out / "kept" / "part-00002.parquet")["similarity"]).as_py() >= stored
    # The cutoff ranked every file: one changed after shards finished invalidates them.
    (out / "stats.json").unlink()
    (out / "_state" / "part-00002.json").unlink()
    pq.write_table(laion_table(3, similarity=[0.9, 0.8, 0.7]), folder / "part-2.parquet")
    with pytest.raises(ConfigError, match=r"top_fraction cutoffs ranked other input files, and 2 shard"):
        run_recipe(recipe, str(folder), out, progress=False)


@pytest.mark.parametrize(
    ("entry", "where", "match"),
    [
        ({"clip_score": {"min_score": 0.3, "top_fraction": 0.3}}, "stages", "give exactly one of min_score"),
        ("clip_score", "stages", "give exactly one of min_score"),
        (
            {"clip_score": {"top_fraction": 0.0}},
            "stages",
            r"top_fraction: expected a number > 0 and <= 1, got 0\.0$",
        ),
        (
            {"clip_score": {"top_fraction": 1.5}},
            "stages",
            r"top_fraction: expected a number > 0 and <= 1, got 1\.5$",
        ),
        (
            {"clip_score": {"min_score": 1.2}},
            "stages",
            r"min_score: expected a number >= -1 and <= 1, got 1\.2$",
        ),
        ({"clip_score": {"source": "model", "min_score": 0.3}}, "stages", "source 'model' needs images"),
        ({"clip_score": {"min_score": 0.3, "model": "models/clip"}}, "stages", "model scores images"),
        ({"clip_score": {"min_score": 0.3, "model": "/no/such/clip"}}, "post_download", "no such folder"),
        (
            {"clip_score": {"min_score": 0.3, "model": "MODELS/watermark"}},
            "post_download",
            "not an open_clip",
        ),
    ],
)
def test_bad_parameters_stop_curate_run_before_any_work(
    entry: object, where: str, match: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from t2iscope.paths import models_dir

    entry = json.loads(json.dumps(entry).replace("MODELS", str(models_dir())))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"stages": [entry] if where == "stages" else [], where: [entry]}))
    out = tmp_path / "run"
    pq.write_table(laion_table(4), tmp_path / "in.parquet")
    assert (
        main(["curate", "run", str(recipe), "--input", str(tmp_path / "in.parquet"), "--out", str(out)]) == 2
    )
    err = capsys.readouterr().err
    assert err.startswith(f"t2iscope: error: {recipe}: ") and err.count("\n") == 1 and "(clip_score)" in err
    assert re.search(match, err.rstrip()), err
    assert not out.exists()


# -- pixels -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A held-out world's rows as post_download receives them, and the world server's JPEG of each
    row it serves (long side capped at img2dataset's image size), by row_id."""
    from t2iscope.curate.world.make import make_world
    from t2iscope.curate.world.serve import WorldServer

    world = tmp_path_factory.mktemp("clip-heldout") / "w"
    make_world(world, ROWS, seed=1, images=True, progress=False)
    server = WorldServer(world, port=0, max_side=DOWNLOAD_SIDE)
    server.server_close()  # only its JPEG encoder is needed
    metadata = layout.read_table(world, "metadata")
    truth = {r["hash"]: r for r in layout.read_table(world, "truth").to_pylist()}
    rows = metadata.append_column("row_id", pa.array(np.arange(metadata.num_rows), pa.int64()))
    served = [truth[h] for h in rows["hash"].to_pylist()]
    jpegs = {i: server.jpeg(r) for i, r in enumerate(served) if r["http_failure"] == "ok" and not r["noai"]}
    sizes = pa.table(
        {"pixel_width": [r["true_width"] for r in served], "pixel_height": [r["true_height"] for r in served]}
    )
    return {
        "rows": rows,
        "jpegs": jpegs,
        "sizes": sizes.cast(pa.schema([("pixel_width", pa.int64()), ("pixel_height", pa.int64())])),
    }


def _status(served: dict, placed: dict[int, str], rows: pa.Table | None = None) -> pa.Table:
    """status.parquet with the rows of ``placed`` (row_id -> images_dir) downloaded, key = row_id."""
    rows = served["rows"] if rows is None else rows
    n = rows.num_rows
    return pa.table(
        {
            "row_id": rows["row_id"],
            "URL": rows["URL"],
            "hash": rows["hash"],
            "status": ["success" if i in placed else "failed_to_download" for i in range(n)],
            "error_message": [None if i in placed else "failed" for i in range(n)],
            "attempt": pa.array([int(placed.get(i, "attempt-1")[8:]) for i in range(n)], pa.int32()),
            "images_dir": [placed.get(i, "attempt-1") for i in range(n)],
            "key": [f"{i:09d}" if i in placed else None for i in range(n)],
            "pixel_width": served["sizes"]["pixel_width"],
            "pixel_height": served["sizes"]["pixel_height"],
        }
    )


def _scored(out: Path) -> pa.Table:
    """Every row post-download scored, kept and dropped, by row_id."""
    dropped = pq.read_table(out / "dropped").drop_columns(["stage", "reason"])
    return pa.concat_tables([pq.read_table(out / "kept"), dropped]).sort_by("row_id")


def _in_memory(served: dict, recipe: Recipe, out: Path, rows: pa.Table | None = None, ids=None) -> pa.Table:
    """post_download over the served images (those of ``ids``, default all); every scored row."""
    ids = sorted(served["jpegs"]) if ids is None else ids
    rows = served["rows"] if rows is None else rows
    images = {("attempt-1", f"{i:09d}"): served["jpegs"][i] for i in ids}
    post_download(recipe, rows, _status(served, dict.fromkeys(ids, "attempt-1"), rows), images, out)
    return _scored(out)


def test_tiny_clip_ranks_matching_captions_above_shuffled_ones(served: dict, tmp_path: Path) -> None:
    """Each image scores its own caption higher than a caption shuffled in from another row."""
    recipe = _recipe([], [{"clip_score": {"min_score": -1.0}}])
    start = time.perf_counter()
    matched = _in_memory(served, recipe, tmp_path / "matched")
    per_image = (time.perf_counter() - start) / len(served["jpegs"])
    texts = served["rows"]["TEXT"].to_pylist()
    shuffled = [texts[i] for i in np.random.default_rng(0).permutation(len(texts))]
    other = _in_memory(
        served, recipe, tmp_path / "shuffled", _set(served["rows"], "TEXT", pa.array(shuffled))
    )
    a, b = _column(matched, "clip_score"), _column(other, "clip_score")
    both = ~np.isnan(a) & ~np.isnan(b)
    auc = roc_auc(np.r_[a[both], b[both]], np.r_[np.ones(both.sum()), np.zeros(both.sum())])
    print(f"clip_score matched vs shuffled ROC AUC {auc:.4f} n={both.sum()}, {per_image * 1000:.1f} ms/image")
    assert auc >= 0.97  # measured 0.993 (n=181)
    assert np.nanmin(a) >= -1 and np.nanmax(a) <= 1 and matched["clip_score"].type == pa.float32()
    # a blank caption has nothing to compare with: missing, like a missing image
    dropped = pq.read_table(tmp_path / "matched" / "dropped")
    assert set(dropped["reason"].to_pylist()) == {"clip_score_missing"} and dropped.num_rows >= 1
    assert all(not (t or "").strip() for t in dropped["TEXT"].to_pylist())


def _place(served: dict, out: Path, attempt: int, shards: list[list[int]]) -> dict[int, str]:
    """img2dataset's parquet output (one file per list of row_ids) under ``out``; row_id -> folder."""
    folder = out / "images" / f"attempt-{attempt}"
    folder.mkdir(parents=True)
    for n, ids in enumerate(shards):
        table = {
            "row_id": ids,
            "key": [f"{i:09d}" for i in ids],
            "status": ["success"] * len(ids),
            "jpg": [served["jpegs"][i] for i in ids],
        }
        pq.write_table(pa.table(table), folder / f"{n:05d}.parquet")
    return {i: folder.name for ids in shards for i in ids}


def test_pixels_top_fraction_scores_each_image_once_over_the_whole_download(
    served: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool pass scores every downloaded image once (kept per shard in _state/post); the cutoff
    is over all of them, not over what the stage before leaves; a resumed command scores nothing;
    a retry that downloads more images scores only those and filters every shard again."""
    calls: list[int] = []
    score = scorers.ClipScorer.__call__

    def counted(self: scorers.ClipScorer, images: list, texts: list) -> np.ndarray:
        calls.append(len(images))
        return score(self, images, texts)

    monkeypatch.setattr(scorers.ClipScorer, "__call__", counted)
    recipe = _recipe([], [{"resolution": {"min_side": 300}}, {"clip_score": {"top_fraction": 0.25}}])
    ids = sorted(served["jpegs"])
    first, later = ids[: len(ids) * 2 // 3], ids[len(ids) * 2 // 3 :]
    out, rows = tmp_path / "dl", served["rows"]
    placed = _place(served, out, 1, [first[::2], first[1::2]])
    post = _post_download_stored(recipe, rows, _status(served, placed), out, 1, 64, False)
    assert sum(calls) == len(first)  # every image scored once, in the pool pass
    files = sorted((out / "_state" / "post").glob("scores-*"))
    assert [p.name for p in files] == ["scores-001-001-00000.parquet", "scores-001-001-00001.parquet"]
    stored = pa.concat_tables([pq.read_table(p) for p in files]).sort_by("row_id")
    assert stored["row_id"].to_pylist() == first
    np.testing.assert_allclose(
        _column(stored, "clip_score")[:8], scorers.clip_scorer()(*_texts(served, first[:8]))
    )
    calls.clear()
    x = _column(stored, "clip_score")
    x = x[~np.isnan(x)]
    pool = post["stages"][1]["top_fraction"]
    assert pool["pool"] == len(x) and pool["cutoff"] == pytest.approx(np.quantile(x, 0.75), rel=1e-12)
    kept = pq.read_table(out / "kept")
    assert 0 < kept.num_rows < len(x) - math.ceil((len(x) - 1) * 0.75)  # resolution dropped some first
    assert pc.min(kept["clip_score"]).as_py() >= np.float32(pool["cutoff"])

    # killed during the second shard: the rerun scores nothing and writes the same files
    before = pq.read_table(out / "kept" / "part-001-00001.parquet")
    (out / "_state" / "post" / "unit-001-00001.json").unlink()
    (out / "kept" / "part-001-00001.parquet").unlink()
    again = _post_download_stored(recipe, rows, _status(served, placed), out, 1, 64, False)
    assert calls == [] and pq.read_table(out / "kept" / "part-001-00001.parquet").equals(before)
    assert [s["dropped"] for s in again["stages"]] == [s["dropped"] for s in post["stages"]]

    # a retry adds images: only they are scored, and the first shards are filtered again
    placed |= _place(served, out, 2, [later])
    after = _post_download_stored(recipe, rows, _status(served, placed), out, 2, 64, False)
    assert sum(calls) == len(later)
    grown = after["stages"][1]["top_fraction"]
    assert grown["pool"] > pool["pool"] and grown["cutoff"] != pool["cutoff"]
    assert pc.min(pq.read_table(out / "kept")["clip_score"]).as_py() >= np.float32(grown["cutoff"])
    assert (out / "kept" / "part-002-00000.parquet").exists()


def _texts(served: dict, ids: list[int]) -> tuple[list[bytes], list[str | None]]:
    texts = served["rows"]["TEXT"].to_pylist()
    return [served["jpegs"][i] for i in ids], [texts[i] for i in ids]


@pytest.fixture(scope="module")
def vit_b32(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A randomly initialised ViT-B-32 as open_clip publishes one (open_clip_config.json with
    model_cfg and preprocess_cfg, fp16 open_clip_model.safetensors; 300 MB, removed after)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("vit-b-32")
    with torch.random.fork_rng():  # the same weights every run, and the session's RNG untouched
        torch.manual_seed(0)
        model = open_clip.create_model("ViT-B-32", pretrained=None)
    preprocess = {"mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD)}
    config = {"model_cfg": open_clip.get_model_config("ViT-B-32"), "preprocess_cfg": preprocess}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, folder / "open_clip_model.safetensors")
    del model, state
    yield folder
    (folder / "open_clip_model.safetensors").unlink()  # pytest keeps the last three temporary roots


def test_a_vit_b32_folder_loads_through_model_and_scores(served: dict, vit_b32: Path, tmp_path: Path) -> None:
    from t2iscope.weights import load_model

    recipe = _recipe([], [{"clip_score": {"min_score": -1.0, "model": str(vit_b32)}}])
    ids = sorted(served["jpegs"])[:8]
    scored = _in_memory(served, recipe, tmp_path / "vit", ids=ids)
    x = _column(scored, "clip_score")
    captioned = np.array([bool((t or "").strip()) for t in scored["TEXT"].to_pylist()])
    assert (
        len(x) == 8
        and captioned.any()
        and np.isfinite(x[captioned]).all()
        and (np.abs(x[captioned]) <= 1).all()
    )
    clip = load_model(vit_b32)
    assert clip.input_size == 224 and clip.model.visual.output_dim == 512  # the folder's, not models/clip


def test_broken_model_folder_stops_download_before_img2dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder passes the recipe check (it is an open_clip folder) but its weights are
    truncated: ``curate download`` loads it before img2dataset and stops with one line."""
    from t2iscope.curate import download
    from t2iscope.paths import models_dir

    clip = tmp_path / "clip"
    clip.mkdir()
    (clip / "open_clip_config.json").write_text((models_dir() / "clip" / "open_clip_config.json").read_text())
    (clip / "open_clip_model.safetensors").write_bytes(b"\0" * 100)
    recipe = _recipe([], [{"clip_score": {"min_score": 0.2, "model": str(clip)}}])
    pq.write_table(laion_table(4), tmp_path / "in.parquet")
    run_recipe(recipe, str(tmp_path / "in.parquet"), tmp_path / "run", progress=False)
    monkeypatch.setattr(download, "_spawn_img2dataset", lambda *a: pytest.fail("img2dataset started"))
    options = download.DownloadOptions(via="http://127.0.0.1:9")
    with pytest.raises(DataError, match=r"clip: cannot load as open_clip"):
        download.download_run(tmp_path / "run", tmp_path / "shards", options)
    assert not (tmp_path / "shards").exists()
