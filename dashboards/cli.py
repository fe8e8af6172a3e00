"""`t2iscope dashboard DIR`: start the Streamlit app over the runs under DIR."""

from __future__ import annotations

import errno
import ipaddress
import shlex
import socket
import sys
from pathlib import Path

import click

from t2iscope.children import run_python
from t2iscope.errors import ConfigError

APP = Path(__file__).with_name("app.py")


def streamlit_command(runs_dir: str | Path, port: int = 8501, host: str = "127.0.0.1") -> list[str]:
    """The ``streamlit run`` command line that serves the dashboards over ``runs_dir``.

    Offline (``t2iscope.offline``): no usage statistics, and ``browser.serverAddress`` names the
    address, else Streamlit bound to 0.0.0.0 asks checkip.amazonaws.com for an "External URL".
    """
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--browser.serverAddress",
        _display_address(host),
        "--",
        "--runs",
        str(Path(runs_dir).resolve()),
    ]


def _display_address(host: str) -> str:
    """Where browsers reach ``host``: itself, or this machine's name for 0.0.0.0 and ``::``."""
    try:
        unspecified = ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a host name
        unspecified = False
    return socket.gethostname() if unspecified else host


def addresses(host: str, port: int) -> list[tuple]:
    """What ``host`` resolves to for listening (``socket.getaddrinfo``); ConfigError if nothing."""
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"--host {host!r}: not an address or host name ({exc})") from None


def check_port_free(host: str, port: int) -> None:
    """ConfigError when ``host:port`` cannot be listened on (in use, or not an address of this machine).

    Binds the way Streamlit's server (tornado) does: every address the host resolves to, with
    SO_REUSEADDR (a port left in TIME_WAIT by a previous dashboard is free) and IPv6 sockets v6-only.
    """
    infos = addresses(host, port)
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ConfigError(
                        f"port {port} on {host} is already in use (another dashboard?); "
                        "stop it or choose another with --port"
                    ) from None
                if family == socket.AF_INET6 and exc.errno == errno.EADDRNOTAVAIL and len(infos) > 1:
                    continue  # "localhost" on a machine without IPv6: tornado skips ::1 too
                raise ConfigError(
                    f"--host {host} --port {port}: cannot listen there ({exc.strerror})"
                ) from None


@click.command(
    epilog=(
        "Example:\n\n\b\n"
        "  t2iscope world make --out runs/world --rows 2000 --seed 0\n"
        "  t2iscope dashboard runs/            # then open http://127.0.0.1:8501\n"
        "  t2iscope dashboard runs/ --port 8600 --print-command"
    )
)
@click.argument("runs_dir", type=click.Path(file_okay=False))
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8501, show_default=True, help="Port to serve on."
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; use 0.0.0.0 only to share the dashboards on your network.",
)
@click.option("--print-command", is_flag=True, help="Print the streamlit command instead of running it.")
def dashboard(runs_dir: str, port: int, host: str, print_command: bool) -> None:
    """Open the Streamlit dashboards over the runs under RUNS_DIR.

    Runs are found by their marker files: world.json (world), stats.json (curation run),
    manifest.parquet (generation), run.json (audit: the audits `evaluate run` recorded there).
    """
    if not Path(runs_dir).is_dir():
        raise ConfigError(
            f"{runs_dir}: no such folder; create runs first, e.g. t2iscope world make --out {runs_dir}/world"
        )
    addresses(host, port)  # a printed command must work too
    cmd = streamlit_command(runs_dir, port, host)
    if print_command:
        click.echo(shlex.join(cmd))
        return
    check_port_free(host, port)
    click.echo(f"t2iscope dashboards on http://{host}:{port} (Ctrl+C stops)", err=True)
    # A guarded child: SIGTERM, Ctrl+C or kill -9 of this command also stops the server and frees the port.
    code = run_python(cmd[1:])
    if code:
        raise click.exceptions.Exit(code if code > 0 else 128 - code)
