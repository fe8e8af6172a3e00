"""The world server: images at their original size, and every failure mode, over real HTTP."""

from __future__ import annotations

import http.client
import io
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from t2iscope.cli import main
from t2iscope.curate.world.layout import read_table
from t2iscope.curate.world.make import make_world
from t2iscope.curate.world.render import render_scene
from t2iscope.curate.world.serve import WorldServer, local_url, serve_world
from t2iscope.errors import ConfigError, DataError


def rows(world: Path) -> list[tuple[dict, dict]]:
    md = read_table(world, "metadata").to_pylist()
    truth = read_table(world, "truth").to_pylist()
    return list(zip(md, truth, strict=True))


def fetch(url: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def first(world: Path, **match: object) -> tuple[dict, dict]:
    return next((m, t) for m, t in rows(world) if all(t[k] == v for k, v in match.items()))


def test_local_url_keeps_host_and_path() -> None:
    url = "https://i0.wp.com/www.shop1.com/wp-content/uploads/2019/05/00000000000000ff.jpg"
    assert local_url(url, "http://127.0.0.1:9/") == (
        "http://127.0.0.1:9/i0.wp.com/www.shop1.com/wp-content/uploads/2019/05/00000000000000ff.jpg"
    )


def test_ok_rows_serve_the_scene_as_jpeg_at_the_original_size(world_server, world_dir: Path) -> None:
    served = 0
    for md, truth in rows(world_dir)[:60]:
        if truth["http_failure"] != "ok":
            continue
        status, headers, body = fetch(local_url(md["URL"], world_server.url))
        assert status == 200 and headers["Content-Type"] == "image/jpeg"
        with Image.open(io.BytesIO(body)) as im:
            scale = min(1.0, 1024 / max(truth["true_width"], truth["true_height"]))
            assert im.format == "JPEG"
            assert im.size == (round(truth["true_width"] * scale), round(truth["true_height"] * scale))
        served += 1
    assert served > 40


def mean_diff(body: bytes, row: dict) -> float:
    """Mean absolute pixel difference between a served JPEG and the row's scene at that size."""
    served = Image.open(io.BytesIO(body)).convert("RGB")
    expected = render_scene(row).resize(served.size, Image.BILINEAR)
    diff = [abs(a - b) for a, b in zip(served.tobytes(), expected.tobytes(), strict=True)]
    return sum(diff) / len(diff)


def test_served_pixels_are_the_rendered_scene(world_dir: Path) -> None:
    md, truth = first(world_dir, http_failure="ok", noise=0.0, blockiness=0.0)
    with serve_world(world_dir, max_side=64, rates={}) as server:
        _, _, body = fetch(local_url(md["URL"], server.url))
    _, other = first(world_dir, http_failure="ok", background=truth["background"], kind="ball")
    assert mean_diff(body, truth) < 6
    assert mean_diff(body, other) > 2 * mean_diff(body, truth)


def test_truth_failure_modes_are_honoured(world_server, world_dir: Path) -> None:
    md, _ = first(world_dir, http_failure="404")
    assert fetch(local_url(md["URL"], world_server.url))[0] == 404
    md, _ = first(world_dir, http_failure="html")
    status, headers, body = fetch(local_url(md["URL"], world_server.url))
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"<html" in body
    md, _ = first(world_dir, http_failure="truncated")
    with pytest.raises(http.client.IncompleteRead):
        fetch(local_url(md["URL"], world_server.url))
    md, _ = first(world_dir, http_failure="timeout")
    with pytest.raises((socket.timeout, TimeoutError, urllib.error.URLError)):
        fetch(local_url(md["URL"], world_server.url), timeout=0.3)


def test_noai_rows_carry_the_robots_header(world_server, world_dir: Path) -> None:
    md, _ = first(world_dir, http_failure="ok", noai=True)
    assert fetch(local_url(md["URL"], world_server.url))[1].get("X-Robots-Tag") == "noai"
    md, _ = first(world_dir, http_failure="ok", noai=False)
    assert "X-Robots-Tag" not in fetch(local_url(md["URL"], world_server.url))[1]


def test_unknown_paths_are_404(world_server) -> None:
    assert fetch(world_server.url + "/example.com/ffffffffffffffff.jpg")[0] == 404
    assert fetch(world_server.url + "/example.com/not-a-key.png")[0] == 404


@pytest.mark.parametrize("mode", ["404", "timeout", "truncated", "html"])
def test_rates_override_the_truth(world_dir: Path, mode: str) -> None:
    md, _ = first(world_dir, http_failure="ok")
    with serve_world(world_dir, rates={mode: 1.0}, timeout_seconds=1.0) as server:
        url = local_url(md["URL"], server.url)
        if mode == "404":
            assert fetch(url)[0] == 404
        elif mode == "html":
            assert fetch(url)[1]["Content-Type"].startswith("text/html")
        elif mode == "truncated":
            with pytest.raises(http.client.IncompleteRead):
                fetch(url)
        else:
            with pytest.raises((socket.timeout, TimeoutError, urllib.error.URLError)):
                fetch(url, timeout=0.3)
            assert fetch(url, timeout=5.0)[0] == 200  # slow, not dead: a patient client gets the image


def test_rate_draws_are_deterministic_per_url(world_dir: Path) -> None:
    truth = [t for _, t in rows(world_dir)]
    with (
        WorldServer(world_dir, rates={"404": 0.5}, seed=1) as a,
        WorldServer(world_dir, rates={"404": 0.5}, seed=1) as b,
    ):
        modes = [a.mode(t) for t in truth]
        assert modes == [b.mode(t) for t in truth]
        assert 0.35 < modes.count("404") / len(modes) < 0.65
    with WorldServer(world_dir, rates={"404": 0.5}, seed=2) as c:
        assert modes != [c.mode(t) for t in truth]
    with WorldServer(world_dir, rates={}) as none:
        assert {none.mode(t) for t in truth} == {"ok"}


def test_metadata_only_world_is_rendered_on_the_fly(tmp_path: Path) -> None:
    make_world(tmp_path / "w", 40, seed=4, images=False, progress=False)
    md, truth = first(tmp_path / "w", http_failure="ok", noise=0.0, blockiness=0.0)
    with serve_world(tmp_path / "w", max_side=64) as server:
        status, _, body = fetch(local_url(md["URL"], server.url))
    assert status == 200 and mean_diff(body, truth) < 6


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"rates": {"503": 0.1}}, "unknown failure mode"),
        ({"rates": {"404": 1.5}}, "rates"),
        ({"rates": {"404": 0.6, "html": 0.6}}, "rates"),
        ({"timeout_seconds": -1}, "--timeout-seconds"),
        ({"max_side": 0}, "--max-side"),
    ],
)
def test_bad_server_settings_raise_config_error(world_dir: Path, kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        WorldServer(world_dir, **kwargs)


def test_not_a_world_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a world folder"):
        WorldServer(tmp_path)


def test_cli_serve_errors_are_one_line(
    tmp_path: Path, world_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["world", "serve", str(tmp_path / "missing")]) == 2
    assert main(["world", "serve", str(tmp_path)]) == 1
    assert main(["world", "serve", str(world_dir), "--no-failures", "--fail-404", "0.1"]) == 2
    assert main(["world", "serve", str(world_dir), "--fail-html", "2", "--port", "0"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("t2iscope: error:") for line in lines)
