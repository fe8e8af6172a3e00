"""World folders: layout, the truth table joining every row, byte-for-byte determinism, CLI errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from t2iscope.cli import main
from t2iscope.curate.world.layout import image_path, read_table
from t2iscope.curate.world.make import make_world
from t2iscope.curate.world.render import render_scene
from t2iscope.curate.world.sample import METADATA_COLUMNS
from t2iscope.errors import ConfigError
from t2iscope.locks import LOCK_NAME

TRUTH_CONTRACT = (
    "hash",
    "kind",
    "color",
    "background",
    "culture",
    "legs",
    "legs_expected",
    "watermark",
    "aesthetic",
    "unsafe",
    "caption_lang",
    "mentions_culture",
    "true_width",
    "true_height",
    "host",
    "domain",
    "http_failure",
)


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != LOCK_NAME  # the lock names its owner's pid
    }


def test_layout_follows_the_contract(world_dir: Path) -> None:
    assert sorted(p.name for p in (world_dir / "metadata").iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    assert sorted(p.name for p in (world_dir / "truth").iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    assert tuple(pq.read_schema(world_dir / "metadata" / "part-00001.parquet").names) == METADATA_COLUMNS
    truth_cols = pq.read_schema(world_dir / "truth" / "part-00000.parquet").names
    assert set(TRUTH_CONTRACT) <= set(truth_cols)
    leftovers = [p for p in world_dir.rglob("*") if p.name.startswith(".") and p.name != LOCK_NAME]
    assert not leftovers  # no temp files


def test_truth_joins_every_metadata_row_and_every_row_has_its_image(world_dir: Path) -> None:
    md = read_table(world_dir, "metadata").to_pydict()
    truth = read_table(world_dir, "truth").to_pydict()
    assert len(md["hash"]) == 400
    assert len(set(md["hash"])) == 400 and set(md["hash"]) == set(truth["hash"])
    images = sorted((world_dir / "images").rglob("*.png"))
    assert len(images) == 400
    expected = {image_path(world_dir, s, h) for s, h in zip(truth["shard"], truth["hash"], strict=True)}
    assert set(images) == expected


def test_stored_image_is_the_rendered_truth(world_dir: Path) -> None:
    from PIL import Image

    row = read_table(world_dir, "truth").slice(250, 1).to_pylist()[0]
    with Image.open(image_path(world_dir, row["shard"], row["hash"])) as im:
        assert im.size == (64, 64)
        assert im.convert("RGB").tobytes() == render_scene(row).tobytes()


def test_world_json_records_the_realised_mix(world_dir: Path) -> None:
    info = json.loads((world_dir / "world.json").read_text())
    assert info["rows"] == 400 and info["seed"] == 0 and info["shards"] == 2 and info["images"]
    md = read_table(world_dir, "metadata").to_pydict()
    en = float(np.mean(np.array(md["LANGUAGE"]) == "en"))
    assert info["realised"]["LANGUAGE"]["en"] == pytest.approx(en, abs=1e-5)
    top = info["realised"]["domains"]["top20"][0]
    truth_domains = read_table(world_dir, "truth", ["domain"]).column("domain").to_pylist()
    assert top["share"] == pytest.approx(truth_domains.count(top["domain"]) / 400, abs=1e-5)


def test_same_seed_same_bytes_different_seed_differs(tmp_path: Path) -> None:
    make_world(tmp_path / "a", 60, seed=7, shard_size=25, progress=False)
    make_world(tmp_path / "b", 60, seed=7, shard_size=25, progress=False)
    make_world(tmp_path / "c", 60, seed=8, shard_size=25, progress=False)
    a, b, c = (digests(tmp_path / n) for n in "abc")
    assert len(a) == 3 + 3 + 60 + 1
    assert a == b
    assert a["metadata/part-00000.parquet"] != c["metadata/part-00000.parquet"]


def test_metadata_only_world_matches_the_full_one(tmp_path: Path) -> None:
    make_world(tmp_path / "full", 30, seed=1, progress=False)
    make_world(tmp_path / "meta", 30, seed=1, images=False, progress=False)
    assert not (tmp_path / "meta" / "images").exists()
    full, meta = digests(tmp_path / "full"), digests(tmp_path / "meta")
    assert full["truth/part-00000.parquet"] == meta["truth/part-00000.parquet"]
    assert full["metadata/part-00000.parquet"] == meta["metadata/part-00000.parquet"]


def test_overwrite_replaces_a_world_but_never_another_folder(tmp_path: Path) -> None:
    make_world(tmp_path / "w", 10, seed=1, images=True, progress=False)
    make_world(tmp_path / "w", 5, seed=2, images=False, overwrite=True, progress=False)
    assert not (tmp_path / "w" / "images").exists()
    assert read_table(tmp_path / "w", "truth").num_rows == 5
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a world folder"):
        make_world(other, 5, overwrite=True, progress=False)
    assert (other / "notes.txt").read_text() == "keep me"


def test_cli_makes_a_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "w"
    assert main(["world", "make", "--out", str(out), "--rows", "20", "--seed", "3", "--no-images"]) == 0
    assert "wrote 20 rows" in capsys.readouterr().out
    assert read_table(out, "metadata").num_rows == 20


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--rows", "0"], "'--rows': 0 is not in the range 1<=x<=1000000000"),
        (["--rows", "-5"], "'--rows': -5 is not in the range"),
        (["--rows", "99999999999999999"], "'--rows': 99999999999999999 is not in the range"),
        (["--rows", "5", "--seed", "-1"], "--seed"),
        (["--rows", "5", "--seed", "abc"], "--seed"),
        (["--rows", "ten"], "--rows"),
        (["--rows", "5", "--shard-size", "0"], "--shard-size"),
        ([], "--rows"),
    ],
)
def test_cli_bad_options_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    assert main(["world", "make", "--out", str(tmp_path / "w"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("t2iscope: error:") and "\n" not in err and needle in err
    assert not (tmp_path / "w").exists()


def test_api_bounds_rows(tmp_path: Path) -> None:
    for rows in (0, 10**9 + 1):
        with pytest.raises(ConfigError, match=f"--rows must be from 1 to 1000000000, got {rows}"):
            make_world(tmp_path / "w", rows, seed=0, images=False, progress=False)
    assert not (tmp_path / "w").exists()


def test_serve_port_out_of_range_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["world", "serve", str(tmp_path), "--port", "70000"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'--port': 70000 is not in the range 0<=x<=65535" in err and "\n" not in err


def test_cli_refuses_non_empty_out_without_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "w"
    out.mkdir()
    (out / "x").write_text("x")
    assert main(["world", "make", "--out", str(out), "--rows", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--overwrite" in err and str(out) in err and "\n" not in err
    assert sorted(p.name for p in out.iterdir()) == ["x"]
