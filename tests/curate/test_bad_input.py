"""Bad input: a clear error naming the file/column, or a counted drop reason; never a silent drop."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from curate_rows import laion_table

from t2iscope.cli import main
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


# -- found before the run folder exists (issue 14, items 12-13) -------------------------------------


def _cli(tmp_path: Path, spec: Path, stages: list, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({"stages": stages}))
    code = main(["curate", "run", str(recipe), "--input", str(spec), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    lines = [e for e in err.splitlines() if e.startswith("t2iscope: error:")]
    return code, lines[0] if len(lines) == 1 and "Traceback" not in err else err


@pytest.mark.parametrize("fmt", ["tsv", "csv"])
def test_a_row_with_an_extra_field_names_file_and_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    sep = "\t" if fmt == "tsv" else ","
    lines = laion_table(6).to_pandas().to_csv(index=False, sep=sep).splitlines()
    lines[3] += f"{sep}extra"  # data row 3, line 4
    path = tmp_path / f"rows.{fmt}"
    path.write_text("\n".join(lines) + "\n")
    code, line = _cli(tmp_path, path, ["unsafe"], capsys)
    assert code == 1
    assert line == f"t2iscope: error: {path}: row 3 (line 4) has 9 fields, the header has 8"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("drop", "extra", "stages", "needle"),
    [
        ("URL", {}, ["unsafe"], "missing required column URL"),
        (
            "punsafe",
            {},
            [{"resolution": {"min_side": 1}}, "language", "unsafe"],
            "stage 'unsafe' needs column punsafe",
        ),
        (None, {"LANGUAGE": list(range(6))}, ["unsafe"], "column LANGUAGE has type BIGINT, expected a text"),
        (
            None,
            {"stage": ["a"] * 6, "input_stage": ["b"] * 6},
            ["unsafe"],
            "column stage is renamed input_stage",
        ),
    ],
)
def test_schema_problems_of_any_shard_stop_the_run_before_its_folder_exists(
    tmp_path: Path,
    write_shards: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    drop: str | None,
    extra: dict,
    stages: list,
    needle: str,
) -> None:
    bad = laion_table(6, **extra)
    folder = write_shards(laion_table(6), bad.drop_columns([drop]) if drop else bad)
    code, line = _cli(tmp_path, folder, stages, capsys)
    assert code == 1 and line.startswith(f"t2iscope: error: {folder / 'part-1.parquet'}: ") and needle in line
    assert not (tmp_path / "out").exists()


RENAMED = recipe_from_dict({"name": "t", "stages": [{"resolution": {"min_side": 600}}, "unsafe"]}, "t.yaml")
RENAMED_MIXED = recipe_from_dict(
    {"name": "m", "stages": [{"resolution": {"min_side": 600}}, {"language": {"keep": ["en"]}}, "unsafe"]},
    "m.yaml",
)


@pytest.mark.parametrize("mode", ["full", "keys", "none"])
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("recipe", [RENAMED, RENAMED_MIXED], ids=["all_sql", "mixed"])
def test_input_columns_named_stage_or_reason_are_kept_as_input_stage(
    tmp_path: Path, recipe, fmt: str, mode: str
) -> None:
    """A previous run's dropped rows fed back in: their verdict survives beside the new one."""
    table = laion_table(12, stage=[f"old{i}" for i in range(12)], Reason=[f"why{i}" for i in range(12)])
    path = tmp_path / f"in.{fmt}"
    if fmt == "csv":
        table.to_pandas().to_csv(path, index=False)
    else:
        pq.write_table(table, path)
    stats = _run(tmp_path, path, dataclasses.replace(recipe, dropped=mode))
    kept = pq.read_table(tmp_path / "out" / "kept")
    assert 0 < kept.num_rows < 12 and stats["rows_out"] == kept.num_rows
    assert {"input_stage", "input_Reason"} <= set(kept.column_names) and "stage" not in kept.column_names
    was = dict(zip(table.column("hash").to_pylist(), table.column("stage").to_pylist(), strict=True))
    assert kept.column("input_stage").to_pylist() == [was[h] for h in kept.column("hash").to_pylist()]
    if mode != "none":
        dropped = _dropped(tmp_path)
        assert dropped.num_rows == 12 - kept.num_rows
        assert set(dropped.column("stage").to_pylist()) <= {"resolution", "validity", "language", "unsafe"}
        assert ("input_stage" in dropped.column_names) == (mode == "full")


def test_a_lang_column_of_integers_meets_the_language_stage(
    tmp_path: Path, write_shards: Callable[..., Path]
) -> None:
    folder = write_shards(laion_table(8, lang=list(range(8))))
    stats = _run(tmp_path, folder, RENAMED_MIXED)
    kept = pq.read_table(tmp_path / "out" / "kept")
    assert kept.schema.field("lang").type == pa.string() and set(kept.column("lang").to_pylist()) == {"en"}
    assert stats["rows_out"] == kept.num_rows > 0


def test_a_ragged_row_duckdb_takes_for_the_header_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """DuckDB's sniffer reads the widest row as the header: 'missing required column URL' before."""
    path = tmp_path / "rows.csv"
    path.write_text(
        'URL,TEXT\n"https://a.example.com/1.jpg","two\nlines, a comma"\nhttps://b.example.com/2.jpg,x,y\n'
    )
    code, line = _cli(tmp_path, path, ["caption"], capsys)
    assert (code, line) == (1, f"t2iscope: error: {path}: row 2 (line 4) has 3 fields, the header has 2")
    assert not (tmp_path / "out").exists()
