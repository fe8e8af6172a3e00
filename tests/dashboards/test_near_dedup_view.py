"""The funnel page on a `curate download` folder: its post-download stages, and near_dedup's example
pairs side by side, images read from img2dataset's shards (a webdataset tar and a parquet shard)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import skimage
from fixture_runs import APP
from PIL import Image
from streamlit.testing.v1 import AppTest

from t2iscope.curate import download
from t2iscope.curate.recipe import recipe_from_dict
from t2iscope.dashboards import data, images

RECIPE = recipe_from_dict(
    {"name": "nd", "stages": [], "post_download": [{"near_dedup": {"by": "phash"}}]}, "nd.yaml"
)
PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg")


def _jpeg(im: Image.Image, side: int) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").resize((side, side)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_download(out: Path) -> dict:
    """A download folder as `curate download` leaves it: rows 0-3 four photos, rows 4-6 copies of
    rows 0, 1 and 3 at another size. Shard 00000 (rows 0-3) is a webdataset tar, shard 00001
    (rows 4-6) a parquet shard with a jpg column."""
    photos = [Image.open(Path(skimage.data_dir) / n) for n in PHOTOS]
    blobs = [_jpeg(im, 128) for im in photos] + [_jpeg(photos[i], 96) for i in (0, 1, 3)]
    n = len(blobs)
    keys = [f"{i // 4:05d}{i % 4:04d}" for i in range(n)]
    attempt = out / "images" / "attempt-1"
    attempt.mkdir(parents=True)
    for shard, rows in ((0, range(4)), (1, range(4, n))):
        meta = {"key": [keys[i] for i in rows], "status": ["success"] * len(rows), "row_id": list(rows)}
        if shard == 1:
            meta["jpg"] = [blobs[i] for i in rows]
        else:
            with tarfile.open(attempt / f"{shard:05d}.tar", "w") as tar:
                for i in rows:
                    info = tarfile.TarInfo(f"{keys[i]}.jpg")
                    info.size = len(blobs[i])
                    tar.addfile(info, io.BytesIO(blobs[i]))
        pq.write_table(pa.table(meta), attempt / f"{shard:05d}.parquet")
    rows = pa.table(
        {
            "URL": [f"https://example.com/{i}.jpg" for i in range(n)],
            "TEXT": [f"photo {i}" for i in range(n)],
            "hash": pa.array(range(n), pa.int64()),
            "row_id": pa.array(range(n), pa.int64()),
        }
    )
    status = pa.table(
        {
            "row_id": rows.column("row_id"),
            "URL": rows.column("URL"),
            "hash": rows.column("hash"),
            "status": ["success"] * n,
            "error_message": pa.nulls(n, pa.string()),
            "attempt": pa.array(np.ones(n), pa.int32()),
            "images_dir": ["attempt-1"] * n,
            "key": keys,
        }
    )
    pq.write_table(status, out / "status.parquet")
    post = download.post_download(
        RECIPE, rows, status, {("attempt-1", k): b for k, b in zip(keys, blobs, strict=True)}, out
    )
    stats = {"rows": n, "success": n, "failed": 0, "kept": post["rows_out"], "post_download": post}
    (out / "stats.json").write_text(json.dumps(stats))
    return stats


@pytest.fixture
def downloaded(tmp_path: Path) -> Path:
    make_download(tmp_path / "runs" / "dl")
    return tmp_path / "runs"


def test_pairs_are_placed_in_their_shards(downloaded: Path) -> None:
    pairs = data.near_duplicates(str(downloaded / "dl"))
    assert pairs[["row_id", "duplicate_of", "by"]].values.tolist() == [
        [4, 0, "phash"],
        [5, 1, "phash"],
        [6, 3, "phash"],
    ]
    attempt = downloaded / "dl" / "images" / "attempt-1"
    assert set(pairs["removed_shard"]) == {str(attempt / "00001.parquet")}  # parquet format
    assert set(pairs["kept_shard"]) == {str(attempt / "00000.parquet")}  # beside its tar
    for shard, key in [
        *zip(pairs["removed_shard"], pairs["removed_key"], strict=True),
        *zip(pairs["kept_shard"], pairs["kept_key"], strict=True),
    ]:
        assert Image.open(io.BytesIO(images.stored_image(shard, key))).format == "PNG"
    assert images.stored_image(str(attempt / "00000.parquet"), "000099999") is None


def test_funnel_shows_the_download_s_stages_and_pairs(downloaded: Path, use_runs) -> None:
    use_runs(downloaded)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("views/funnel.py").run()
    assert not at.exception and not at.error
    funnel = at.dataframe[0].value
    assert funnel[["stage", "rows_in", "rows_out"]].values.tolist() == [["near_dedup", 7, 4]]
    assert len(at.image) == 6  # three pairs, side by side
    captions = [c for image in at.image for c in image.captions]
    pairs = data.near_duplicates(str(downloaded / "dl"))
    expected = []
    for pair in pairs.itertuples():
        expected += [
            f"`row {pair.row_id} removed (phash, {pair.distance:g} bits apart)`",
            f"`row {pair.duplicate_of} kept`",
        ]
    assert captions == expected  # removed, then the kept image it repeats, pair by pair


def test_an_image_outside_the_runs_folder_is_a_placeholder(downloaded: Path, use_runs) -> None:
    """status.parquet names the folder of each row's image; one that leaves the runs folder is not read."""
    status = downloaded / "dl" / "status.parquet"
    table = pq.read_table(status)
    outside = [
        "../../../elsewhere" if i == 4 else d for i, d in enumerate(table.column("images_dir").to_pylist())
    ]
    pq.write_table(
        table.set_column(table.column_names.index("images_dir"), "images_dir", pa.array(outside)), status
    )
    pairs = data.near_duplicates(str(downloaded / "dl"), str(downloaded))
    assert pairs.loc[pairs["row_id"] == 4, "removed_shard"].isna().all()
    use_runs(downloaded)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("views/funnel.py").run()
    assert not at.exception and not at.error and len(at.image) == 5
    assert any("no readable image: row 4 removed" in c.value for c in at.caption)
