"""Serve a world's images over HTTP on localhost, failures included, so downloaders are tested for real.

``GET /<host>/<path>`` (the world URL without its scheme, see ``local_url``) answers with the row
whose ``key`` is the 16 hex digits before ``.jpg``: a JPEG of the scene resized to the row's
original size (long side capped at ``max_side``), or the row's failure mode:

- ``404``: Not Found.
- ``timeout``: waits ``timeout_seconds`` before answering (clients with a shorter timeout give up).
- ``truncated``: announces the full Content-Length, sends half the bytes, closes the connection.
- ``html``: 200 with ``text/html``, a "please log in" page instead of an image.

By default each row's mode is the truth table's ``http_failure``. ``rates`` replaces that with a fresh
draw per URL, deterministic in (``seed``, key), at exactly the given rates (unnamed modes get 0).
Rows with truth ``noai`` carry ``X-Robots-Tag: noai`` (img2dataset can honour it).
Worlds made with ``--no-images`` are rendered on the fly from the truth table.
"""

from __future__ import annotations

import io
import os
import re
import sys
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import mmh3
import numpy as np
from PIL import Image

from t2iscope.curate.world import layout
from t2iscope.curate.world.render import render_scene
from t2iscope.curate.world.sample import HTTP_FAILURES
from t2iscope.errors import ConfigError

FAILURE_MODES: tuple[str, ...] = HTTP_FAILURES[1:]
_KEY = re.compile(r"/([0-9a-f]{16})\.jpg$")
_HTML = (
    b"<!doctype html><html><head><title>Log in</title></head>"
    b"<body><h1>Please log in to view this image</h1></body></html>"
)


def local_url(url: str, base: str) -> str:
    """A world URL on a running server: ``https://i.pinimg.com/x.jpg`` -> ``<base>/i.pinimg.com/x.jpg``."""
    return base.rstrip("/") + "/" + url.split("://", 1)[-1]


class _Index:
    """Truth rows by key: sorted uint64 keys + column arrays, so a 1M-row world stays small in memory."""

    def __init__(self, world: Path) -> None:
        self.world = world
        self.info = layout.read_world_json(world)
        table = layout.read_table(world, "truth").sort_by("key")
        self.keys = table.column("key").to_numpy()
        self.table = table

    def row(self, key: int) -> dict[str, Any] | None:
        i = int(np.searchsorted(self.keys, np.uint64(key)))
        if i >= len(self.keys) or int(self.keys[i]) != key:
            return None
        return self.table.slice(i, 1).to_pylist()[0]

    def image(self, row: Mapping[str, Any]) -> Image.Image:
        path = layout.image_path(self.world, row["shard"], row["hash"])
        if path.is_file():
            with Image.open(path) as im:
                return im.convert("RGB")
        return render_scene(row)


class WorldServer(ThreadingHTTPServer):
    """A threaded HTTP server over one world; ``start()``/``stop()`` or use it as a context manager."""

    daemon_threads = True

    def __init__(
        self,
        world: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        rates: Mapping[str, float] | None = None,
        timeout_seconds: float = 20.0,
        seed: int = 0,
        max_side: int = 1024,
    ) -> None:
        if rates is not None:
            unknown = sorted(set(rates) - set(FAILURE_MODES))
            if unknown:
                raise ConfigError(
                    f"unknown failure mode(s) {', '.join(unknown)}; valid: {', '.join(FAILURE_MODES)}"
                )
            if any(not 0.0 <= r <= 1.0 for r in rates.values()) or sum(rates.values()) > 1.0:
                raise ConfigError(f"failure rates must be in [0, 1] and sum to <= 1, got {dict(rates)}")
        if timeout_seconds < 0:
            raise ConfigError(f"--timeout-seconds must be >= 0, got {timeout_seconds}")
        if max_side < 1:
            raise ConfigError(f"--max-side must be >= 1, got {max_side}")
        self.index = _Index(Path(world))
        self.rates = dict(rates) if rates is not None else None
        self.timeout_seconds = timeout_seconds
        self.seed = seed
        self.max_side = max_side
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def mode(self, row: Mapping[str, Any]) -> str:
        """This row's failure mode (or "ok") under the server's settings."""
        if self.rates is None:
            return row["http_failure"]
        u = (mmh3.hash64(f"{self.seed}:{row['key']}", signed=False)[0] >> 11) / 2**53
        acc = 0.0
        for mode in FAILURE_MODES:
            acc += self.rates.get(mode, 0.0)
            if u < acc:
                return mode
        return "ok"

    def jpeg(self, row: Mapping[str, Any]) -> bytes:
        w, h = int(row["true_width"]), int(row["true_height"])
        scale = min(1.0, self.max_side / max(w, h))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        buf = io.BytesIO()
        self.index.image(row).resize(size, Image.BILINEAR).save(buf, format="JPEG", quality=90)
        return buf.getvalue()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up early (its own timeout) is normal traffic here, not a server error."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def start(self) -> WorldServer:
        if self._thread is not None:  # serve_world() already started it; `with` must not start twice
            return self
        self._thread = threading.Thread(target=self.serve_forever, name="world-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # wakes handlers sleeping in a timeout
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> WorldServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    server: WorldServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: downloaders make thousands of requests."""

    def _send(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] = {}) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        match = _KEY.search(self.path.split("?", 1)[0])
        row = self.server.index.row(int(match.group(1), 16)) if match else None
        if row is None:
            self._send(404, b"not found\n", "text/plain")
            return
        mode = self.server.mode(row)
        if mode == "404":
            self._send(404, b"not found\n", "text/plain")
            return
        if mode == "html":
            self._send(200, _HTML, "text/html; charset=utf-8")
            return
        if mode == "timeout" and self.server.stopping.wait(self.server.timeout_seconds):
            return
        body = self.server.jpeg(row)
        headers = {"X-Robots-Tag": "noai"} if row["noai"] else {}
        if mode == "truncated":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self._send(200, body, "image/jpeg", headers)


def serve_world(
    world: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 0,
    rates: Mapping[str, float] | None = None,
    timeout_seconds: float = 20.0,
    seed: int = 0,
    max_side: int = 1024,
) -> WorldServer:
    """A started server over ``world`` (port 0 picks a free one; see ``.url``). Call ``.stop()`` after."""
    return WorldServer(world, host, port, rates, timeout_seconds, seed, max_side).start()
