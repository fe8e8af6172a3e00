"""Hostile names never become SQL: column names, input file names and --out paths (issue 14, 1-3).

Each case runs ``t2iscope curate run`` on a hostile input and on the same rows under plain names,
and expects the same kept rows and stats (or a one-line error), with no injected statement run:
the payloads try to write a canary file next to the input.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
import yaml
from curate_rows import laion_table

from t2iscope.cli import main
from t2iscope.curate.readers import connect
from t2iscope.locks import LOCK_NAME
from t2iscope.sql import Params, ident, literal

# Numeric rules, caption and URL rules: every stage runs inside DuckDB.
ALL_SQL = {
    "name": "sql",
    "stages": [
        {"resolution": {"min_side": 300}},
        {"watermark": {"max_score": 0.9}},
        "unsafe",
        {"caption": {"min_words": 2}},
    ],
}
# Pushed-down stages, then language and dedup in Python, then rule stages evaluated on Arrow batches.
MIXED = {
    "name": "mixed",
    "stages": [
        {"resolution": {"min_side": 300}},
        {"language": {"keep": ["en"]}},
        {"dedup": {"by": "url"}},
        {"unsafe": {"max_score": 0.9}},
        {"aesthetic": {"min_score": 4.0}},
        {"caption": {"min_words": 2, "reject_junk": True}},
    ],
}
RECIPES = {"all_sql": ALL_SQL, "mixed": MIXED}


def _payload(canary: Path) -> str:
    """SQL that, pasted anywhere, would close a quote and copy a row into ``canary``."""
    return f"x\"'); COPY (SELECT 42) TO '{canary}' (FORMAT csv); --"


def _hostile_columns(canary: Path) -> list[str]:
    return ['we"ird', "a'b", _payload(canary), "$p0", "sp ace;", "Ünï ∑"]


def _rows(n: int = 60) -> pa.Table:
    table = laion_table(n, LANGUAGE=[["en", "de"][i % 2] for i in range(n)])
    return table.set_column(
        0, "URL", pa.array([u if i % 9 else "not a url" for i, u in enumerate(table["URL"])])
    )


def _with_extra(table: pa.Table, names: list[str]) -> pa.Table:
    for i, name in enumerate(names):
        table = table.append_column(name, pa.array([f"v{i}-{r}" for r in range(table.num_rows)]))
    return table


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        pcsv.write_csv(table, path)
    elif path.suffix == ".jsonl":
        path.write_text(table.to_pandas().to_json(orient="records", lines=True))
    else:
        pq.write_table(table, path, row_group_size=16)


def _curate(recipe: dict, mode: str, src: Path, out: Path, recipe_file: Path) -> int:
    recipe_file.parent.mkdir(parents=True, exist_ok=True)
    recipe_file.write_text(yaml.safe_dump({**recipe, "dropped": mode}))
    args = ["curate", "run", str(recipe_file), "--input", str(src), "--out", str(out), "--threads", "2"]
    return main([*args, "--batch-rows", "16"])


def _comparable(out: Path) -> dict:
    stats = json.loads((out / "stats.json").read_text())
    kept = pq.read_table(out / "kept").to_pylist()
    clean = {k: v for k, v in stats.items() if k not in ("timings", "git_commit", "input")}
    clean["stages"] = [{k: v for k, v in s.items() if k != "seconds"} for s in stats["stages"]]
    return {
        "stats": clean,
        "kept": [list(row.values()) for row in kept],
        "columns": list(kept[0]) if kept else [],
    }


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("mode", ["full", "keys", "none"])
@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_hostile_names_and_paths_give_the_same_run(tmp_path: Path, recipe: str, mode: str, fmt: str) -> None:
    hostile_dir = tmp_path / 'in put\'; "dir"'
    canary = hostile_dir / "canary.csv"
    names = _hostile_columns(canary)
    table = _with_extra(_rows(), names)
    plain = _with_extra(_rows(), [f"c{i}" for i in range(len(names))])
    _write(table, hostile_dir / f"0 part'; \"{fmt}\" {canary.name}'.{fmt}")
    _write(table.slice(10), hostile_dir / f"1 part ');.{fmt}")
    _write(plain, tmp_path / "plain" / f"part-0.{fmt}")
    _write(plain.slice(10), tmp_path / "plain" / f"part-1.{fmt}")
    out = tmp_path / 'o\'ut; "x"' / f"run'); COPY (SELECT 1) TO '{canary}"
    assert _curate(RECIPES[recipe], mode, hostile_dir, out, hostile_dir / "re'cipe;.yaml") == 0
    assert _curate(RECIPES[recipe], mode, tmp_path / "plain", tmp_path / "ref", tmp_path / "r.yaml") == 0
    assert not canary.exists()
    got, want = _comparable(out), _comparable(tmp_path / "ref")
    assert got["kept"] == want["kept"] and got["stats"] == want["stats"]
    assert [c for c in got["columns"] if c not in want["columns"]] == names  # names kept verbatim
    if mode != "none":
        dropped = pq.read_table(out / "dropped")
        assert dropped.num_rows == want["stats"]["rows_dropped"]
        assert (mode == "full") == (set(names) <= set(dropped.column_names))
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".") and p.name != LOCK_NAME]
    assert not leftovers  # no temp or partition files left


# DuckDB expands * ? [ in file names it is given, bound ones too: each name beside a look-alike
# folder whose file of the same name holds other rows (for "**": every folder of the tree).
GLOBS = [("run[1]", "run1"), ("a?", "ab"), ("x*", "xyz"), ("**", "deep")]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
@pytest.mark.parametrize(("name", "decoy"), GLOBS)
def test_glob_characters_in_names_read_only_that_file(
    tmp_path: Path, name: str, decoy: str, fmt: str
) -> None:
    rows = _rows()
    _write(rows, tmp_path / name / f"part-0.{fmt}")
    _write(rows.slice(0, 20), tmp_path / decoy / f"part-0.{fmt}")
    _write(rows, tmp_path / "plain" / f"part-0.{fmt}")
    out = tmp_path / "out" / name / name  # the verdict file DuckDB reads back lies in --out too
    assert _curate(ALL_SQL, "full", tmp_path / name, out, tmp_path / "r.yaml") == 0
    assert _curate(ALL_SQL, "full", tmp_path / "plain", tmp_path / "ref", tmp_path / "r.yaml") == 0
    assert _comparable(out) == _comparable(tmp_path / "ref")


@pytest.mark.parametrize("name", ["nul\0byte", "__T2I_stage"])
def test_column_the_engine_cannot_take_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """A NUL cannot be quoted; the engine's own prefix would be mistaken for its verdict columns."""
    src = tmp_path / "in"
    _write(_with_extra(_rows(), [name]), src / "part-0.parquet")
    assert _curate(ALL_SQL, "full", src, tmp_path / "out", tmp_path / "r.yaml") == 1
    err = capsys.readouterr().err
    (line,) = [e for e in err.splitlines() if e.startswith("t2iscope: error:")]  # the rest is progress
    assert "part-0.parquet" in line and "Traceback" not in err


def test_sql_helpers_quote_and_bind() -> None:
    assert ident('we"ird') == '"we""ird"'
    assert literal("it's") == "'it''s'" and literal(Path("/a'b")) == "'/a''b'"
    with pytest.raises(ValueError, match="NUL"):
        ident("a\0b")
    p = Params()
    sql = f"SELECT {ident('$p1')} FROM t WHERE a < {p(1)} AND b = {p('x')}"
    assert p.used(sql) == {"p0": 1, "p1": "x"}
    assert p.used(f"SELECT {p(2)}") == {"p2": 2}


def test_hostile_engine_options_never_become_sql(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--temp-directory is a DuckDB config value, --memory-limit a checked size: neither is SQL text."""
    canary = tmp_path / "canary.csv"
    src = tmp_path / "in"
    _write(_rows(), src / "part-0.parquet")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(ALL_SQL))
    args = ["curate", "run", str(recipe), "--input", str(src)]
    spill = tmp_path / _payload(canary).replace("/", "_")
    assert (
        main(
            [*args, "--out", str(tmp_path / "a"), "--temp-directory", str(spill), "--memory-limit", "128MiB"]
        )
        == 0
    )
    assert main([*args, "--out", str(tmp_path / "b"), "--memory-limit", f"1GB'; {_payload(canary)}"]) == 2
    assert "--memory-limit" in capsys.readouterr().err and not (tmp_path / "b").exists()
    assert not canary.exists() and spill.is_dir()


def test_a_relative_tilde_folder_stays_where_python_sees_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB reads, writes and spills a relative ``~/x`` in the home folder; the run's are local."""
    monkeypatch.chdir(tmp_path)
    with connect(threads=1, temp_directory="~/spill") as con:
        (setting,) = con.execute("SELECT current_setting('temp_directory')").fetchone()
    assert setting == str(tmp_path / "~" / "spill")
