"""`t2iscope dashboard`: the streamlit command it runs, and its errors."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from t2iscope.cli import main
from t2iscope.dashboards.cli import APP, streamlit_command


def test_print_command_binds_localhost(tmp_path: Path, capsys):
    assert main(["dashboard", str(tmp_path), "--port", "8612", "--print-command"]) == 0
    cmd = shlex.split(capsys.readouterr().out)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8612"
    assert cmd[cmd.index("run") + 1] == str(APP)
    assert cmd[-2:] == ["--runs", str(tmp_path.resolve())]


def test_host_is_only_changed_when_asked(tmp_path: Path):
    cmd = streamlit_command(tmp_path, 9000, "0.0.0.0")
    assert cmd[cmd.index("--server.address") + 1] == "0.0.0.0"


def test_missing_folder_is_a_one_line_error(tmp_path: Path, capsys):
    assert main(["dashboard", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("t2iscope: error:") and "nope" in err and err.count("\n") == 1


@pytest.mark.parametrize("host", ["'; rm -rf /tmp/x", "no such host.invalid", "300.1.1.1", ""])
def test_a_host_that_is_no_address_is_refused_even_when_printing(tmp_path: Path, capsys, host: str):
    assert main(["dashboard", str(tmp_path), "--host", host, "--print-command"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("t2iscope: error: --host") and err.count("\n") == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def gone(proc: psutil.Process) -> bool:
    """Ended: PID 1 here does not reap orphans, so a zombie is as dead as it gets."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def serve(root: Path, port: int) -> subprocess.Popen:
    """`t2iscope dashboard ROOT --port PORT`, once its server answers."""
    cmd = [sys.executable, "-m", "t2iscope.cli", "dashboard", str(root), "--port", str(port)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return proc
        except OSError:
            pass
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "exited"
        time.sleep(0.2)
    raise AssertionError("the dashboard server did not come up")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_stopping_the_command_stops_its_server(tmp_path: Path, signum: int):
    """As a service manager or a test harness stops it: the signal goes to the CLI's pid only."""
    port = free_port()
    proc = serve(tmp_path, port)
    server = psutil.Process(proc.pid).children(recursive=True)
    group = os.getpgid(server[0].pid)
    try:
        assert any("streamlit" in " ".join(p.cmdline()) for p in server)
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == -signum  # it still dies by the signal it got
        # A killed process shows as a zombie once its main thread is gone, a moment before its
        # other threads (tornado's, holding the socket) are: poll both, with a generous bound.
        for _ in range(300):
            if all(gone(p) for p in server) and port_free(port):
                break
            time.sleep(0.2)
        left = [p for p in psutil.process_iter() if not gone(p) and _group(p) == group]
        assert not left, [p.cmdline() for p in left]
        assert port_free(port)
    finally:
        for p in server:
            with contextlib.suppress(psutil.Error):
                p.kill()


def _group(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except ProcessLookupError:
        return None


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["dashboard", str(tmp_path), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("t2iscope: error:") and f"port {port}" in err and err.count("\n") == 1
