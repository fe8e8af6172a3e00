"""Generated hostile values thrown at `evaluate run` and `evaluate report`.

Every outcome is either success or one ``T2IError`` line (the CLI's ConfigError/DataError), never
another exception type, and nothing is written outside ``--out``: AUDIT.yaml parameters and
top-level fields, input paths, and the files of an audit folder (run.json and the tables).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from t2iscope import fileio
from t2iscope.errors import T2IError
from t2iscope.evaluate.audits import AUDITS
from t2iscope.evaluate.config import load_config
from t2iscope.evaluate.report import build_report
from t2iscope.evaluate.runner import checked_context, run_audits
from t2iscope.evaluate.tables import CORE

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
HOSTILE_TEXT = [
    "../../x",
    "/etc/passwd",
    "it's",
    'a"b',
    "a\0b",
    "",
    " ",
    "klingon",
    "nan",
    "-1",
    "1e309",
    "~",
    "$HOME",
    "x" * 300,
    "€ü中",
    "skimage",
    "world",
    "../../../../tmp",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 50),
    st.sampled_from([0, 10**6, 2**63, -(2**63), 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(HOSTILE_TEXT),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def param_names(audit: str) -> list[str]:
    return list(inspect.signature(AUDITS.get(audit).fn).parameters)[1:]


@st.composite
def audit_params(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    audit = draw(st.sampled_from(AUDITS.names()))
    names = param_names(audit)
    keys = st.sampled_from(names) | st.text(max_size=8) if names else st.text(max_size=8)
    return audit, draw(st.dictionaries(keys, values, max_size=3))


def files(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (but under ``skip``) with its size and modification time."""
    out = {}
    for dirpath, _, names in os.walk(root):
        if skip is not None and Path(dirpath).is_relative_to(skip):
            continue
        for name in names:
            path = Path(dirpath) / name
            info = path.lstat()
            out[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return out


def one_line_or_success(action: Callable[[], object]) -> None:
    """Run ``action``; it may fail only with a T2IError (the CLI prints it as one line, no traceback)."""
    try:
        action()
    except T2IError as exc:
        assert str(exc).strip()


@contextlib.contextmanager
def sandbox(*read_only: Path) -> Iterator[Path]:
    """A fresh working directory; afterwards nothing in it but ``out/`` and the config changed,
    and nothing in ``read_only`` at all."""
    before = {p: files(p) for p in read_only}
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        box = Path(tmp)
        (box / "keep.txt").write_text("x")
        os.chdir(box)
        try:
            yield box
            left = set(files(box, skip=box / "out"))
            assert left <= {"keep.txt", "a.yaml"}, left
        finally:
            os.chdir(cwd)
    for p, seen in before.items():
        assert files(p) == seen, f"{p} changed"


@pytest.fixture(scope="module")
def small_gen(gen_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six rows of the fixture generation (en and de prompts): quick to judge on every example."""
    out = tmp_path_factory.mktemp("small") / "g"
    df = pd.read_parquet(gen_dir / "manifest.parquet")
    df = pd.concat([df[df["language"] == "en"].head(3), df[df["language"] == "de"].head(3)])
    for path in df["image_path"]:
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(gen_dir / path, out / path)
    fileio.write_parquet(out / "manifest.parquet", df)
    return out


top_level = st.fixed_dictionaries(
    {},
    optional={
        "seed": values,
        "judge": st.sampled_from(["world", "clip", "oracle", ""]) | scalars,
        "judge_options": values,
    },
)


@SETTINGS
@given(audit=audit_params(), extra=top_level)
def test_hostile_audit_parameters(
    audit: tuple[str, dict[str, Any]],
    extra: dict[str, Any],
    small_gen: Path,
    world_dir: Path,
    curation_run: Path,
) -> None:
    name, params = audit
    inputs = {"generation": str(small_gen), "world": str(world_dir), "curation": [str(curation_run)]}
    with sandbox(small_gen, world_dir, curation_run) as box:
        (box / "a.yaml").write_text(yaml.safe_dump({**extra, "inputs": inputs, "audits": {name: params}}))

        def run() -> None:
            config = load_config("a.yaml")
            if name == "watermark":  # its defaults mark and attack images for minutes: check only
                checked_context(config, box / "out")
            else:
                run_audits(config, box / "out")

        one_line_or_success(run)


PATHS = [
    "",
    ".",
    "..",
    "/etc",
    "/dev/null",
    "/etc/passwd",
    "a\0b",
    "x" * 300,
    'it\'s "here"',
    "missing",
    "keep.txt",
    "~",
    "GEN",
    "WORLD",
    "CUR",
    "GEN/manifest.parquet",
    "WORLD/world.json",
    "CUR/kept",
    "WORLD/metadata",
]


@SETTINGS
@given(
    chosen=st.fixed_dictionaries(
        {},
        optional={
            "generation": st.lists(st.sampled_from(PATHS), max_size=2) | st.sampled_from(PATHS),
            "world": st.sampled_from(PATHS),
            "curation": st.lists(st.sampled_from(PATHS), max_size=2),
            "data": st.lists(st.sampled_from([p for p in PATHS if p not in (".", "..")]), max_size=2),
        },
    ),
    out=st.sampled_from(["out", "out/deeper", "out/it's", 'out/"q"', "out/a b"]),
)
def test_hostile_input_paths(
    chosen: dict[str, Any], out: str, small_gen: Path, world_dir: Path, curation_run: Path
) -> None:
    real = {"GEN": str(small_gen), "WORLD": str(world_dir), "CUR": str(curation_run)}

    def fill(p: str) -> str:
        head, _, tail = p.partition("/")
        return f"{real[head]}/{tail}".rstrip("/") if head in real else p

    inputs = {k: [fill(p) for p in v] if isinstance(v, list) else fill(v) for k, v in chosen.items()}
    audits = {"domains": {}, "language_mix": {}, "limbs": {}}
    with sandbox(small_gen, world_dir, curation_run) as box:
        (box / "a.yaml").write_text(yaml.safe_dump({"inputs": inputs, "audits": audits}))
        one_line_or_success(lambda: run_audits(load_config("a.yaml"), box / out))


@pytest.fixture(scope="module")
def finished(world_dir: Path, small_gen: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of domains and limbs, copied afresh for each example."""
    root = tmp_path_factory.mktemp("fin")
    (root / "a.yaml").write_text(
        yaml.safe_dump(
            {
                "inputs": {"world": str(world_dir), "generation": str(small_gen)},
                "audits": {"domains": {}, "limbs": {}},
            }
        )
    )
    run_audits(load_config(root / "a.yaml"), root / "A")
    return root / "A"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
run_records = json_values | st.fixed_dictionaries(
    {"audits": st.lists(st.sampled_from([*AUDITS.names(), "nope", ""]) | json_values, max_size=3)}
)
column_values = st.one_of(
    st.lists(st.integers(-(2**40), 2**40), min_size=3, max_size=3),
    st.lists(st.floats(), min_size=3, max_size=3),
    st.lists(
        st.text(max_size=5) | st.sampled_from(["domains", "limbs", "skipped", "failure_rate"]),
        min_size=3,
        max_size=3,
    ),
    st.lists(st.none(), min_size=3, max_size=3),
    st.lists(st.booleans(), min_size=3, max_size=3),
)
tables = st.one_of(
    st.binary(max_size=200).map(lambda b: ("bytes", b)),
    st.dictionaries(
        st.sampled_from([*CORE, "dataset", "level", "rank", "key", "subject", "by"]) | st.text(max_size=5),
        column_values,
        max_size=12,
    ).map(lambda cols: ("frame", cols)),
)


@SETTINGS
@given(
    record=st.none() | run_records,
    damaged=st.dictionaries(st.sampled_from(["domains", "limbs", "culture"]), tables, max_size=2),
    stray=st.booleans(),
)
def test_hostile_audit_folders(
    record: Any,
    damaged: dict[str, tuple[str, Any]],
    stray: bool,
    finished: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    box = tmp_path_factory.mktemp("box")
    out = shutil.copytree(finished, box / "A")
    if record is not None:
        fileio.write_text(out / "run.json", json.dumps(record))
    for audit, (kind, data) in damaged.items():
        path = out / f"{audit}.parquet"
        if kind == "bytes":
            fileio.write_bytes(path, data)
        else:
            fileio.write_parquet(path, pd.DataFrame(data))
    if stray:
        fileio.write_bytes(out / "stray.parquet", b"PAR1 not a table")
    before = files(box, skip=out)
    one_line_or_success(lambda: build_report(out))
    assert files(box, skip=out) == before


manifest_columns = st.dictionaries(
    st.sampled_from(["prompt", "language", "tags", "image_path", "seed", "steps", "sampler", "prompt_id"]),
    st.one_of(
        st.lists(st.text(max_size=6) | st.sampled_from(HOSTILE_TEXT[:8]), min_size=6, max_size=6),
        st.lists(st.integers(-(2**40), 2**40), min_size=6, max_size=6),
        st.lists(st.floats(), min_size=6, max_size=6),
        st.lists(st.none(), min_size=6, max_size=6),
        st.lists(st.lists(st.text(max_size=5), max_size=2), min_size=6, max_size=6),
    ),
    max_size=3,
)


@SETTINGS
@given(columns=manifest_columns, drop=st.sets(st.sampled_from(["prompt", "language", "image_path", "tags"])))
def test_hostile_manifest_values(columns: dict[str, list[Any]], drop: set[str], small_gen: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        gen = shutil.copytree(small_gen, Path(tmp) / "g")
        df = pd.read_parquet(gen / "manifest.parquet").reset_index(drop=True)
        df = df.drop(columns=list(drop)).assign(**columns)
        fileio.write_parquet(gen / "manifest.parquet", df)
        config = {
            "inputs": {"generation": str(gen)},
            "audits": {"limbs": {}, "language_bias": {"n_boot": 10}},
        }
        (Path(tmp) / "a.yaml").write_text(yaml.safe_dump(config))
        one_line_or_success(lambda: run_audits(load_config(Path(tmp) / "a.yaml"), Path(tmp) / "out"))
        assert {p.name for p in Path(tmp).iterdir()} <= {"g", "a.yaml", "out"}
