"""`t2iscope dashboard`: the streamlit command it runs, and its errors."""

from __future__ import annotations

import shlex
from pathlib import Path

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
