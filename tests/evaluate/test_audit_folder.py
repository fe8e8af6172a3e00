"""An audit folder holds exactly one run, survives failed and killed runs, and has one writer.

Issue 14 items 7, 8, 9 and 13: a reused folder mixed two runs' tables in the report; a failed run
left ``audit.resolved.yaml`` behind; two writers were not kept apart; a damaged or foreign table
reached the report as ``ArrowInvalid``/``KeyError``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from t2iscope import fileio
from t2iscope.cli import main
from t2iscope.errors import ConfigError, DataError
from t2iscope.evaluate.config import load_config
from t2iscope.evaluate.report import build_report
from t2iscope.evaluate.runner import run_audits


def config(path: Path, inputs: dict, audits: dict) -> Path:
    path.write_text(yaml.safe_dump({"inputs": inputs, "audits": audits}))
    return path


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes, but hidden ones (lock, staging, temp files)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not str(p.relative_to(folder)).startswith(".")
    }


def nav(page: str) -> list[str]:
    """The audits a report page links to, in order."""
    return [part.split("'")[0] for part in page.split("<a href='#")[1:]]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    return code, err


@pytest.fixture
def two_configs(tmp_path: Path, world_dir: Path, gen_dir: Path) -> tuple[Path, Path]:
    """Domains and limbs (judged, so judgments.parquet too); then domains alone."""
    both = config(
        tmp_path / "both.yaml",
        {"world": str(world_dir), "generation": str(gen_dir)},
        {
            "domains": {},
            "limbs": {},
        },
    )
    one = config(tmp_path / "one.yaml", {"world": str(world_dir)}, {"domains": {"top": 5}})
    return both, one


def test_a_different_run_is_refused_then_replaces_the_folder_with_overwrite(
    tmp_path: Path, two_configs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    both, one = two_configs
    out = tmp_path / "A"
    assert run_cli(["evaluate", "run", str(both), "--out", str(out)], capsys)[0] == 0
    assert run_cli(["evaluate", "report", str(out)], capsys)[0] == 0
    before = files(out)
    assert {"limbs.parquet", "judgments.parquet", "report.html"} <= set(before)
    code, err = run_cli(["evaluate", "run", str(one), "--out", str(out)], capsys)
    assert (code, err) == (
        2,
        f"t2iscope: error: {out}: holds a different audit run; pass --overwrite to replace it or choose "
        "another --out",
    )
    assert files(out) == before
    assert run_cli(["evaluate", "run", str(one), "--out", str(out), "--overwrite"], capsys)[0] == 0
    # exactly the new run: the old run's other tables, its judgments and its report are gone
    assert set(files(out)) == {"domains.parquet", "audit.resolved.yaml", "run.json"}
    assert run_cli(["evaluate", "report", str(out)], capsys)[0] == 0
    assert nav((out / "report.html").read_text()) == ["domains"]


def test_the_same_config_reruns_in_place(tmp_path: Path, world_dir: Path) -> None:
    cfg = load_config(config(tmp_path / "a.yaml", {"world": str(world_dir)}, {"domains": {}}))
    out = tmp_path / "A"
    run_audits(cfg, out)
    build_report(out)
    run_audits(cfg, out)  # like curate run resuming an identical run: no --overwrite needed
    assert set(files(out)) == {"domains.parquet", "audit.resolved.yaml", "run.json"}  # report is stale


def test_the_report_shows_exactly_the_audits_run_json_lists(tmp_path: Path, world_dir: Path) -> None:
    out = tmp_path / "A"
    run_audits(load_config(config(tmp_path / "a.yaml", {"world": str(world_dir)}, {"domains": {}})), out)
    stray = pd.read_parquet(out / "domains.parquet").assign(audit="language_mix")
    fileio.write_parquet(out / "language_mix.parquet", stray)  # a table of no run, or of an old one
    fileio.write_parquet(out / "other.parquet", pd.DataFrame({"x": [1]}))
    assert nav(build_report(out).read_text()) == ["domains"]


def test_a_folder_holding_other_files_is_refused(tmp_path: Path, world_dir: Path) -> None:
    out = tmp_path / "A"
    out.mkdir()
    (out / "notes.md").write_text("mine")
    cfg = load_config(config(tmp_path / "a.yaml", {"world": str(world_dir)}, {"domains": {}}))
    for overwrite in (False, True):
        with pytest.raises(ConfigError, match=r"A: not an audit folder \(holds 'notes\.md'\)"):
            run_audits(cfg, out, overwrite=overwrite)
    assert files(out) == {"notes.md": b"mine"}


def test_a_failed_run_leaves_the_folder_as_it_was(
    tmp_path: Path, world_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fileio.write_bytes(tmp_path / "damaged.parquet", b"PAR1" + os.urandom(64))
    ok = load_config(config(tmp_path / "ok.yaml", {"world": str(world_dir)}, {"domains": {}}))
    bad = load_config(
        config(tmp_path / "bad.yaml", {"world": str(world_dir), "data": ["damaged.parquet"]}, {"domains": {}})
    )
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "A"
    run_audits(ok, out)
    before = files(out)
    for overwrite in (True, False):  # a previous run, and then none
        with pytest.raises(DataError, match=r"bad\.yaml: audits\.domains: .*damaged\.parquet"):
            run_audits(bad, out if overwrite else tmp_path / "B", overwrite=overwrite)
    assert files(out) == before
    assert files(tmp_path / "B") == {}  # no audit.resolved.yaml, no table: nothing of the failed run
    assert not (out / ".staging").exists() and not (tmp_path / "B" / ".staging").exists()


def test_an_interrupted_run_reads_as_unfinished_and_the_next_run_replaces_it(
    tmp_path: Path, world_dir: Path
) -> None:
    out = tmp_path / "A"
    cfg = load_config(config(tmp_path / "a.yaml", {"world": str(world_dir)}, {"domains": {}}))
    run_audits(cfg, out)
    (out / "run.json").unlink()  # as a kill between commit's first and last step leaves it
    fileio.write_text(out / ".staging" / "domains.parquet", "half")
    fileio.write_text(out / ".run.json.x1y2z3ab.tmp", "{")
    with pytest.raises(DataError, match=r"A: unfinished audit run \(no run\.json\)"):
        build_report(out)
    other = load_config(config(tmp_path / "b.yaml", {"world": str(world_dir)}, {"domains": {"top": 3}}))
    run_audits(other, out)  # no --overwrite needed: nothing finished is replaced
    assert set(files(out)) == {"domains.parquet", "audit.resolved.yaml", "run.json"}
    assert not (out / ".staging").exists() and not (out / ".run.json.x1y2z3ab.tmp").exists()


# A second process running a real audit run, held inside its first audit until the test lets it go.
HOLDER = """
import sys
from t2iscope.evaluate import runner
from t2iscope.evaluate.audits import AUDITS
from t2iscope.evaluate.config import load_config

audit = AUDITS.get("domains")
run = audit.fn

def held(ctx, **params):
    print("running", flush=True)
    sys.stdin.readline()
    return run(ctx, **params)

object.__setattr__(audit, "fn", held)
runner.run_audits(load_config(sys.argv[1]), sys.argv[2], overwrite=True)
"""


def test_one_writer_at_a_time_and_a_killed_writer_changes_nothing(
    tmp_path: Path, two_configs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    both, one = two_configs
    out = tmp_path / "A"
    assert run_cli(["evaluate", "run", str(one), "--out", str(out)], capsys)[0] == 0
    before = files(out)
    for finish in (False, True):
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(both), str(out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "running\n"
            for args in (["run", str(one), "--out", str(out), "--overwrite"], ["report", str(out)]):
                code, err = run_cli(["evaluate", *args], capsys)
                assert code == 2 and err.startswith(f"t2iscope: error: {out}: in use by pid {holder.pid} ")
            if finish:
                assert holder.communicate("\n", timeout=300)[0] == "" and holder.returncode == 0
            else:
                holder.send_signal(signal.SIGKILL)
                holder.wait(timeout=60)
        finally:
            if holder.poll() is None:
                holder.kill()
        if not finish:  # killed inside its first audit: the previous run is untouched and readable
            assert files(out) == before
            assert run_cli(["evaluate", "report", str(out)], capsys)[0] == 0
            before = files(out)
    assert nav(build_report(out).read_text()) == ["domains", "limbs"]


@pytest.fixture(scope="module")
def finished(world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("finished")
    cfg = config(root / "a.yaml", {"world": str(world_dir)}, {"domains": {}})
    run_audits(load_config(cfg), root / "A")
    return root / "A"


def _truncated(t: Path) -> None:
    fileio.write_bytes(t, t.read_bytes()[:100])


def _random_bytes(t: Path) -> None:
    fileio.write_bytes(t, b"PAR1" + bytes(range(256)) * 4 + b"PAR1")


def _no_metric(t: Path) -> None:
    fileio.write_parquet(t, pd.DataFrame({"x": [1], "value": [0.5]}))


def _other_audit(t: Path) -> None:
    fileio.write_parquet(t, pd.read_parquet(t).assign(audit="limbs"))


def _missing_slice(t: Path) -> None:
    fileio.write_parquet(t, pd.read_parquet(t).drop(columns=["level"]))


def _text_values(t: Path) -> None:
    fileio.write_parquet(t, pd.read_parquet(t).assign(value="high"))


def _bad_run_json(t: Path) -> None:
    fileio.write_text(t.parent / "run.json", "{not json")


def _unknown_audit(t: Path) -> None:
    fileio.write_json(t.parent / "run.json", {"audits": ["domains", "bias"]})


def _no_audits(t: Path) -> None:
    fileio.write_json(t.parent / "run.json", [1, 2])


def _listed_but_missing(t: Path) -> None:
    t.unlink()


def _generation_run(t: Path) -> None:
    fileio.write_json(t.parent / "run.json", {"suite": "limbs-real", "model_id": "embedded-sd"})


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncated, r"domains\.parquet: unreadable parquet \(ArrowInvalid\)"),
        (_random_bytes, r"domains\.parquet: unreadable parquet \(ArrowInvalid\)"),
        (_no_metric, r"domains\.parquet: not an audit table \(missing column\(s\) audit, judge, metric, n,"),
        (_other_audit, r"domains\.parquet: holds rows of audit limbs, expected 'domains'"),
        (_missing_slice, r"domains\.parquet: not a table the 'domains' audit writes \(KeyError: 'level'\)"),
        (_text_values, r"domains\.parquet: column value holds string, expected numbers"),
        (_bad_run_json, r"run\.json: not valid JSON"),
        (_unknown_audit, r"run\.json: unknown audit 'bias'; valid: culture, domains"),
        (_no_audits, r"run\.json: 'audits' must list the run's audit names"),
        (_listed_but_missing, r"domains\.parquet: missing, though run\.json lists audit 'domains'"),
        (_generation_run, r"a generation folder \(suite 'limbs-real'\), not an audit folder"),
    ],
)
def test_damaged_or_foreign_tables_are_one_line_naming_the_file(
    finished: Path,
    tmp_path: Path,
    damage: Callable[[Path], None],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "A"
    for name, data in files(finished).items():
        fileio.write_bytes(out / name, data)
    damage(out / "domains.parquet")
    code, err = run_cli(["evaluate", "report", str(out)], capsys)
    assert code == 1 and err.startswith("t2iscope: error: ") and str(out) in err
    assert re.search(message, err), err
    assert not (out / "report.html").exists()


def test_an_empty_or_missing_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["evaluate", "report", str(tmp_path)], capsys) == (
        1,
        f"t2iscope: error: {tmp_path}: no audit run here (no run.json); run `t2iscope evaluate run` first",
    )
    code, err = run_cli(["evaluate", "report", str(tmp_path / "nowhere")], capsys)
    assert code == 1 and err.endswith("nowhere: audit folder not found")
    code, err = run_cli(["evaluate", "report", "x" * 300], capsys)
    assert code == 1 and err == f"t2iscope: error: {'x' * 300}: File name too long"
    assert not (tmp_path / "nowhere").exists() and not any(tmp_path.iterdir())  # not even a lock
