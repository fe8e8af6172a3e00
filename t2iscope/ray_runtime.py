"""Ray for ``--engine ray``: imported only when asked for, joined or started the same way everywhere.

Ray is an optional extra (``pip install 't2iscope[ray]'``, issue 18). Every engine that runs on
Ray (curation runs, downloads, prompt suites) calls :func:`connect` first, so a missing install or
a cluster that does not answer is one line, not a traceback or a hang.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from types import ModuleType

from yarl import URL

from t2iscope.errors import ConfigError

INSTALL = "pip install 't2iscope[ray]'"
# Issue 18 wants a silent address refused within 15 s of the command starting: the probe and the
# join never both run to their limits (a port that accepts at once leaves the whole join; one that
# does not is refused by the probe), and ~2 s go to Python and imports (measured: 10.4 s in all on
# a listening non-Ray port, 12.1 s on a loaded machine; tests/curate/test_engine_ray.py).
PROBE_SECONDS = 3.0  # the head's port must accept a TCP connection within this
JOIN_SECONDS = 8.0  # and Ray must join within this (a real head joins in 1-3 s here)
GCS_PORT = 6379  # Ray's default head (GCS) port, for an address given as a bare host
CLIENT_PORT = 10001  # Ray Client's default port, for ray://host
LOCAL_OBJECT_STORE = 256 * 1024**2  # a started local Ray stays small: CI machines have 24 GiB, 2 cores


def require_ray() -> ModuleType:
    """The ``ray`` module; ConfigError naming the install command when it is not installed."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--engine ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def _host_port(address: str) -> tuple[str, int]:
    """(host, port) of a Ray address: ``host``, ``host:port`` or ``ray://host[:port]``."""
    url = URL(address if "://" in address else f"//{address}")
    if url.scheme not in ("", "ray") or not url.host:
        raise ConfigError(f"--address {address!r}: expected host:port or ray://host:port")
    default = CLIENT_PORT if url.scheme == "ray" else GCS_PORT
    return url.host, url.explicit_port or default


def connect(address: str | None = None, num_cpus: int | None = None) -> ModuleType:
    """Join the Ray cluster at ``address``, or start a small local one; returns ``ray``.

    ``address``: None starts a local Ray on this machine (``num_cpus`` CPUs, default all; an
    object store of ``LOCAL_OBJECT_STORE`` bytes); ``"auto"`` joins the cluster this machine is
    part of; ``host:port`` or ``ray://host:port`` joins that head node. An address whose port does
    not accept a connection within ``PROBE_SECONDS``, or a head that Ray cannot join within
    ``JOIN_SECONDS``, raises ConfigError naming it instead of Ray's own retries.
    Calling again while Ray is up reuses the running session.
    """
    ray = require_ray()
    if ray.is_initialized():
        return ray
    options = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address is None:
        with _quiet():
            ray.init(num_cpus=num_cpus, object_store_memory=LOCAL_OBJECT_STORE, **options)
        return ray
    if address != "auto":
        host, port = _host_port(address)
        try:
            socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
        except OSError as exc:
            raise ConfigError(
                f"--address {address}: no Ray cluster answers at {host}:{port} ({exc.strerror or exc})"
            ) from None
    # ray.init retries a head that accepts the connection but is not Ray for ~20 s; join on a
    # daemon thread so a silent address is refused in time (the thread dies with the process).
    outcome: list[BaseException | None] = []

    def join() -> None:
        try:
            with _quiet():
                ray.init(address=address, **options)
            outcome.append(None)
        except (ConnectionError, RuntimeError) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=join, name="ray-connect", daemon=True)
    thread.start()
    thread.join(JOIN_SECONDS)
    if not outcome:
        raise ConfigError(f"--address {address}: no Ray cluster answered within {JOIN_SECONDS:.0f} s")
    if outcome[0] is not None:
        reason = str(outcome[0]).splitlines()[0]
        raise ConfigError(f"--address {address}: cannot join the Ray cluster ({reason})")
    return ray


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Ray's Python warnings off while it starts or joins (loggers under ``ray`` at ERROR: the
    token-auth and SIGTERM-handler notes), so an error is our one line and a run starts with our
    bar. Its C++ core's first GCS retry line (``rpc_client.h``) stays: it is printed before Ray
    reads ``RAY_BACKEND_LOG_LEVEL``, and setting that variable adds a line of its own (measured)."""
    ray_logger = logging.getLogger("ray")
    level = ray_logger.level
    ray_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        ray_logger.setLevel(level)
