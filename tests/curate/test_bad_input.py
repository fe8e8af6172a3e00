"""Bad input: a clear error naming the file/column, or a counted drop reason; never a silent drop."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from curate_rows import laion_table

from t2iscope.curate.recipe import recipe_from_dict
from t2iscope.curate.run import run_recipe
from t2iscope.errors import DataError

RECIPE = recipe_from_dict({"name": "t", "stages": [{"resolution": {"min_side": 1}}, "unsafe"]}, "t.yaml")


def _run(tmp_path: Path, spec: Path | str, recipe=RECIPE) -> dict:
    return run_recipe(recipe, str(spec), tmp_path / "out", progress=False, overwrite=True)


def _dropped(tmp_path: Path) -> pa.Table:
    return pq.read_table(tmp_path / "out" / "dropped")


def test_corrupt_parquet(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1" + b"\x00garbage" * 100)
    with pytest.raises(DataError, match=r"bad\.parquet: cannot read as parquet"):
        _run(tmp_path, bad)


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.parquet"
    empty.touch()
    with pytest.raises(DataError, match=r"empty\.parquet: file is empty"):
        _run(tmp_path, empty)


def test_missing_required_column(tmp_path: Path, write_shards: Callable[..., Path]) -> None:
    folder = write_shards(laion_table(3).drop_columns(["URL"]))
    with pytest.raises(DataError, match=r"part-0\.parquet: missing required column URL"):
        _run(tmp_path, folder)


def test_missing_stage_column_names_column_and_file(
    tmp_path: Path, write_shards: Callable[..., Path]
) -> None:
    folder = write_shards(laion_table(3).drop_columns(["punsafe"]))
    with pytest.raises(DataError, match=r"part-0\.parquet: stage 'unsafe' needs column punsafe"):
        _run(tmp_path, folder)


def _stage(stats: dict, name: str) -> dict:
    return next(s for s in stats["stages"] if s["stage"] == name)


def test_wrong_type(tmp_path: Path, write_shards: Callable[..., Path]) -> None:
    folder = write_shards(laion_table(3, WIDTH=["wide", "x", "y"]))
    with pytest.raises(DataError, match=r"part-0\.parquet: column WIDTH has type VARCHAR, expected a number"):
        _run(tmp_path, folder)


def test_nan_sizes_are_counted(tmp_path: Path, write_shards: Callable[..., Path]) -> None:
    folder = write_shards(laion_table(4, WIDTH=[512.0, float("nan"), None, 640.0], punsafe=[0.0] * 4))
    stats = _run(tmp_path, folder)
    assert _stage(stats, "resolution")["dropped"] == {"size_missing": 2}
    assert sorted(_dropped(tmp_path).column("reason").to_pylist()) == ["size_missing", "size_missing"]


def test_megabyte_caption_and_non_urls_are_counted(tmp_path: Path, write_shards: Callable[..., Path]) -> None:
    urls = ["https://a.example.com/1.jpg", "javascript:alert(1)", "https://b.example.com/2.jpg", "//x.jpg"]
    texts = ["a dog", "a cat", "z" * 1_000_000, "a cup"]
    folder = write_shards(laion_table(4, URL=urls, TEXT=texts, punsafe=[0.0] * 4))
    stats = _run(tmp_path, folder)
    assert _stage(stats, "validity")["dropped"] == {"text_too_long": 1, "url_invalid": 2}
    assert stats["rows_out"] == 1


def test_invalid_utf8_csv(tmp_path: Path) -> None:
    bad = tmp_path / "rows.csv"
    bad.write_bytes(b"URL,TEXT,WIDTH,HEIGHT,punsafe\nhttps://a.example.com/1.jpg,caf\xe9 \xff,10,10,0.1\n")
    with pytest.raises(DataError, match=r"rows\.csv: cannot read as csv"):
        _run(tmp_path, bad)


def test_csv_tsv_jsonl_and_datacomp_schema(tmp_path: Path) -> None:
    table = laion_table(5, punsafe=[0.1, 0.2, 0.9, 0.3, 0.4])
    (tmp_path / "a.csv").write_text(table.to_pandas().to_csv(index=False))
    (tmp_path / "b.tsv").write_text(table.to_pandas().to_csv(index=False, sep="\t"))
    datacomp = table.rename_columns(
        [
            "url",
            "text",
            "original_width",
            "original_height",
            "pwatermark",
            "punsafe",
            "AESTHETIC_SCORE",
            "uid",
        ]
    )
    (tmp_path / "c.jsonl").write_text(datacomp.to_pandas().to_json(orient="records", lines=True))
    stats = _run(tmp_path, tmp_path / "*.*sv")
    assert (stats["rows_in"], stats["rows_out"]) == (10, 8)
    stats = _run(tmp_path, tmp_path / "c.jsonl")
    assert (stats["rows_in"], stats["rows_out"]) == (5, 4)
    kept = pq.read_table(tmp_path / "out" / "kept")
    assert {"URL", "TEXT", "WIDTH", "HEIGHT", "uid"} <= set(kept.column_names)


def test_fsspec_url(tmp_path: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    with fs.open("/laion/part-0.parquet", "wb") as fh:
        pq.write_table(laion_table(6, punsafe=[0.0] * 6), fh)
    stats = _run(tmp_path, "memory://laion")
    assert stats["rows_in"] == 6 and stats["rows_out"] == 6
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["input"]["files"] == 1


def test_no_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no input files"):
        _run(tmp_path, tmp_path / "nothing-*.parquet")
