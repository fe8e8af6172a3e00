"""near_dedup: perceptual-hash and CLIP near-duplicate removal after download.

Measured on real photos (scikit-image's sample images, shipped with the package) for ``phash`` and
on held-out world renders (seed 1; the embedded CLIP trained on seed 0) for ``semantic``: originals
come first, then edited copies (re-encoded, resized, cropped, blurred...) in shuffled order. Every
copy must be removed naming its own original (recall per edit, printed with -s), and no original
may go (precision). Then: verdicts do not depend on batching, a resumed download (killed after a
unit) gives an uninterrupted one's ``duplicate_of`` columns, and bad parameters are one line each.
"""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import imagehash
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import skimage
from PIL import Image, ImageEnhance, ImageFilter

from t2iscope.cli import main
from t2iscope.curate import download
from t2iscope.curate.download import preload_models
from t2iscope.curate.operators import OPERATORS, PIXELS, StageContext, StageResult, load_all
from t2iscope.curate.operators.dedup import restore_keys, save_keys
from t2iscope.curate.operators.near_dedup import FIT_PER_CLUSTER
from t2iscope.curate.recipe import Recipe, recipe_from_dict
from t2iscope.curate.world import layout
from t2iscope.errors import ConfigError, DataError
from t2iscope.paths import models_dir

load_all()
NEAR = OPERATORS.get("near_dedup")
PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png",
    "coffee.png", "coins.png", "color.png", "grass.png", "gravel.png", "horse.png",
    "hubble_deep_field.jpg", "ihc.png", "logo.png", "moon.png", "motorcycle_left.png", "page.png",
    "phantom.png", "retina.jpg", "rocket.jpg", "text.png",
)  # fmt: skip
QUARTERED = ("hubble_deep_field.jpg", "retina.jpg", "coffee.png", "astronaut.png", "motorcycle_left.png")


def jpeg(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def crop(im: Image.Image, share: float) -> Image.Image:
    """``im`` less ``share`` of its width and height on every side."""
    dx, dy = max(1, round(im.width * share)), max(1, round(im.height * share))
    return im.crop((dx, dy, im.width - dx, im.height - dy))


Edit = Callable[[Image.Image, bytes], bytes]  # (decoded original, its bytes) -> the copy's bytes
EDITS: dict[str, Edit] = {
    "exact copy": lambda im, raw: raw,
    "jpeg q50": lambda im, raw: jpeg(im, 50),
    "half size": lambda im, raw: jpeg(im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)),
    "squashed square": lambda im, raw: jpeg(im.resize((256, 256), Image.Resampling.BICUBIC)),
    "crop 2%": lambda im, raw: jpeg(crop(im, 0.02)),
    "crop 3%": lambda im, raw: jpeg(crop(im, 0.03)),
    "blur": lambda im, raw: jpeg(im.filter(ImageFilter.GaussianBlur(1.5))),
    "15% brighter": lambda im, raw: jpeg(ImageEnhance.Brightness(im).enhance(1.15)),
}


def photos() -> list[bytes]:
    """42 distinct photos as JPEG: scikit-image's samples and the quarters of five large ones."""
    found = []
    for name in PHOTOS:
        im = Image.open(Path(skimage.data_dir) / name).convert("RGB")
        found.append(im)
        if name in QUARTERED:
            w, h = im.width // 2, im.height // 2
            found += [im.crop((x, y, x + w, y + h)) for x in (0, w) for y in (0, h)]
    return [jpeg(im, 95) for im in found]


def edited_set(originals: list[bytes], edits: list[str]) -> tuple[pa.Table, list[int | None], list[str]]:
    """Originals (row ids 0..n-1), then every edit of every original, shuffled (seed 0): the table,
    each row's original (None for the originals) and its edit."""
    copies = [
        (i, edit, EDITS[edit](Image.open(io.BytesIO(raw)), raw))
        for i, raw in enumerate(originals)
        for edit in edits
    ]
    order = np.random.default_rng(0).permutation(len(copies))
    copies = [copies[j] for j in order]
    blobs = originals + [c[2] for c in copies]
    table = pa.table({"row_id": pa.array(np.arange(len(blobs)), pa.int64()), "image": pa.array(blobs)})
    return (
        table,
        [None] * len(originals) + [c[0] for c in copies],
        ["original"] * len(originals) + [c[1] for c in copies],
    )


def run_stage(table: pa.Table, batch: int | None = None, **params: object) -> tuple[StageResult, list]:
    """The stage over ``table`` in batches of ``batch`` rows (one when None), as an engine calls it:
    one context throughout. Returns the last result and every row's (keep, reason, duplicate_of,
    duplicate_distance)."""
    ctx = StageContext("test", PIXELS)
    rows: list = []
    size = batch or table.num_rows
    for start in range(0, table.num_rows, size):
        result = NEAR.fn(table.slice(start, size), ctx, **params)
        rows += zip(
            result.keep.tolist(),
            result.reason.to_pylist(),
            result.columns["duplicate_of"].to_pylist(),
            result.columns["duplicate_distance"].to_pylist(),
            strict=True,
        )
    return result, rows


def measure(rows: list, original: list[int | None], edit: list[str]) -> dict[str, float]:
    """Precision (of the rows removed, the copies that name a row of their own photo: its original,
    or a copy of it kept because too far from the original) and recall per edit and overall;
    asserts every row removed names the row it duplicates."""
    group = [i if o is None else o for i, o in enumerate(original)]
    removed = [(i, r) for i, r in enumerate(rows) if not r[0]]
    for _, (_, reason, dup_of, distance) in removed:
        assert reason.startswith("near_duplicate_") and dup_of is not None and distance is not None
    hits = {i for i, r in removed if original[i] is not None and group[r[2]] == group[i]}
    figures = {"precision": len(hits) / max(len(removed), 1)}
    for name in dict.fromkeys(e for e in edit if e != "original"):
        mine = {i for i, e in enumerate(edit) if e == name}
        figures[name] = len(hits & mine) / len(mine)
    figures["recall"] = len(hits) / sum(o is not None for o in original)
    figures["named the original"] = sum(rows[i][2] == original[i] for i in hits) / max(len(hits), 1)
    print({k: round(v, 3) for k, v in figures.items()})
    return figures


# -- phash --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo_set() -> tuple[pa.Table, list[int | None], list[str]]:
    return edited_set(photos(), list(EDITS))


def test_phash_removes_edited_copies_of_photos_and_names_them(photo_set: tuple) -> None:
    table, original, edit = photo_set
    result, rows = run_stage(table, by="phash")
    figures = measure(rows, original, edit)
    # measured (max_distance 8, 42 photos): precision 1.0; recall 1.0 for the exact copies,
    # re-encodes, resizes and blur, 0.98 brighter, 0.95 for 2% crops, 0.69 for 3% crops
    assert figures["precision"] == 1.0 and figures["named the original"] >= 0.95
    for name in ("exact copy", "jpeg q50", "half size", "squashed square", "blur"):
        assert figures[name] == 1.0, name
    assert figures["15% brighter"] >= 0.95 and figures["crop 2%"] >= 0.9 and figures["crop 3%"] >= 0.6
    assert all(r[0] for r in rows[: original.count(None)])  # every original stays
    examples = result.stats["examples"]
    assert len(examples) == 12
    for row_id, pair in examples.items():
        assert rows[int(row_id)][2:] == (pair["duplicate_of"], pair["distance"])


@pytest.mark.parametrize("max_distance", [None, 64])  # the default, and every row a copy of row 0
def test_phash_distances_are_imagehash_s(photo_set: tuple, max_distance: int | None) -> None:
    table = photo_set[0]
    _, rows = run_stage(table, by="phash", max_distance=max_distance)
    blobs = table.column("image").to_pylist()

    def phash(i: int) -> imagehash.ImageHash:
        return imagehash.phash(Image.open(io.BytesIO(blobs[i])))

    removed = [(i, r[2], r[3]) for i, r in enumerate(rows) if not r[0]]
    assert len(removed) >= 300 and (max_distance is None or len(removed) == len(rows) - 1)
    for i, dup_of, distance in removed:
        assert distance == phash(i) - phash(dup_of), i


def test_phash_keeps_distinct_photos_and_the_earliest_of_equals() -> None:
    originals = photos()
    _, rows = run_stage(pa.table({"row_id": pa.array(range(len(originals)), pa.int64()), "image": originals}))
    assert all(r[0] for r in rows)
    twice = pa.table({"row_id": pa.array([5, 6, 7], pa.int64()), "image": [originals[0]] * 3})
    _, rows = run_stage(twice)
    assert rows == [
        (True, None, None, None),
        (False, "near_duplicate_phash", 5, 0.0),
        (False, "near_duplicate_phash", 5, 0.0),
    ]


def test_verdicts_do_not_depend_on_batches(photo_set: tuple) -> None:
    table = photo_set[0]
    whole = run_stage(table, by="phash")[1]
    assert run_stage(table, batch=7, by="phash")[1] == whole
    assert run_stage(table, batch=1, by="phash")[1] == whole


def test_unreadable_images_are_dropped_with_their_own_reason() -> None:
    raw = photos()[0]
    table = pa.table(
        {
            "row_id": pa.array([0, 1, 2, 3], pa.int64()),
            "image": pa.array([b"not an image", None, raw, raw[:200]]),
        }
    )
    for by in ("phash", "semantic"):
        result = run_stage(table, by=by)[0]
        assert result.keep.tolist() == [False, False, True, False]
        assert result.reason.to_pylist() == ["image_unreadable", "image_unreadable", None, "image_unreadable"]
        assert result.columns["duplicate_of"].null_count == 4


# -- semantic -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def renders(heldout: Path) -> list[bytes]:
    """One served JPEG (long side 256) per distinct scene (kind, colour, background) of the world."""
    from t2iscope.curate.world.serve import WorldServer

    server = WorldServer(heldout, port=0, max_side=256)
    server.server_close()  # only its JPEG encoder is needed
    scenes: dict[tuple, dict] = {}
    for r in layout.read_table(heldout, "truth").to_pylist():
        scenes.setdefault((r["kind"], r["color"], r["background"]), r)
    return [server.jpeg(r) for r in scenes.values()]


SEMANTIC_EDITS = ["jpeg q50", "half size", "crop 3%", "blur"]


def test_semantic_removes_edited_copies_of_renders_and_names_them(renders: list[bytes]) -> None:
    table, original, edit = edited_set(renders, SEMANTIC_EDITS)
    _, rows = run_stage(table, by="semantic")
    figures = measure(rows, original, edit)
    # measured (min_similarity 0.95, 172 scenes): precision 1.0; recall jpeg 1.0, half 0.99,
    # crop 0.99, blur 0.98
    assert figures["precision"] == 1.0 and figures["named the original"] >= 0.95
    assert all(figures[name] >= 0.95 for name in SEMANTIC_EDITS)
    # duplicate_distance is the cosine distance: 0 identical, at most 1 - min_similarity
    assert all(0 <= r[3] <= 0.05 + 1e-6 for r in rows if r[2] is not None)


def test_semantic_with_the_tiny_clip_misses_brighter_copies(renders: list[bytes]) -> None:
    """The embedded CLIP sees colour: 15% brighter copies are far from their originals (found 1 of
    172) and close to brighter copies of other scenes (about 50 named one). Originals all stay."""
    table, original, edit = edited_set(renders, ["15% brighter"])
    _, rows = run_stage(table, by="semantic")
    figures = measure(rows, original, edit)
    assert figures["recall"] < 0.1 and all(r[0] for r in rows[: len(renders)])


def test_semantic_with_clusters_keeps_precision_and_batch_independence(renders: list[bytes]) -> None:
    """With 4 clusters the k-means fit falls after 64 kept renders, among the originals; copies are
    then compared within their cluster only. Batches of 40 give the same verdicts."""
    table, original, edit = edited_set(renders, SEMANTIC_EDITS)
    _, rows = run_stage(table, by="semantic", clusters=4)
    figures = measure(rows, original, edit)
    assert figures["precision"] == 1.0 and figures["recall"] >= 0.9
    batched = run_stage(table, batch=40, by="semantic", clusters=4)[1]
    assert [r[:3] for r in batched] == [r[:3] for r in rows]
    assert np.allclose([r[3] or 0 for r in batched], [r[3] or 0 for r in rows], atol=1e-5)


# -- resume ---------------------------------------------------------------------------------------------


def _tables(world: Path, n: int) -> tuple[pa.Table, pa.Table, dict[tuple[str, str], bytes]]:
    """``rows``, ``status`` and images of ``n`` served world rows, as `curate download` hands them over."""
    from t2iscope.curate.world.serve import WorldServer

    server = WorldServer(world, port=0, max_side=64)
    server.server_close()
    truth = {r["hash"]: r for r in layout.read_table(world, "truth").to_pylist()}
    meta = layout.read_table(world, "metadata")
    served = [truth[h] for h in meta.column("hash").to_pylist()]
    meta = meta.filter(pa.array([r["http_failure"] == "ok" and not r["noai"] for r in served])).slice(0, n)
    rows = meta.append_column("row_id", pa.array(np.arange(n), pa.int64()))
    keys = [f"{i:09d}" for i in range(n)]
    status = pa.table(
        {
            "row_id": rows.column("row_id"),
            "status": ["success"] * n,
            "error_message": pa.nulls(n, pa.string()),
            "attempt": pa.array(np.ones(n), pa.int32()),
            "images_dir": ["attempt-1"] * n,
            "key": keys,
        }
    )
    images = {
        ("attempt-1", k): server.jpeg(truth[h])
        for k, h in zip(keys, rows.column("hash").to_pylist(), strict=True)
    }
    return rows, status, images


def _post(
    recipe: Recipe,
    tables: tuple[pa.Table, pa.Table, dict[tuple[str, str], bytes]],
    out: Path,
    upto: int | None = None,
) -> dict:
    """`curate download`'s post-download summary (but timings) over 6 equal units in batches of 3,
    resuming from ``out/_state``; stops after unit ``upto`` as a kill would."""
    rows, status, images = tables
    units = 6
    ids = status.column("row_id")
    size = -(-len(ids) // units)
    made = [
        download._MemoryUnit(
            f"001-{u:05d}",
            "attempt-1",
            status.select(["row_id", "key"]).slice(u * size, size),
            {k: b for (_, k), b in images.items()},
        )
        for u in range(units)
    ]
    state = out / "_state" / "post"
    state.mkdir(parents=True, exist_ok=True)
    summary = download._Post(recipe, rows, status, out, state).run(made[:upto], 3, progress=False)
    for stage in summary["stages"]:
        del stage["seconds"]
    return summary


@pytest.mark.parametrize("by", ["phash", "semantic"])
def test_resumed_post_download_names_the_same_duplicates(by: str, heldout: Path, tmp_path: Path) -> None:
    """Killed after each unit in turn, the resumed post-download keeps, drops and names exactly what
    an uninterrupted one does: the checkpoint carries kept signatures, clusters and centroids."""
    params = {"by": by} if by == "phash" else {"by": by, "clusters": 2}  # the fit falls in unit 2 or 3
    recipe = recipe_from_dict({"name": "nd", "stages": [], "post_download": [{"near_dedup": params}]}, "nd")
    tables = _tables(heldout, 96)
    whole = _post(recipe, tables, tmp_path / "whole")
    kept, dropped = (pq.read_table(tmp_path / "whole" / f).sort_by("row_id") for f in ("kept", "dropped"))
    assert kept.num_rows > 2 * FIT_PER_CLUSTER  # past the fit
    later = [r for r in dropped.to_pylist() if r["duplicate_of"] // 16 < r["row_id"] // 16]
    assert len(later) >= 3  # duplicates of images kept in an earlier unit
    assert len(whole["stages"][0]["examples"]) == min(12, dropped.num_rows)
    for kill in range(1, 6):
        out = tmp_path / f"killed-{kill}"
        _post(recipe, tables, out, upto=kill)
        assert _post(recipe, tables, out) == whole
        for folder, expected in (("kept", kept), ("dropped", dropped)):
            assert pq.read_table(out / folder).sort_by("row_id").equals(expected), (kill, folder)


def test_checkpoint_round_trip_through_save_and_restore(renders: list[bytes], tmp_path: Path) -> None:
    """save_keys/restore_keys carry a stage's memory: the restored stage judges new rows as the first."""
    table, _, _ = edited_set(renders, ["crop 3%"])
    first, second = table.slice(0, 100), table.slice(100)
    ctx = StageContext("test", PIXELS)
    NEAR.fn(first, ctx, by="semantic", clusters=2)
    save_keys([ctx], [0], tmp_path, "u1")
    fresh = StageContext("test", PIXELS)
    restore_keys([fresh], [0], tmp_path, "u1")
    a, b = NEAR.fn(second, ctx, by="semantic", clusters=2), NEAR.fn(second, fresh, by="semantic", clusters=2)
    assert a.keep.tolist() == b.keep.tolist() and a.columns["duplicate_of"].equals(b.columns["duplicate_of"])
    assert not all(a.keep)


# -- a real download, killed after its first unit ----------------------------------------------------------


@pytest.fixture(scope="module")
def server(world_dir: Path) -> Iterator[object]:
    from t2iscope.curate.world.serve import serve_world

    served = serve_world(world_dir, rates={})  # every URL answers: two downloads agree exactly
    yield served
    served.stop()


def _args(run: Path, out: Path, url: str) -> list[str]:
    return [
        "curate", "download", str(run), "--out", str(out), "--via", url,
        "--threads", "2", "--image-size", "64", "--timeout", "30", "--rows-per-shard", "12",
    ]  # fmt: skip


def test_download_killed_after_its_first_unit_resumes_to_the_same_duplicates(
    world_dir: Path, server: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows 0-23 show 24 scenes, rows 24-47 the same scenes again (other renders): 4 shards of 12."""
    recipe = {
        "name": "nd",
        "stages": [],
        "post_download": [{"near_dedup": {"by": "semantic", "clusters": 2}}],
    }
    meta = pq.read_table(world_dir / "metadata")
    scenes: dict[tuple, list[int]] = {}
    for r in pq.read_table(world_dir / "truth").to_pylist():
        if r["http_failure"] == "ok" and not r["noai"]:
            scenes.setdefault((r["kind"], r["color"], r["background"]), []).append(r["hash"])
    twice = [h[:2] for h in scenes.values() if len(h) >= 2][:24]
    position = {h: i for i, h in enumerate(meta.column("hash").to_pylist())}
    rows = meta.take([position[h[0]] for h in twice] + [position[h[1]] for h in twice])
    run = tmp_path / "run"
    (run / "kept").mkdir(parents=True)
    pq.write_table(rows, run / "kept" / "part-00000.parquet")
    (run / "recipe.resolved.yaml").write_text(recipe_from_dict(recipe, "nd").to_yaml())
    url = server.url  # type: ignore[attr-defined]
    assert main(_args(run, tmp_path / "whole", url)) == 0
    printed = capsys.readouterr().out.splitlines()
    code = "\n".join(
        [
            "import os, signal",
            "from t2iscope.curate import download",
            "from t2iscope.cli import main",
            textwrap.dedent(
                """
                real = download._Post._unit
                def unit(self, *a, **k):
                    if list((self.out / "_state" / "post").glob("unit-*.json")):
                        os.kill(os.getpid(), signal.SIGKILL)
                    return real(self, *a, **k)
                download._Post._unit = unit
                """
            ),
            f"main({_args(run, tmp_path / 'killed', url)!r})",
        ]
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert len(list((tmp_path / "killed" / "_state" / "post").glob("unit-*.json"))) == 1
    assert main(_args(run, tmp_path / "killed", url)) == 0

    def verdicts(out: Path) -> list[tuple]:
        dropped = pq.read_table(out / "dropped").sort_by("row_id")
        return list(
            zip(*(dropped.column(c).to_pylist() for c in ("row_id", "reason", "duplicate_of")), strict=True)
        )

    whole = verdicts(tmp_path / "whole")
    assert len(whole) >= 5 and {r[1] for r in whole} == {"near_duplicate_semantic"}
    # the command prints each post-download stage's line, as `curate run` does
    assert f"  near_dedup   {48:>10} -> {48 - len(whole):<10} near_duplicate_semantic {len(whole)}" in printed
    assert all(row_id >= 24 and dup_of < 24 for row_id, _, dup_of in whole)  # earlier units' scenes
    assert verdicts(tmp_path / "killed") == whole
    stats = [
        json.loads((tmp_path / o / "stats.json").read_text())["post_download"] for o in ("whole", "killed")
    ]
    assert stats[0]["stages"][0]["examples"] == stats[1]["stages"][0]["examples"]


# -- parameters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"by": "phash", "min_similarity": 0.9},
            "min_similarity applies to by: semantic only, not by: phash",
        ),
        ({"clusters": 8, "model": "x"}, "clusters, model apply to by: semantic only, not by: phash"),
        ({"by": "semantic", "max_distance": 4}, "max_distance applies to by: phash only, not by: semantic"),
        ({"by": "phash", "max_distance": 65}, "max_distance"),
        ({"by": "phash", "max_distance": 4.0}, "max_distance"),
        ({"by": "semantic", "min_similarity": 0}, "min_similarity"),
        ({"by": "semantic", "clusters": 0}, "clusters"),
        ({"by": "pixels"}, "by"),
    ],
)
def test_bad_parameters_are_one_line_at_recipe_time(params: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        recipe_from_dict({"name": "r", "stages": [], "post_download": [{"near_dedup": params}]}, "r.yaml")
    text = str(err.value)
    assert text.startswith("r.yaml: post_download 1 (near_dedup)") and message in text and "\n" not in text


def test_near_dedup_runs_only_after_download() -> None:
    with pytest.raises(ConfigError, match=r"runs only on pixels, not under stages"):
        recipe_from_dict({"name": "r", "stages": [{"near_dedup": {}}]}, "r.yaml")


@pytest.mark.parametrize(
    ("folder", "message"),
    [
        ("nope", "no such folder"),
        ("aesthetic", "not an open_clip folder (open_clip_config.json and its weights)"),
    ],
)
def test_a_model_that_is_no_open_clip_folder_is_refused_at_recipe_time(folder: str, message: str) -> None:
    model = str(models_dir() / folder)
    params = {"by": "semantic", "model": model}
    with pytest.raises(ConfigError) as err:
        recipe_from_dict({"name": "r", "stages": [], "post_download": [{"near_dedup": params}]}, "r.yaml")
    assert str(err.value) == f"r.yaml: post_download 1 (near_dedup): model: {model}: {message}"


def test_broken_weights_stop_the_download_before_any_work(tmp_path: Path) -> None:
    """An open_clip folder whose weights do not load: `curate download` preloads the stage's model
    (preload_models) before img2dataset starts, and stops there with one line."""
    shutil.copy(models_dir() / "clip" / "open_clip_config.json", tmp_path)
    (tmp_path / "open_clip_model.safetensors").write_bytes(b"not weights")
    params = {"by": "semantic", "model": str(tmp_path)}
    recipe = recipe_from_dict({"name": "r", "stages": [], "post_download": [{"near_dedup": params}]}, "r")
    with pytest.raises(DataError, match=f"^{tmp_path}: cannot load as open_clip"):
        preload_models(recipe)
