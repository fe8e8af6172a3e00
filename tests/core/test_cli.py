"""The CLI root: help lists every area, errors are one line with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from t2iscope.cli import AREAS, main


def test_help_lists_every_area(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("world", "curate", "generate", "evaluate", "models", "dashboard"):
        assert name in out
    assert set(AREAS) == {"world", "curate", "generate", "evaluate", "models", "dashboard"}


@pytest.mark.parametrize("name", list(AREAS))
def test_each_area_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage:" in out
    assert "Example" in out and "t2iscope " in out.split("Example", 1)[1]


def test_unknown_option_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-such-option"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("t2iscope: error:")
    assert "\n" not in err


def test_unknown_command_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err.strip()
    assert "frobnicate" in err and "\n" not in err


def test_console_script_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "t2iscope.cli", "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert "t2iscope" in proc.stdout
