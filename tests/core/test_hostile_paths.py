"""The whole loop under generated hostile folder names (issue 14's fuzz requirement, end to end).

Each example names every file and folder of one loop with a generated name (quotes, ``$p0``,
``%s``, ``{}``, ``;``, SQL, markdown, newlines, unicode, ``..`` inside a name) and runs
``curate run`` -> ``generate suite`` -> ``evaluate run`` -> ``evaluate report`` -> the dashboards'
data layer on it. Every command must succeed exactly as under plain names, and nothing may be
written outside the example's own folder (a name is a name: it never becomes SQL or a path
component elsewhere).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from t2iscope.cli import main

# What a file name can hold on Linux (anything but "/" and NUL), biased to what breaks SQL,
# format strings, YAML, markdown and shells.
HOSTILE_PIECES = [
    "'", '"', "''", "$p0", "?", "%s", "{}", "{0}", ";", "--", "/*", "\\", "\n", "\t", " ",
    "..", "~", "*", "[x]", "![x](http://127.0.0.1:9/y)", "<img src=x>", "é", "ß", "語", "🙂",
    "\u202e", "COPY (SELECT 1) TO 'x'", ":", "#", "&", "|", "`",
]  # fmt: skip
names = st.lists(st.sampled_from(HOSTILE_PIECES), min_size=1, max_size=4).map(lambda p: "n" + "".join(p))

RECIPE = {
    "name": "hostile",
    "stages": [
        {"resolution": {"min_side": 64}},
        {"language": {"keep": ["en", "de"]}},
        {"dedup": {"by": "url"}},
    ],
}


def _snapshot(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(args)
    err = capsys.readouterr().err
    assert code == 0, f"{args[:2]} exit {code}: {err[-500:]}"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


# capsys is read after every call, so sharing it across examples is safe
@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names)
def test_the_loop_under_hostile_names(
    name: str, sandbox: Path, world_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = sandbox / f"ex-{len(list(sandbox.iterdir()))}"
    root = home / name  # every path of the loop lies under the hostile folder
    root.mkdir(parents=True)
    outside = _snapshot(sandbox) - _snapshot(home)

    data = root / f"{name}.parquet"
    data.symlink_to(next((world_dir / "metadata").glob("part-*.parquet")))
    recipe = root / f"{name}.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    curated = root / f"{name}-curated"
    _run(["curate", "run", str(recipe), "--input", str(data), "--out", str(curated)], capsys)
    stats = json.loads((curated / "stats.json").read_text())
    assert stats["rows_in"] == pq.read_metadata(data).num_rows > stats["rows_out"] > 0

    suite = root / f"{name}-suite.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "name": "hostile",
                "defaults": {"steps": 2, "sampler": "Euler"},
                "grid": {"seeds": "0-1"},
                "prompts": [{"id": "p1", "text": f"a red dog {name}", "language": "en"}],
            }
        )
    )
    gen = root / f"{name}-gen"
    _run(["generate", "suite", str(suite), "--out", str(gen), "--no-watermark"], capsys)
    manifest = pq.read_table(gen / "manifest.parquet").to_pylist()
    assert len(manifest) == 2 and all((gen / r["image_path"]).is_file() for r in manifest)

    audit_yaml = root / f"{name}-audit.yaml"
    audit_yaml.write_text(
        yaml.safe_dump(
            {
                "judge": "world",
                "inputs": {"curation": [str(curated)], "generation": [str(gen)]},
                "audits": {"language_mix": {}, "limbs": {}},
            }
        )
    )
    audit = root / f"{name}-audit"
    _run(["evaluate", "run", str(audit_yaml), "--out", str(audit)], capsys)
    _run(["evaluate", "report", str(audit)], capsys)
    assert (audit / "report.html").stat().st_size > 0

    from t2iscope.dashboards import data as dash
    from t2iscope.dashboards.discover import discover

    runs = discover(home)
    assert runs.curations == (curated,) and runs.generations == (gen,) and runs.audits == (audit,)
    assert dash.funnel(str(curated))["rows_out"].iloc[-1] == stats["rows_out"]
    assert len(dash.manifest(str(gen))) == 2

    assert _snapshot(sandbox) - _snapshot(home) == outside, "a command wrote outside its folder"
    assert not [p for p in home.rglob("*") if p.name.endswith(".tmp")], "temp files left behind"
