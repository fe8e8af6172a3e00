"""End to end: `t2iscope dashboard` served on localhost, driven in Debian's headless Chromium.

Opens every page, applies a filter, labels an image, and screenshots each page into .screens/
(copied to docs/screenshots/ for the README when T2I_UPDATE_SCREENSHOTS=1). No browser is
downloaded: the test uses /usr/bin/chromium (apt-get install chromium).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fixture_runs import MARK, PAYLOAD
from playwright.sync_api import Browser, Page, expect, sync_playwright

from t2iscope.dashboards import labels

REPO = Path(__file__).resolve().parents[2]
SCREENS = REPO / ".screens"
CHROMIUM = os.environ.get("T2I_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PAGES = {
    "overview": ("", "t2iscope runs"),
    "explorer": ("explorer", "Dataset explorer"),
    "funnel": ("funnel", "Curation funnel"),
    "gallery": ("gallery", "Generation gallery"),
    "bias": ("bias", "Bias"),
    "limbs": ("limbs", "Limb failures"),
    "watermark": ("watermark", "Watermark robustness"),
    "quality": ("quality", "Image quality"),
    "annotate": ("annotate", "Annotate images"),
}

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """`t2iscope dashboard ROOT` on a free port; yields its URL once it answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "t2iscope.cli", "dashboard", str(root), "--port", str(port)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "server exited"
            assert time.monotonic() < deadline, "dashboard server did not come up"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the CLI, which stops the streamlit server it started
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def served(real_runs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The dashboards over a copy of the real-CLI runs (labels get written), on a free port."""
    root = tmp_path_factory.mktemp("served") / "runs"
    shutil.copytree(real_runs, root)
    with serve(root) as url:
        yield url, root


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        expect.set_options(timeout=60_000)  # first queries of a cold server on a shared 2-core box
        yield browser
        browser.close()


def new_page(browser: Browser) -> Page:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(60_000)
    return ctx.new_page()


@pytest.fixture(scope="module")
def page(browser: Browser, served: tuple[str, Path]) -> Page:
    return new_page(browser)


def settle(page: Page) -> None:
    """Wait until the script run is over and charts have drawn."""
    page.locator('[data-test-script-state="notRunning"]').wait_for()
    page.wait_for_timeout(500)


def shoot(page: Page, name: str) -> None:
    settle(page)
    SCREENS.mkdir(exist_ok=True)
    path = SCREENS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("T2I_UPDATE_SCREENSHOTS") == "1":
        docs = REPO / "docs" / "screenshots"
        docs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, docs / path.name)


def open_page(page: Page, url: str, name: str) -> None:
    path, title = PAGES[name]
    page.goto(f"{url}/{path}")
    expect(page.get_by_role("heading", name=title, exact=True).first).to_be_visible()
    settle(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)


@pytest.mark.parametrize("name", ["overview", "funnel", "gallery", "bias", "limbs", "watermark", "quality"])
def test_page_renders(page: Page, served: tuple[str, Path], name: str):
    url, _ = served
    open_page(page, url, name)
    if name == "funnel":
        expect(page.get_by_text("Drop reasons")).to_be_visible()
    if name == "gallery":
        expect(page.get_by_test_id("stImage").first).to_be_visible()
    shoot(page, name)


def test_explorer_language_filter(page: Page, served: tuple[str, Path]):
    url, root = served
    kept = pd.read_parquet(root / "curated" / "kept")
    open_page(page, url, "explorer")
    metric = page.get_by_test_id("stMetricValue").first
    expect(metric).to_have_text(str(len(kept)))
    box = page.get_by_test_id("stMultiSelect").filter(has_text="Language")
    box.locator("input").fill("de")
    page.keyboard.press("Enter")
    expect(metric).to_have_text(str(int((kept["lang"] == "de").sum())))
    page.keyboard.press("Escape")
    shoot(page, "explorer")


def test_label_an_image(page: Page, served: tuple[str, Path]):
    url, root = served
    open_page(page, url, "annotate")
    box = page.get_by_role("textbox", name="Count, then Enter")
    box.fill("2")
    box.press("Enter")
    expect(page.get_by_text("Saved legs 2")).to_be_visible()
    stored = labels.load(root / "audit")
    assert stored["label"].tolist() == ["2"]
    shoot(page, "annotate")


def test_file_text_never_reaches_the_browser_as_markup(browser: Browser, hostile_runs: tuple[Path, Path]):
    """Markdown and HTML in prompts, captions, stage names, column and folder names stay text:
    no page makes the browser fetch from the payload's host (or ask the dashboard for PWNED.png),
    and no image or link points there."""
    root, outside = hostile_runs
    page = new_page(browser)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    with serve(root) as url:
        for name in PAGES:
            open_page(page, url, name)
            page.wait_for_timeout(1000)  # let images and fonts load, as they would for a viewer
            for selector in ("img[src]", "a[href]"):
                targets = page.locator(selector).evaluate_all(
                    "els => els.map(e => e.getAttribute('src') || e.getAttribute('href'))"
                )
                assert not [t for t in targets if MARK in t or "PWNED" in t], (name, targets)
            if name in ("gallery", "annotate"):  # the prompt, shown literally
                expect(page.get_by_text(PAYLOAD).first).to_be_visible()
            if name == "gallery":
                expect(page.get_by_text("outside the runs folder").first).to_be_visible()
    assert not [r for r in requests if MARK in r or "PWNED" in r]
    assert not [r for r in requests if outside.name in r]
