"""Screenshot the audit report's first screen and every dashboard page over a real `make demo` run,
for the README.

    make demo && make screenshots     # writes docs/report_screenshot.png and docs/screenshots/*.png

Drives Debian's chromium (never a downloaded browser) through playwright, like the browser test,
but over runs/demo, so the README shows the embedded model's real generations and audits.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
RUNS = REPO / "runs" / "demo"
OUT = REPO / "docs" / "screenshots"
REPORT_SHOT = REPO / "docs" / "report_screenshot.png"  # first screen: findings, judge validity
PAGES = ("overview", "explorer", "funnel", "gallery", "bias", "limbs", "annotate", "watermark")
CHROMIUM = os.environ.get("T2I_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


def main() -> None:
    if not (RUNS / "audit" / "report.html").exists():
        sys.exit(f"make_screenshots: no demo run at {RUNS}; run `make demo` first")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "t2iscope.cli", "dashboard", str(RUNS), "--port", str(port)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                time.sleep(0.5)
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            report = browser.new_page(viewport={"width": 1280, "height": 1400})
            report.goto((RUNS / "audit" / "report.html").as_uri())
            report.wait_for_timeout(500)
            report.screenshot(path=str(REPORT_SHOT))
            print(f"wrote {REPORT_SHOT}")
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            for name in PAGES:
                page.goto(f"{url}/{'' if name == 'overview' else name}")
                page.locator('[data-test-script-state="notRunning"]').wait_for()
                page.wait_for_timeout(1500)
                page.screenshot(path=str(OUT / f"{name}.png"))
                print(f"wrote {OUT / name}.png")
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
