"""Hostile folder, file and column names reach DuckDB as bound values or quoted names, never as SQL.

While audits pasted file lists into SQL with ``{files!r}``, a name holding both quotes made
Python's repr escape ``'`` as ``\\'``, which DuckDB reads as the end of the string: the last name
below then ran its own ``COPY`` (``pwned.csv`` appeared in the working directory), given two
decoy parquet files for the statement before it to read.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from t2iscope import fileio
from t2iscope.cli import main
from t2iscope.dashboards import data
from t2iscope.evaluate.audits import AUDITS
from t2iscope.evaluate.context import AuditContext, Inputs

CANARY = "pwned.csv"
HOSTILE = [
    "it's",
    'say "hi"',
    "semi;colon and spaces",
    f"a\"'] || [$$decoy.parquet$$]); COPY (SELECT 42) TO $${CANARY}$$; --",
]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)  # where the canary would land
    decoy = pd.DataFrame({"URL": ["http://a.example.com/1.jpg"]})
    for name in ("decoy.parquet", 'a"\\'):  # the files the injected statement reads
        fileio.write_parquet(tmp_path / name, decoy)
    yield tmp_path
    assert not (tmp_path / CANARY).exists(), "injected SQL ran"


def _copy(world_dir: Path, curation_run: Path, root: Path, name: str) -> tuple[Path, Path, Path]:
    """The session world (metadata and truth), the curation run and a URL file under ``name``."""
    base = root / name
    world = base / f"world {name}"
    for part in ("metadata", "truth"):
        shutil.copytree(world_dir / part, world / part)
    shutil.copy(world_dir / "world.json", world / "world.json")
    run = shutil.copytree(curation_run, base / f"run {name}")
    urls = pd.read_parquet(world_dir / "metadata", columns=["URL"])
    fileio.write_parquet(base / f"urls {name}.parquet", urls)
    return world, run, base / f"urls {name}.parquet"


def _audits(world: Path, run: Path, urls: Path) -> pd.DataFrame:
    ctx = AuditContext(Inputs(curation=(run,), world=world, data=(urls,)))
    frames = [AUDITS.get(name).fn(ctx) for name in ("domains", "language_mix")]
    out = pd.concat(frames, ignore_index=True)
    # names derived from folder names are expected to differ; everything else must not
    return out.drop(columns=[c for c in ("dataset", "run") if c in out.columns])


@pytest.mark.parametrize("name", HOSTILE)
def test_audits_read_hostile_paths(name: str, in_tmp: Path, world_dir: Path, curation_run: Path) -> None:
    clean = _audits(*_copy(world_dir, curation_run, in_tmp, "clean"))
    hostile = _audits(*_copy(world_dir, curation_run, in_tmp, name))
    pd.testing.assert_frame_equal(hostile, clean)


# DuckDB expands * ? [ in the file names it is given, bound ones too: each name beside a look-alike
# folder whose world, curation run and URL file hold other rows (for "**": every folder).
GLOBS = [("run[1]", "run1"), ("a?", "ab"), ("x*", "xyz"), ("**", "deep")]


@pytest.mark.parametrize(("name", "decoy"), GLOBS)
def test_audits_read_only_their_own_files(
    name: str, decoy: str, in_tmp: Path, world_dir: Path, curation_run: Path
) -> None:
    clean = _audits(*_copy(world_dir, curation_run, in_tmp, "clean"))
    _copy(world_dir, curation_run, in_tmp, decoy)
    for path in (in_tmp / decoy).rglob("*.parquet"):
        fileio.write_parquet(path, pd.read_parquet(path).iloc[::2].drop(columns="LANGUAGE", errors="ignore"))
    world, run, urls = _copy(world_dir, curation_run, in_tmp, name)
    pd.testing.assert_frame_equal(_audits(world, run, urls), clean)
    truth = AuditContext(Inputs(world=world)).truth()
    assert len(truth) == len(pd.read_parquet(world / "truth"))


@pytest.mark.parametrize("name", HOSTILE)
def test_evaluate_run_with_hostile_inputs_and_out(
    name: str, in_tmp: Path, world_dir: Path, curation_run: Path
) -> None:
    world, run, urls = _copy(world_dir, curation_run, in_tmp, name)
    config = {
        "inputs": {"world": str(world), "curation": [str(run)], "data": [str(urls)]},
        "audits": {"domains": {}, "language_mix": {}},
    }
    (in_tmp / "audit.yaml").write_text(yaml.safe_dump(config))
    out = in_tmp / f"out {name}"
    assert main(["evaluate", "run", str(in_tmp / "audit.yaml"), "--out", str(out)]) == 0
    assert {p.name for p in out.glob("*.parquet")} >= {"domains.parquet", "language_mix.parquet"}
    assert main(["evaluate", "report", str(out)]) == 0
    assert (out / "report.html").is_file()


def _kept_run(root: Path, column: str) -> Path:
    rows = pd.DataFrame(
        {
            "URL": [f"http://img.site{i % 3}.com/{i}.jpg" for i in range(30)],
            "TEXT": [f"a dog {i}" for i in range(30)],
            "WIDTH": [256 + i for i in range(30)],
            "HEIGHT": [256] * 30,
            "lang": ["en", "de", "fr"] * 10,
            "domain": [f"site{i % 3}.com" for i in range(30)],
            column: [float(i) for i in range(30)],
        }
    )
    fileio.write_parquet(root / "kept" / "part-00000.parquet", rows)
    dropped = rows.head(5).assign(stage="size", reason="small")
    fileio.write_parquet(root / "dropped" / "part-00000.parquet", dropped)
    # no reasons in stats.json: the dashboard counts them from the dropped table
    fileio.write_json(root / "stats.json", {"stages": [{"name": "size", "rows_in": 35, "rows_out": 30}]})
    return root


@pytest.mark.parametrize("name", HOSTILE)
def test_dashboard_data_layer_with_hostile_names(name: str, in_tmp: Path) -> None:
    """A run folder and a numeric column, both named ``name``: every query works on them."""
    ds = data.Dataset("curation", str(_kept_run(in_tmp / name, name)))
    assert data.schema(ds)[name] == "DOUBLE"
    assert name in data.numeric_columns(ds)
    f = data.Filters(ranges=((name, 10.0, 19.0),), domains=("site1.com",), text="DOG")
    assert data.summary(ds, f).rows == 4  # site1.com rows in [10, 19]: 10, 13, 16, 19
    assert data.bounds(ds, name) == (0.0, 29.0)
    assert data.histogram(ds, name, data.Filters(), bins=3)["rows"].tolist() == [10, 10, 10]
    assert len(data.sample(ds, f, k=2)) == 2
    assert data.drop_reasons(ds.path)["rows"].tolist() == [5]
