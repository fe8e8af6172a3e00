"""The data layer on hostile run folders (issue 14): folder and file names that are globs, quotes,
newlines or Markdown; corrupt and foreign tables and stats; manifests that point out of the runs
folder. Each gives the right answer or one DataError line naming the file, never a traceback."""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import tempfile
import threading
import zlib
from pathlib import Path

import pandas as pd
import pytest
from fixture_runs import write_audit_run
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from t2iscope import fileio
from t2iscope.curate.world.layout import hash_hex
from t2iscope.dashboards import data
from t2iscope.dashboards.discover import discover
from t2iscope.dashboards.images import read_image, world_image
from t2iscope.errors import DataError
from t2iscope.evaluate.tables import CORE


def one_line(exc: pytest.ExceptionInfo[DataError]) -> str:
    message = str(exc.value)
    assert len(message.splitlines()) == 1, message
    return message


def kept_run(folder: Path, rows: int, text: str = "a dog", extra: str | None = None) -> data.Dataset:
    """A curation run of ``rows`` kept rows (and one dropped row) whose values are ``text``."""
    df = pd.DataFrame(
        {
            "URL": [f"http://x.com/{i}.jpg" for i in range(rows)],
            "TEXT": [text] * rows,
            "WIDTH": [256 + i for i in range(rows)],
            "HEIGHT": [256] * rows,
            "lang": [text] * rows,
            "domain": [text] * rows,
            "AESTHETIC_SCORE": [float(i) for i in range(rows)],
            "hash": list(range(rows)),
        }
    )
    if extra is not None:
        df[extra] = [float(i) for i in range(rows)]
    fileio.write_parquet(folder / "kept" / "part-00000.parquet", df)
    dropped = df.head(1).assign(stage=text, reason=text)
    fileio.write_parquet(folder / "dropped" / "part-00000.parquet", dropped)
    stages = [{"stage": text, "rows_in": rows + 1, "rows_out": rows}]
    fileio.write_json(folder / "stats.json", {"stages": stages, "languages": {"in": {text: rows + 1}}})
    return data.Dataset("curation", str(folder))


def manifest_run(folder: Path, rows: int, text: str = "a dog", image_path: str = "images/0.png") -> None:
    df = pd.DataFrame(
        {
            "suite": [text] * rows,
            "prompt_id": [text] * rows,
            "prompt": [text] * rows,
            "language": [text] * rows,
            "seed": list(range(rows)),
            "steps": [10] * rows,
            "cfg_scale": [7.0] * rows,
            "sampler": [text] * rows,
            "image_path": [image_path] * rows,
        }
    )
    fileio.write_parquet(folder / "manifest.parquet", df)


def limbs_table(rows: int, text: str = "x", column: str = "level") -> pd.DataFrame:
    core = {"audit": "limbs", "judge": text, "metric": [text] * rows, "value": 0.5, "n": 10}
    return pd.DataFrame({**core, "ci_low": 0.2, "ci_high": 0.8, "note": text, column: text})


def audit_run(folder: Path, rows: int, text: str = "x", column: str = "level") -> None:
    """A finished audit run of the limbs audit: ``rows`` rows whose text is ``text``."""
    write_audit_run(folder, {"limbs": limbs_table(rows, text, column)})


# A folder whose name is a glob would also read its look-alike sibling: DuckDB expands * ? [
# in bound file names too.
GLOBS = [
    ("run[1]", "run1"),
    ("run?", "runX"),
    ("run*", "run-all"),
    ("r[!a]", "rb"),
    ("a[", "a[b"),
    ("**", "deep"),  # every same-named file of the tree
    ("{a,b}", "a"),
]


@pytest.mark.parametrize(("name", "decoy"), GLOBS)
def test_glob_characters_in_names_read_only_that_folder(tmp_path: Path, name: str, decoy: str) -> None:
    kept_run(tmp_path / "cur" / decoy, 7)
    ds = kept_run(tmp_path / "cur" / name, 3)
    assert data.summary(ds, data.Filters()).rows == 3
    assert data.histogram(ds, "WIDTH", data.Filters())["rows"].sum() == 3
    (tmp_path / "cur" / name / "stats.json").write_text('{"stages": []}')  # reasons from dropped/
    assert data.drop_reasons(ds.path)["rows"].tolist() == [1]
    manifest_run(tmp_path / "gen" / decoy, 7)
    manifest_run(tmp_path / "gen" / name, 3)
    assert len(data.manifest(str(tmp_path / "gen" / name), str(tmp_path))) == 3
    audit_run(tmp_path / "audit" / decoy, 7)
    audit_run(tmp_path / "audit" / name, 3)
    assert len(data.audit_rows((str(tmp_path / "audit" / name),), ("limbs",))) == 3


def test_a_backslash_beside_a_glob_character_is_one_line(tmp_path: Path) -> None:
    """DuckDB splits paths at a backslash before matching, so no escape holds there: refused."""
    kept_run(tmp_path / "cur" / "a", 7)
    ds = kept_run(tmp_path / "cur" / "a\\[1]", 3)
    with pytest.raises(DataError) as exc:
        data.summary(ds, data.Filters())
    assert one_line(exc).startswith(ds.path)
    assert data.summary(kept_run(tmp_path / "cur" / "b\\1", 2), data.Filters()).rows == 2  # no glob: read


def test_manifest_images_stay_inside_the_runs_folder(tmp_path: Path) -> None:
    root, outside = tmp_path / "runs", tmp_path / "outside"
    gen = root / "gen"
    for folder in (gen / "images", outside, root / "other"):
        folder.mkdir(parents=True)
    for image in (gen / "images" / "ok.png", outside / "secret.png", root / "other" / "x.png"):
        image.write_bytes(b"png")
    (gen / "images" / "link.png").symlink_to(outside / "secret.png")
    (gen / "images" / "inner.png").symlink_to(gen / "images" / "ok.png")
    (gen / "linkdir").symlink_to(outside)
    (gen / "loop.png").symlink_to(gen / "loop.png")
    paths = {
        "images/ok.png": gen / "images" / "ok.png",
        "images/../images/ok.png": gen / "images" / "ok.png",
        str(gen / "images" / "ok.png"): gen / "images" / "ok.png",  # absolute, but inside
        "../other/x.png": root / "other" / "x.png",  # another run of the same folder
        "images/inner.png": gen / "images" / "ok.png",
        str(outside / "secret.png"): None,
        "../../outside/secret.png": None,
        "images/link.png": None,
        "linkdir/secret.png": None,
        "/etc/passwd": None,
        "loop.png": None,
        "": None,
    }
    manifest_run(gen, len(paths))
    df = pd.read_parquet(gen / "manifest.parquet").assign(image_path=list(paths))
    fileio.write_parquet(gen / "manifest.parquet", df)
    got = data.manifest(str(gen), str(root))
    for i, (value, want) in enumerate(paths.items()):
        file, problem = got["image_file"].iloc[i], got["image_problem"].iloc[i]
        if want is None:
            assert file is None and problem.startswith(f"{gen / 'manifest.parquet'} row {i}: image_path")
            assert len(problem.splitlines()) == 1 and repr(value) in problem
        else:
            assert Path(file) == want.resolve() and problem is None, value


def test_world_image_behind_a_link_out_is_not_served(tmp_path: Path) -> None:
    root, outside = tmp_path / "runs", tmp_path / "outside.png"
    outside.write_bytes(b"png")
    images = root / "world" / "images" / "00000"
    images.mkdir(parents=True)
    (images / f"{hash_hex(7)}.png").symlink_to(outside)
    (images / f"{hash_hex(8)}.png").write_bytes(b"png")
    worlds = [str(root / "world")]
    assert world_image(worlds, 7, root) is None
    assert world_image(worlds, 8, root) == (images / f"{hash_hex(8)}.png").resolve()
    assert all(world_image(worlds, v, root) is None for v in ("not a hash", math.nan, math.inf, None))


def test_discovery_does_not_follow_links_out_of_the_runs_folder(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    kept_run(elsewhere / "curated", 2)
    root = tmp_path / "runs"
    kept_run(root / "mine", 2)
    (root / "linked").symlink_to(elsewhere)
    (root / "inner").symlink_to(root / "mine")  # a link that stays inside is followed
    assert discover(root).curations == (root / "inner", root / "mine")


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels in a few bytes (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def _finishes(fn, *args) -> bool:
    """Whether ``fn(*args)`` returns or refuses (in a thread: a call that blocks forever must fail
    the test)."""
    done = threading.Event()

    def call() -> None:
        with contextlib.suppress(DataError):
            fn(*args)
        done.set()

    threading.Thread(target=call, daemon=True).start()
    return done.wait(60)


def test_images_that_would_hang_or_exhaust_the_page(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(50_000, 50_000))
    assert read_image(str(bomb)) is None
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    try:
        assert _finishes(read_image, str(fifo))
        audit_run(tmp_path / "audit", 2)  # a real table, so the folder's tables get read
        (tmp_path / "audit" / "limbs.parquet").rename(tmp_path / "audit" / "other.parquet")
        os.mkfifo(tmp_path / "audit" / "limbs.parquet")
        assert _finishes(discover, tmp_path / "audit")
        assert _finishes(data.audit_rows, (str(tmp_path / "audit"),), ("limbs",))
    finally:  # release a reader the old code would leave blocked
        for path in (fifo, tmp_path / "audit" / "limbs.parquet"):
            if path.exists():
                os.close(os.open(path, os.O_RDWR | os.O_NONBLOCK))


BAD_STATS = {
    "stage not an object": '{"stages": {"resolution": 5}}',
    "infinite count": '{"stages": [{"stage": "a", "rows_in": Infinity, "rows_out": 1}]}',
    "fractional count": '{"stages": [{"stage": "a", "rows_in": 2.5, "rows_out": 1}]}',
    "reason count is text": (
        '{"stages": [{"stage": "a", "rows_in": 2, "rows_out": 1, "dropped": {"r": "many"}}]}'
    ),
    "language count is text": '{"stages": [], "languages": {"in": {"en": "x"}}}',
    "nested too deep": "[" * 100_000,
}


@pytest.mark.parametrize("stats", BAD_STATS.values(), ids=BAD_STATS)
def test_bad_stats_are_one_line(tmp_path: Path, stats: str) -> None:
    path = tmp_path / "stats.json"
    path.write_text(stats)
    with pytest.raises(DataError) as exc:
        data.funnel(str(tmp_path))
        data.drop_reasons(str(tmp_path))
        data.languages(str(tmp_path))
    assert one_line(exc).startswith(str(path))


def test_odd_but_readable_stats(tmp_path: Path) -> None:
    stats = {
        "stages": [{"stage": "a", "rows_in": 3, "rows_out": 1, "seconds": "slow", "dropped": ["x"]}],
        "languages": {"in": {"en": 3}, "out": ["en"]},
    }
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    assert data.funnel(str(tmp_path))["dropped"].tolist() == [2]
    assert data.languages(str(tmp_path))["rows_out"].tolist() == [0]


def test_corrupt_and_foreign_tables_name_the_file(tmp_path: Path) -> None:
    ds = kept_run(tmp_path / "cur", 3)
    (tmp_path / "cur" / "kept" / "part-00001.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError) as exc:
        data.summary(ds, data.Filters())
    assert one_line(exc).startswith(ds.path)

    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "manifest.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError) as exc:
        data.manifest(str(tmp_path / "gen"), str(tmp_path))
    assert one_line(exc).startswith(str(tmp_path / "gen" / "manifest.parquet"))
    manifest_run(tmp_path / "gen", 2)
    df = pd.read_parquet(tmp_path / "gen" / "manifest.parquet")
    fileio.write_parquet(tmp_path / "gen" / "manifest.parquet", df.assign(seed=["1", "2"]))
    with pytest.raises(DataError, match="column seed holds") as exc:
        data.manifest(str(tmp_path / "gen"), str(tmp_path))
    fileio.write_parquet(tmp_path / "gen" / "manifest.parquet", df.assign(cfg_scale=[7.0, None]))
    with pytest.raises(DataError, match="column cfg_scale is empty in row 1"):
        data.manifest(str(tmp_path / "gen"), str(tmp_path))

    audit = tmp_path / "audit"
    audit_run(audit, 2)
    (audit / "limbs.parquet").write_bytes(b"garbage")
    with pytest.raises(DataError) as exc:
        data.audit_rows((str(audit),), ("limbs",))
    assert one_line(exc).startswith(str(audit / "limbs.parquet"))
    fileio.write_parquet(audit / "limbs.parquet", limbs_table(1).assign(value="high"))
    with pytest.raises(DataError, match="column value holds"):
        data.audit_rows((str(audit),), ("limbs",))


def test_a_column_name_with_a_nul_is_refused_not_truncated(tmp_path: Path) -> None:
    ds = kept_run(tmp_path / "cur", 3, extra="WIDTH\0; DROP")
    assert "WIDTH\0; DROP" in data.numeric_columns(ds)
    with pytest.raises(DataError, match="cannot be queried"):
        data.histogram(ds, "WIDTH\0; DROP", data.Filters())


# Names and values a downloaded runs folder may hold: quotes, globs, SQL, Markdown, HTML,
# percent signs, newlines and other control characters, unicode.
HOSTILE = "'\"`*?[]{}%\\;$-#!()<>|&~:\n\t\r\x1b ._ "
NAMES = st.text(
    alphabet=st.sampled_from(HOSTILE) | st.characters(exclude_categories=("Cs",), exclude_characters="/\0"),
    min_size=1,
    max_size=16,
).filter(lambda s: s not in (".", "..") and len(s.encode()) < 200)
VALUES = st.text(max_size=40) | st.sampled_from(["![x](http://h/y)", "<img src=x>", "'; DROP t; --", "%s"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(folder=NAMES, file=NAMES, column=NAMES, value=VALUES)
def test_data_layer_on_generated_hostile_names(folder: str, file: str, column: str, value: str) -> None:
    """A run folder, a part file and a numeric column with generated names, holding a generated
    text value everywhere: every data function gives the right answer or one DataError line."""
    taken = {"url", "text", "width", "height", "lang", "domain", "aesthetic_score", "hash"}
    both = folder + file  # DuckDB splits at a backslash: a glob character cannot be escaped there
    assume(not ("\\" in both and any(c in both for c in "*?[")))  # test_backslash_... covers it
    audit_taken = {*CORE, "run"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ds = kept_run(root / "cur" / folder, 4, text=value, extra=None if column.lower() in taken else column)
        kept = Path(ds.path) / "kept"
        (kept / "part-00000.parquet").rename(kept / f"{file}.parquet")
        gen = root / "gen" / folder
        manifest_run(gen, 2, text=value, image_path=value)
        slice_column = "c" if column.lower() in audit_taken else column
        audit_run(root / "audit" / folder, 2, text=value, column=slice_column)

        found = discover(root)
        hidden = folder.startswith(".")
        assert (Path(ds.path) in found.curations) != hidden and (gen in found.generations) != hidden
        f = data.Filters(languages=(value,), domains=(value,), text=value, min_width=257)
        assert data.summary(ds, f).rows == 3
        assert data.sample(ds, f, k=2)["TEXT"].tolist() == [value, value]
        if column.lower() not in taken:
            ranged = data.Filters(ranges=((column, 1.0, 2.0),))
            try:
                assert data.summary(ds, ranged).rows == 2
                assert data.bounds(ds, column) == (0.0, 3.0)
                assert data.histogram(ds, column, data.Filters(), bins=2)["rows"].sum() == 4
            except DataError as exc:  # only a NUL, which a file name cannot hold, is refused
                assert "\0" in column and len(str(exc).splitlines()) == 1
        assert data.funnel(ds.path)["stage"].tolist() == [value or "stage 1"]
        assert data.drop_reasons(ds.path)["rows"].tolist() == [1]
        assert data.languages(ds.path)["language"].tolist() == [value]
        man = data.manifest(str(gen), str(root))
        assert man["prompt"].tolist() == [value, value]
        for file_, problem in zip(man["image_file"], man["image_problem"], strict=True):
            assert (file_ is None) != (problem is None)
            assert file_ is None or Path(file_).resolve().is_relative_to(root.resolve())
            assert problem is None or len(problem.splitlines()) == 1
        rows = data.audit_rows((str(root / "audit" / folder),), ("limbs",))
        assert rows["metric"].tolist() == [value, value]
