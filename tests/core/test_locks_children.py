"""Output-folder locks and guarded child processes (issue 14: concurrency, kills, orphans)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from t2iscope.errors import ConfigError
from t2iscope.locks import LOCK_NAME, clear_folder, is_empty, output_lock

HOLD = (
    "import sys, time; from t2iscope.locks import output_lock\n"
    "with output_lock(sys.argv[1]):\n"
    "    print('held', flush=True); time.sleep(60)\n"
)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone(pids: list[int], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def test_second_writer_is_refused_naming_the_owner(tmp_path: Path) -> None:
    out = tmp_path / "out"
    refused = pytest.raises(ConfigError, match=rf"{out}: in use by pid {os.getpid()}")
    with output_lock(out), refused, output_lock(out):
        pass
    with output_lock(out):  # released on exit
        pass


def test_lock_of_a_killed_owner_does_not_block(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    with pytest.raises(ConfigError, match=f"in use by pid {proc.pid}"), output_lock(out):
        pass
    proc.kill()
    proc.wait()
    assert (out / LOCK_NAME).exists()  # the file stays; the kernel released the lock
    with output_lock(out):
        pass


def test_clear_folder_keeps_only_the_lock(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with output_lock(out):
        (out / "sub").mkdir()
        (out / "sub" / "a.txt").write_text("a")
        (out / "b.txt").write_text("b")
        (out / "link").symlink_to(tmp_path)  # a link is removed, not followed
        assert not is_empty(out)
        clear_folder(out)
        assert [p.name for p in out.iterdir()] == [LOCK_NAME]
        assert is_empty(out)
    assert tmp_path.exists()


PARENT = """
import sys
from t2iscope.children import run_python
code = ("import subprocess, time, os; p = subprocess.Popen(['sleep', '300']); "
        "print(os.getpid(), p.pid, flush=True); time.sleep(300)")
sys.exit(run_python(["-c", code]) & 0xFF)
"""


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP])
def test_child_and_its_workers_end_with_the_parent(signum: int) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child, worker = (int(x) for x in parent.stdout.readline().split())
    assert _alive(child) and _alive(worker)
    assert os.getpgid(child) == child != os.getpgid(parent.pid)  # its own process group
    parent.send_signal(signum)
    assert parent.wait(timeout=20) == -signum  # the parent still dies by the signal it got
    assert _gone([child, worker]), "an orphan outlived its parent"


def test_child_exit_status_comes_back() -> None:
    from t2iscope.children import run_python

    assert run_python(["-c", "import sys; sys.exit(3)"]) == 3
    assert run_python(["-c", "import sys; sys.exit(int(sys.stdin.read()))"], input="4") == 4
    with pytest.raises(ValueError):
        run_python(["python", "x"])


def test_a_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path / ("x" * 300), tmp_path / "file" / "sub"):
        with pytest.raises(ConfigError, match="cannot write there"), output_lock(bad):
            pass
