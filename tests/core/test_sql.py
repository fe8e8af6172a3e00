"""t2iscope.sql's file names: what DuckDB does with a bound name, and what the helpers hand it.

DuckDB expands ``*``, ``?`` and ``[...]`` in the file names its readers get, bound parameters
included, and reads a relative ``~/...`` from the home folder; these tests pin both, so a DuckDB
that changes either shows up here first.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from t2iscope.errors import DataError
from t2iscope.sql import file_name, file_names, out_name

READERS = {"read_parquet": "parquet", "read_csv": "csv", "read_json": "jsonl"}
# (folder name, a look-alike beside it holding another file of the same name, whether DuckDB reads
# the look-alike given the bare name)
NAMES = [
    ("run[1]", "run1", True),
    ("a?", "ab", True),
    ("x*", "xyz", True),
    ("**", "deep", True),
    ("[", "x", False),
    ("]", "x", False),
    ("q]x", "x", False),
    ("{a,b}", "a", False),
    ("[!x]", "y", True),
]


def _table(folder: Path, ext: str, value: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"t.{ext}"
    if ext == "parquet":
        pq.write_table(pa.table({"v": [value]}), path)
    elif ext == "csv":
        path.write_text(f"v\n{value}\n")
    else:
        path.write_text(f'{{"v": "{value}"}}\n')
    return path


@pytest.mark.parametrize(("name", "decoy", "globbed"), NAMES)
@pytest.mark.parametrize("reader", READERS)
def test_duckdb_globs_bound_file_names_and_file_name_reads_only_the_file(
    tmp_path: Path, reader: str, name: str, decoy: str, globbed: bool
) -> None:
    ext = READERS[reader]
    path = _table(tmp_path / name, ext, "own")
    _table(tmp_path / decoy, ext, "decoy")
    with duckdb.connect() as con:

        def read(bound: str | list[str]) -> list[str]:
            return sorted(v for (v,) in con.execute(f"SELECT v FROM {reader}(?)", [bound]).fetchall())

        assert (read(str(path)) != ["own"]) == globbed
        assert read(file_name(path)) == read(file_names([path])) == ["own"]
        if ext == "parquet":  # the relation API globs the same way
            assert con.read_parquet(file_name(path)).fetchall() == [("own",)]


def test_a_relative_name_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB takes a relative ``~/x`` for the home folder's, to read and to COPY to."""
    monkeypatch.chdir(tmp_path)
    assert file_name("~/a[1]/x?.parquet") == f"{tmp_path}/~/a[[]1]/x[?].parquet"
    assert out_name("~/o[1].parquet") == f"{tmp_path}/~/o[1].parquet"  # COPY ... TO does not glob
    assert file_names(["memory://c[1]"]) == ["memory://c[[]1]"]  # a URL is left where it is
    _table(tmp_path / "~", "parquet", "own")
    with duckdb.connect() as con:
        con.execute("COPY (SELECT 'copied' AS v) TO $p (FORMAT parquet)", {"p": out_name("~/o[1].parquet")})
        for name, value in (("~/o[1].parquet", "copied"), ("~/t.parquet", "own")):
            assert con.execute("SELECT v FROM read_parquet(?)", [file_name(name)]).fetchall() == [(value,)]


def test_a_backslash_beside_a_glob_character_is_refused(tmp_path: Path) -> None:
    """DuckDB splits local paths at ``\\`` before matching, so no escape holds there."""
    plain = _table(tmp_path / "d\\e", "parquet", "own")
    assert file_name(plain) == str(plain)
    with pytest.raises(
        DataError, match=f"^{re.escape(str(tmp_path))}/d\\\\\\[1\\]: DuckDB cannot read a path"
    ):
        file_name(tmp_path / "d\\[1]")
    with pytest.raises(DataError) as exc:
        file_name(tmp_path / "d\\[1]\nx")
    assert "\n" not in str(exc.value)  # one line, whatever the name holds
