"""Offline (issue 16, fault 6): a command opens no connection but to the URLs it was asked to fetch.

Each command runs as a child Python with a ``sitecustomize`` (``GUARD``) on PYTHONPATH, so the
CLI, img2dataset and img2dataset's spawned workers all load it: it refuses every connection,
datagram and name lookup except to the local world server, and appends each refused attempt
(what, host, port, pid, argv, stack) to a log. The environment starts without any of the settings
``t2iscope.offline`` sets, so the product must set them itself (the albumentations update check
to PyPI is the leak that was found). The guard sees Python sockets only: a library's C code
(DuckDB's extension installer, for one) would pass unseen.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from t2iscope import offline
from t2iscope.curate.world.make import make_world
from t2iscope.curate.world.serve import WorldServer, local_url, serve_world
from t2iscope.dashboards.cli import streamlit_command

GUARD = '''\
"""Test guard: refuse and log every connection and name lookup but to T2I_GUARD_ALLOW (host:port)."""
import errno, json, os, socket, sys, traceback

_LOG, _ALLOW = os.environ["T2I_GUARD_LOG"], os.environ["T2I_GUARD_ALLOW"]
_INET = (socket.AF_INET, socket.AF_INET6)
_NO_LOOKUP = {None, "", b"", "localhost", b"localhost"}  # resolved from /etc/hosts, no query


def _refused(what, host, port):
    entry = {"what": what, "host": str(host), "port": port, "pid": os.getpid(), "argv": sys.argv[:3],
             "stack": [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_stack()[-24:-2]]}
    with open(_LOG, "a") as log:
        log.write(json.dumps(entry) + "\\n")
    return ConnectionRefusedError(errno.ECONNREFUSED, f"offline guard refused {what} to {host}:{port}")


def _numeric(host):
    for family in _INET:
        try:
            socket.inet_pton(family, host.decode() if isinstance(host, bytes) else host)
            return True
        except (OSError, TypeError, ValueError):
            pass
    return False


def _wrap_address(name, position):
    real = getattr(socket.socket, name)

    def guarded(self, *args):
        address = args[position]
        if self.family in _INET and f"{address[0]}:{address[1]}" != _ALLOW:
            error = _refused(name, address[0], address[1])
            if name == "connect_ex":
                return errno.ECONNREFUSED
            raise error
        return real(self, *args)

    setattr(socket.socket, name, guarded)


def _wrap_lookup(name):
    real = getattr(socket, name)

    def guarded(host, *args, **kwargs):
        if host not in _NO_LOOKUP and not _numeric(host):
            _refused(name, host, args[0] if args else None)
            raise socket.gaierror(socket.EAI_NONAME, f"offline guard refused looking up {host}")
        return real(host, *args, **kwargs)

    setattr(socket, name, guarded)


for _name in ("connect", "connect_ex"):
    _wrap_address(_name, 0)
_wrap_address("sendto", -1)  # sendto(data, address) and sendto(data, flags, address)
for _name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
    _wrap_lookup(_name)
'''


# Settings that turn a phone-home off, whether t2iscope.offline sets them or not (tests/conftest.py
# sets the first): a child starts without them, so only what the product sets itself counts.
UNSET = {
    "NO_ALBUMENTATIONS_UPDATE",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HUB_DISABLE_TELEMETRY",
    "DO_NOT_TRACK",
    "WANDB_MODE",
    *offline.FORCED,
    *offline.DEFAULTS,
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-row world; the server renders its images on the fly."""
    out = tmp_path_factory.mktemp("offline") / "w"
    make_world(out, 32, seed=6, images=False, progress=False)
    return out


@pytest.fixture(scope="module")
def server(world: Path) -> Iterator[WorldServer]:
    """The world served without failure modes (noai rows still say X-Robots-Tag: noai)."""
    server = serve_world(world, rates={})
    yield server
    server.stop()


def guarded(
    args: list[str], tmp_path: Path, server: WorldServer
) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run ``python ARGS`` under GUARD with none of t2iscope.offline's settings in its environment;
    returns the finished process and the refused attempts it logged."""
    (tmp_path / "guard").mkdir(exist_ok=True)
    (tmp_path / "guard" / "sitecustomize.py").write_text(GUARD)
    log = tmp_path / "refused.jsonl"
    log.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    host, port = server.server_address[:2]
    env |= {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path / "guard"), env.get("PYTHONPATH")])),
        "T2I_GUARD_LOG": str(log),
        "T2I_GUARD_ALLOW": f"{host}:{port}",
    }
    done = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    refused = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, refused


RECIPE = """\
name: offline
stages:
  - domain: {drop: [example.com]}
  - language: {keep: [en]}
post_download:
  - dedup: {by: image}
"""


def test_curate_run_and_download_open_no_other_connection(
    world: Path, server: WorldServer, tmp_path: Path
) -> None:
    """`curate run` (URL parsing, language ID) and `curate download` (img2dataset and its spawned
    workers, then post-download) with nothing set in the environment: not one refused attempt."""
    (tmp_path / "offline.yaml").write_text(RECIPE)
    cli = ["-m", "t2iscope.cli", "curate"]
    args = ["run", "offline.yaml", "--input", str(world), "--out", "run"]
    done, refused = guarded([*cli, *args], tmp_path, server)
    assert done.returncode == 0, done.stderr[-2000:]
    assert refused == []
    args = ["download", "run", "--out", "shards", "--via", server.url, "--threads", "4", "--timeout", "10"]
    done, refused = guarded([*cli, *args], tmp_path, server)
    assert done.returncode == 0, done.stderr[-2000:]
    assert refused == [], json.dumps(refused, indent=1)
    # every row came from the allowed server, but those whose X-Robots-Tag says noai
    status = pq.read_table(tmp_path / "shards" / "status.parquet").to_pylist()
    assert any(s["status"] == "success" for s in status)
    assert all(s["status"] == "success" or "X-Robots-Tag" in s["error_message"] for s in status)


def test_the_guard_refuses_and_logs_what_it_should(world: Path, server: WorldServer, tmp_path: Path) -> None:
    """The guard can fail the test above: outbound attempts are refused and logged, the albumentations
    update check (what `curate download` leaked) included, while the allowed server still answers."""
    url = pq.read_table(world / "metadata").column("URL")[0].as_py()
    code = (
        "import urllib.request\n"
        f"assert urllib.request.urlopen({local_url(url, server.url)!r}).status == 200\n"
        "for target in ('http://pypi.org/', 'http://203.0.113.9:8080/'):\n"
        "    try:\n"
        "        urllib.request.urlopen(target, timeout=2)\n"
        "    except OSError:\n"
        "        print('blocked')\n"
        "import albumentations\n"
    )
    done, refused = guarded(["-c", code], tmp_path, server)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["blocked", "blocked"]
    hosts = [(r["what"], r["host"]) for r in refused]
    assert ("getaddrinfo", "pypi.org") in hosts and ("connect", "203.0.113.9") in hosts
    # albumentations asked PyPI at import: the one lookup its check made, with the stack naming it
    checks = [r for r in refused if any("check_version" in line for line in r["stack"])]
    assert [(r["what"], r["host"]) for r in checks] == [("getaddrinfo", "pypi.org")]


def test_children_get_the_settings_and_users_keep_theirs(server: WorldServer, tmp_path: Path) -> None:
    """t2iscope.children starts every child with the checks off, whatever the caller's environment;
    a user's explicit HF_HUB_OFFLINE=0 (fetch from the hub on purpose) is kept."""
    names = sorted({**offline.FORCED, **offline.DEFAULTS})
    child = f"import json, os; print(json.dumps({{k: os.environ.get(k) for k in {names!r}}}))"
    code = (
        "import os, sys\n"
        "from t2iscope.children import run_python\n"
        f"assert run_python(['-c', {child!r}]) == 0\n"
        "os.environ['HF_HUB_OFFLINE'] = os.environ['NO_ALBUMENTATIONS_UPDATE'] = '0'\n"
        f"sys.exit(run_python(['-c', {child!r}]))\n"
    )
    done, refused = guarded(["-c", code], tmp_path, server)
    assert done.returncode == 0, done.stderr[-2000:]
    plain, theirs = (json.loads(line) for line in done.stdout.splitlines())
    assert plain == {**offline.DEFAULTS, **offline.FORCED}
    assert theirs == {**offline.DEFAULTS, "HF_HUB_OFFLINE": "0", **offline.FORCED}
    assert refused == []


@pytest.mark.parametrize(("host", "shown"), [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", socket.gethostname())])
def test_streamlit_sends_no_usage_statistics_and_looks_up_no_external_ip(
    host: str, shown: str, tmp_path: Path
) -> None:
    """The dashboard's Streamlit child: no usage statistics, and no external-IP lookup on 0.0.0.0."""
    cmd = streamlit_command(tmp_path, 8501, host)
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"
    # Bound to 0.0.0.0 without browser.serverAddress, Streamlit asked checkip.amazonaws.com (and
    # "connected" a UDP socket to 8.8.8.8) to print its URLs: seen under GUARD before the fix.
    assert cmd[cmd.index("--browser.serverAddress") + 1] == shown
