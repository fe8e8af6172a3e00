"""Issue 14 for ``curate download``: kills at any point resume to the outputs of an uninterrupted
run and leave no img2dataset process behind; one writer per --out; bad options refused up front;
post-download streams shard by shard in bounded batches."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from t2iscope.cli import main
from t2iscope.config import literal_choices
from t2iscope.curate import download
from t2iscope.curate.download import DownloadOptions, download_run
from t2iscope.curate.recipe import recipe_from_dict
from t2iscope.errors import ConfigError

RECIPE = recipe_from_dict(
    {
        "name": "dl-resume",
        "stages": [],
        "post_download": [{"resolution": {"min_side": 400}}, {"dedup": {"by": "image"}}],
    },
    "dl-resume.yaml",
)
ROWS_PER_SHARD = 8
DUPLICATED = (0, 1, 9, 26)  # rows fetched again at the end: shard 4 repeats shards 0, 1 and 3
WAIT_S = 120.0  # a deadline for things that take seconds, so a broken build fails instead of hanging


@pytest.fixture(scope="module")
def run_dir(world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder: 30 world rows, 2 with X-Robots-Tag noai (they fail), then 4 rows that repeat
    an earlier URL with another caption (same image: dedup by image drops them), 5 shards of 8."""
    meta = pq.read_table(world_dir / "metadata")
    truth = pq.read_table(world_dir / "truth", columns=["hash", "noai"]).to_pylist()
    noai = {r["hash"] for r in truth if r["noai"]}
    is_noai = pc.is_in(meta.column("hash"), pa.array(sorted(noai), pa.int64()))
    fine, blocked = meta.filter(pc.invert(is_noai)).slice(0, 30), meta.filter(is_noai).slice(0, 2)
    rows = pa.concat_tables([fine.slice(0, 5), blocked.slice(0, 1), fine.slice(5, 15), blocked.slice(1, 1)])
    rows = pa.concat_tables([rows, fine.slice(20, 10)])
    copies = rows.take(list(DUPLICATED))
    texts = pc.binary_join_element_wise(copies.column("TEXT"), " (again)", "")
    copies = copies.set_column(copies.column_names.index("TEXT"), "TEXT", texts)
    copies = copies.set_column(copies.column_names.index("hash"), "hash", pa.array([1, 2, 3, 4], pa.int64()))
    run = tmp_path_factory.mktemp("dl-run") / "run"
    (run / "kept").mkdir(parents=True)
    pq.write_table(pa.concat_tables([rows, copies]), run / "kept" / "part-00000.parquet")
    (run / "recipe.resolved.yaml").write_text(RECIPE.to_yaml())
    return run


@pytest.fixture(scope="module")
def fast_server(world_dir: Path) -> Iterator[object]:
    """Every URL answers (no failure modes), so two downloads of the same rows agree exactly."""
    from t2iscope.curate.world.serve import serve_world

    server = serve_world(world_dir, rates={})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slow_server(world_dir: Path) -> Iterator[object]:
    """Like ``fast_server``, but each answer waits 0.3 s, so a kill lands mid-download;
    ``.served`` counts the requests answered so far."""
    from t2iscope.curate.world.serve import serve_world

    server = serve_world(world_dir, rates={"timeout": 1.0}, timeout_seconds=0.3)
    served: list[int] = []
    mode = server.mode
    server.mode = lambda row: served.append(1) or mode(row)  # type: ignore[method-assign]
    server.served = served  # type: ignore[attr-defined]
    yield server
    server.stop()


def _args(run: Path, out: Path, server: object, *extra: str, sharded: bool = True) -> list[str]:
    """The download command line; ``server`` is a WorldServer or a base URL. ``sharded``: in
    img2dataset shards of ROWS_PER_SHARD rows."""
    via = server if isinstance(server, str) else server.url  # type: ignore[attr-defined]
    shards = ["--rows-per-shard", str(ROWS_PER_SHARD)] if sharded else []
    return [
        "curate", "download", str(run), "--out", str(out), "--via", via,
        "--threads", "2", "--image-size", "64", "--timeout", "30", *shards, *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def reference(run_dir: Path, fast_server: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted download of ``run_dir``, in img2dataset's parquet format and batches of 3
    images: the kill tests download webdataset shards in one batch each, and must agree with it."""
    out = tmp_path_factory.mktemp("dl-ref") / "shards"
    assert main(_args(run_dir, out, fast_server, "--output-format", "parquet", "--batch-rows", "3")) == 0
    return out


def _outputs(out: Path) -> dict:
    """What a download leaves, but for timings, server port, format and batch size: status, kept,
    dropped, stats, and every file name outside images/ (so no temp file is left behind)."""

    def rows(folder: str) -> list[dict]:
        return pq.read_table(out / folder).sort_by("row_id").to_pylist()

    stats = json.loads((out / "stats.json").read_text())
    for stage in stats["post_download"]["stages"]:
        del stage["seconds"]
    for option in ("via", "output_format", "batch_rows"):
        del stats["options"][option]
    files = [p.relative_to(out) for p in out.rglob("*") if p.is_file()]
    return {
        "status": pq.read_table(out / "status.parquet").to_pylist(),
        "kept": rows("kept"),
        "dropped": rows("dropped"),
        "stats": stats,
        "files": sorted(str(p) for p in files if p.parts[0] != "images"),
    }


def test_reference_covers_what_resume_must_redo(reference: Path) -> None:
    """The reference has what the kill tests compare: failures, drops, duplicates across shards."""
    status = pq.read_table(reference / "status.parquet")
    assert status.num_rows == 36 and sum(s != "success" for s in status.column("status").to_pylist()) == 2
    dropped = pq.read_table(reference / "dropped").to_pylist()
    duplicates = [d for d in dropped if d["reason"] == "duplicate_image"]
    assert {d["row_id"] for d in duplicates} == {32, 33, 34, 35} - {
        d["row_id"] for d in dropped if d["stage"] == "resolution"
    }
    assert any(d["stage"] == "resolution" for d in dropped) and duplicates
    parts = sorted(p.name for p in (reference / "kept").iterdir())
    assert parts == [f"part-001-{i:05d}.parquet" for i in range(5)]  # one part per img2dataset shard
    assert not list(reference.rglob("*.tmp"))
    assert not list((reference / "images" / "attempt-1").glob("*.tar"))  # the parquet format's path


# -- kills ------------------------------------------------------------------------------------------


def _dead(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE  # nothing reaps orphans here; a zombie runs nothing
    except psutil.NoSuchProcess:
        return True


def _group(pgid: int) -> list[psutil.Process]:
    """Live processes of process group ``pgid``."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and not _dead(proc):
                found.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return found


def _wait_for(what: str, check: object, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():  # type: ignore[operator]
        assert proc.poll() is None, f"download ended (status {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {WAIT_S} s"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_kill_mid_download_leaves_no_process_and_rerun_matches(
    signum: int,
    run_dir: Path,
    slow_server: object,
    reference: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "shards"
    log = tmp_path / "stderr.txt"
    served: list[int] = slow_server.served  # type: ignore[attr-defined]
    served.clear()
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "t2iscope.cli", *_args(run_dir, out, slow_server)], stderr=err
        )
    try:
        # past the first shard (8 rows), into the second
        _wait_for("12 answered requests", lambda: len(served) >= 12, proc)
        tree = psutil.Process(proc.pid).children(recursive=True)
        assert len(tree) >= 2  # img2dataset and its worker(s)
        groups = {os.getpgid(p.pid) for p in tree if not _dead(p)} - {os.getpgid(0)}

        # a second writer of the same --out is refused with one line, and changes nothing
        assert main(_args(run_dir, out, slow_server)) == 2
        message = capsys.readouterr().err.strip()
        assert re.fullmatch(rf"t2iscope: error: {re.escape(str(out))}: in use by pid {proc.pid} .*", message)

        assert len(served) < 30, "the kill came too late to be mid-download"
        os.kill(proc.pid, signum)
        proc.wait(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + WAIT_S
    while any(not _dead(p) for p in tree) or any(_group(g) for g in groups):
        assert time.monotonic() < deadline, f"still running: {[p for p in tree if not _dead(p)]}"
        time.sleep(0.05)
    # Orphans would have gone on to fetch every row (the old code's did); the group died instead.
    assert len(served) < 36, "img2dataset went on downloading after the command was killed"
    assert "Albumentations" not in log.read_text()  # no PyPI version check in img2dataset's child
    assert not (out / "stats.json").exists()
    if signum == signal.SIGKILL:  # (one rerun is enough: the resumed state is the same)
        assert main(_args(run_dir, out, slow_server)) == 0  # at once: nothing left to collide with
        assert _outputs(out) == _outputs(reference)


def _killed_at(point: str, run: Path, out: Path, server: object, after: int = 0) -> None:
    """Run the download in a child that kills itself with SIGKILL at ``point``: entering
    post-download, or once ``after`` post-download shards are done."""
    hook = {
        "post": "download._post_download_stored = lambda *a, **k: die()",
        "unit": textwrap.dedent(
            f"""
            real = download._Post._unit
            def unit(self, *a, **k):
                if len(list((self.out / "_state" / "post").glob("unit-*.json"))) >= {after}:
                    die()
                return real(self, *a, **k)
            download._Post._unit = unit
            """
        ),
    }[point]
    code = "\n".join(
        [
            "import os, signal, sys",
            "from t2iscope.curate import download",
            "from t2iscope.cli import main",
            "def die(): os.kill(os.getpid(), signal.SIGKILL)",
            hook,
            f"main({_args(run, out, server)!r})",
        ]
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def test_kills_after_status_and_during_post_download_resume(
    run_dir: Path, fast_server: object, reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "shards"
    _killed_at("post", run_dir, out, fast_server)
    assert (out / "status.parquet").exists() and not (out / "stats.json").exists()
    # the plain rerun resumes (it refused before: "already downloaded; use --retry-failed"); killed
    # again after three of the five post-download shards
    _killed_at("unit", run_dir, out, fast_server, after=3)
    finished = sorted(p.name for p in (out / "_state" / "post").glob("unit-*.json"))
    assert finished == [f"unit-001-{i:05d}.json" for i in range(3)]
    redone: list[str] = []
    real = download._Post._unit
    monkeypatch.setattr(download._Post, "_unit", lambda self, u, n: redone.append(u.name) or real(self, u, n))
    assert main(_args(run_dir, out, fast_server)) == 0
    assert redone == ["001-00003", "001-00004"]  # finished shards are not scored again
    assert _outputs(out) == _outputs(reference)  # dedup keys of the finished shards were reloaded


def test_complete_download_still_refuses_a_plain_rerun(
    run_dir: Path, fast_server: object, reference: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _outputs(reference)
    assert main(_args(run_dir, reference, fast_server, sharded=False)) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"t2iscope: error: {reference}: already downloaded; use --retry-failed, or choose another --out"
    )
    assert _outputs(reference) == before


def test_batches_are_bounded_and_counts_exact(
    reference: Path, run_dir: Path, fast_server: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Post-download sees at most --batch-rows images at a time; the outputs are those of one batch
    per shard (dedup state and tallies carry across batches). Re-run on the reference's downloads."""
    out = tmp_path / "shards"
    shutil.copytree(reference, out)
    (out / "stats.json").unlink()
    shutil.rmtree(out / "_state" / "post")
    sizes: list[int] = []
    real = download.LocalEngine.apply_stage

    def stage(alive: pa.Table, *args: object) -> pa.Table:
        sizes.append(alive.num_rows)
        return real(alive, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(download.LocalEngine, "apply_stage", stage)
    assert main([*_args(run_dir, out, fast_server), "--batch-rows", "2"]) == 0
    assert sizes and max(sizes) <= 2
    assert _outputs(out) == _outputs(reference)


# -- folders and options refused before any work ----------------------------------------------------


@pytest.fixture
def no_img2dataset(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    started: list[Path] = []
    monkeypatch.setattr(download, "_spawn_img2dataset", lambda kwargs, folder: started.append(folder))
    return started


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--via", "notaurl"], r"--via: expected an http\(s\) URL with a host, got 'notaurl'"),
        (["--via", "ftp://mirror/x"], r"--via: expected an http\(s\) URL with a host"),
        (["--via", "http://"], r"--via: expected an http\(s\) URL with a host"),
        (["--via", "http://h:99999"], r"--via: expected an http\(s\) URL with a host, got .*99999"),
        (["--via", "http://h/?x=1"], r"--via: expected a base URL without query or fragment"),
        (["--threads", "0"], r"--threads: expected an integer >= 1 and <= 1024, got 0"),
        (["--threads", "-2"], r"--threads: expected an integer >= 1 and <= 1024, got -2"),
        (["--threads", "100000"], r"--threads: expected an integer >= 1 and <= 1024, got 100000"),
        (["--processes", "0"], r"--processes: expected an integer >= 1 and <= 256, got 0"),
        (["--timeout", "-1"], r"--timeout: expected a number > 0 and <= 600.0, got -1.0"),
        (["--timeout", "0"], r"--timeout: expected a number > 0"),
        (["--timeout", "nan"], r"--timeout: expected a finite number, got nan"),
        (["--image-size", "0"], r"--image-size: expected an integer >= 1 and <= 4096, got 0"),
        (["--image-size", "100000"], r"--image-size: expected an integer >= 1 and <= 4096"),
        (["--rows-per-shard", "0"], r"--rows-per-shard: expected an integer >= 1"),
        (["--batch-rows", "0"], r"--batch-rows: expected an integer >= 1"),
        (["--resize-mode", "bogus"], r"Invalid value for '--resize-mode': 'bogus' is not one of"),
        (["--output-format", "files"], r"Invalid value for '--output-format': 'files' is not one of"),
    ],
)
def test_bad_option_is_one_line_before_any_work(
    extra: list[str],
    message: str,
    run_dir: Path,
    tmp_path: Path,
    no_img2dataset: list[Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "shards"
    args = _args(run_dir, out, "http://127.0.0.1:9", *extra, sharded=False)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("t2iscope: error: ") and "\n" not in err and re.search(message, err), err
    assert no_img2dataset == [] and not out.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (DownloadOptions(threads=0), r"DownloadOptions\.threads: expected an integer >= 1"),
        (DownloadOptions(via="notaurl"), r"DownloadOptions\.via: expected an http\(s\) URL"),
        (DownloadOptions(resize_mode="bogus"), r"DownloadOptions\.resize_mode 'bogus'; valid: no, "),  # type: ignore[arg-type]
        (DownloadOptions(output_format="files"), r"DownloadOptions\.output_format 'files'; valid: "),  # type: ignore[arg-type]
        (DownloadOptions(timeout=float("inf")), r"DownloadOptions\.timeout: expected a finite number"),
        (DownloadOptions(image_size=True), r"DownloadOptions\.image_size: expected an integer, got true"),
    ],
)
def test_python_api_refuses_the_same_values(
    options: DownloadOptions, message: str, run_dir: Path, tmp_path: Path, no_img2dataset: list[Path]
) -> None:
    with pytest.raises(ConfigError, match=message):
        download_run(run_dir, tmp_path / "shards", options)
    assert no_img2dataset == [] and not (tmp_path / "shards").exists()


def test_choices_are_img2dataset_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """--resize-mode offers exactly img2dataset's ResizeMode; the CLI's lists are the Literals'."""
    monkeypatch.setenv("NO_ALBUMENTATIONS_UPDATE", "1")
    from img2dataset.resizer import ResizeMode

    from t2iscope.curate.cli import download_cmd

    assert literal_choices(download.ResizeMode) == [m.name for m in ResizeMode]
    choices = {p.name: list(p.type.choices) for p in download_cmd.params if hasattr(p.type, "choices")}
    assert choices == {
        "output_format": literal_choices(download.OutputFormat),
        "resize_mode": literal_choices(download.ResizeMode),
        "engine": literal_choices(download.Engine),
    }


@pytest.mark.parametrize("where", ["the run itself", "a folder with other files", "another run's download"])
def test_out_holding_something_else_is_refused(
    where: str,
    run_dir: Path,
    reference: Path,
    tmp_path: Path,
    no_img2dataset: list[Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    if where == "the run itself":  # was: its kept/part-00000.parquet overwritten by the download's
        out = run_dir
        message = "exists and is not a download folder"
    elif where == "a folder with other files":
        out = tmp_path / "mine"
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        message = "exists and is not a download folder"
    else:
        other = tmp_path / "other-run"
        shutil.copytree(run_dir, other)
        table = pq.read_table(other / "kept")
        pq.write_table(table.slice(1), other / "kept" / "part-00000.parquet")
        run_dir, out, message = other, reference, "holds the download of another run"
    before = sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*"))
    assert main(_args(run_dir, out, "http://127.0.0.1:9", sharded=False)) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"t2iscope: error: {out}: {message}; choose another --out"
    assert no_img2dataset == [] and sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*")) == before


def test_out_that_img2dataset_would_misread_is_refused(
    run_dir: Path, tmp_path: Path, no_img2dataset: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """fsspec reads ``a::b`` as a chain of file systems: img2dataset failed with a traceback."""
    out = tmp_path / "a::b"
    assert main(_args(run_dir, out, "http://127.0.0.1:9", sharded=False)) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"t2iscope: error: {out}: '::' chains file systems in img2dataset's paths; choose another --out"
    )
    assert no_img2dataset == [] and not out.exists()


def test_in_memory_post_download_matches_the_streamed_one(
    reference: Path, run_dir: Path, tmp_path: Path
) -> None:
    """``post_download`` (images in memory) and ``download_run`` (streamed) keep the same rows."""
    from t2iscope.curate.download import _shard_units, load_rows, post_download

    status = pq.read_table(reference / "status.parquet")
    images = {}
    for unit in _shard_units(reference / "images" / "attempt-1", 1):
        for ids, blobs in unit.batches(4):
            keys = status.column("key").take(ids).to_pylist()
            images.update({("attempt-1", k): b for k, b in zip(keys, blobs.to_pylist(), strict=True)})
    summary = post_download(RECIPE, load_rows(run_dir), status, images, tmp_path, batch_rows=5)
    stats = json.loads((reference / "stats.json").read_text())["post_download"]
    for s in (*summary["stages"], *stats["stages"]):
        s.pop("seconds")
    assert summary == stats
    for folder in ("kept", "dropped"):
        got = pq.read_table(tmp_path / folder).sort_by("row_id")
        assert got.equals(pq.read_table(reference / folder).sort_by("row_id"))


# -- more hostile states ------------------------------------------------------------------------------


def test_resuming_an_attempt_with_other_file_options_is_refused(
    reference: Path, run_dir: Path, fast_server: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kill inside img2dataset leaves its attempt record; img2dataset's incremental mode would mix
    two image sizes in one attempt, so the rerun must use the same file-shaping options."""
    out = tmp_path / "shards"
    shutil.copytree(reference, out)
    for name in ("stats.json", "status.parquet"):
        (out / name).unlink()
    options = {**json.loads((reference / "stats.json").read_text())["options"], "output_format": "parquet"}
    (out / "_state" / "attempt-1.json").write_text(json.dumps({"attempt": 1, "options": options}))
    args = _args(run_dir, out, fast_server, "--output-format", "parquet", "--image-size", "128")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"t2iscope: error: {out}: attempt 1 was interrupted with --image-size 64; rerun with the same "
        "--image-size to resume it (not 128), or choose another --out"
    )


def test_unfinished_img2dataset_shards_fail_and_resume(
    run_dir: Path, tmp_path: Path, no_img2dataset: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """img2dataset exits 0 after giving up on a shard: say so, keep what is done for the rerun."""
    out = tmp_path / "shards"
    assert main(_args(run_dir, out, "http://127.0.0.1:9")) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"t2iscope: error: {out}/images/attempt-1: img2dataset finished 0 of 5 shards; "
        "rerun to resume the rest"
    )
    assert (out / "_state" / "attempt-1.json").exists() and not (out / "status.parquet").exists()


@pytest.mark.parametrize("damage", ["truncated", "foreign"])
def test_damaged_status_is_one_line(
    damage: str, reference: Path, run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "shards"
    shutil.copytree(reference, out)
    (out / "stats.json").unlink()
    status = out / "status.parquet"
    if damage == "truncated":
        status.write_bytes(status.read_bytes()[:100])
    else:
        pq.write_table(pa.table({"x": [1]}), status)
    assert main(_args(run_dir, out, "http://127.0.0.1:9")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"t2iscope: error: {status}: ") and "\n" not in err
    assert err.endswith("delete --out and download again")


def test_run_without_kept_rows_writes_nothing(
    tmp_path: Path, no_img2dataset: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    (run / "kept").mkdir(parents=True)
    pq.write_table(
        pa.table({"URL": pa.array([], pa.string()), "TEXT": pa.array([], pa.string())}),
        run / "kept" / "part-00000.parquet",
    )
    (run / "recipe.resolved.yaml").write_text(RECIPE.to_yaml())
    out = tmp_path / "shards"
    assert main(_args(run, out, "http://127.0.0.1:9", sharded=False)) == 1
    assert capsys.readouterr().err.strip() == f"t2iscope: error: {run}: no kept rows to download"
    assert no_img2dataset == [] and not out.exists()
