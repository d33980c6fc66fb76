"""The HTML report opens in headless Chromium without errors, and its screenshot is a real page.

Uses Debian's `chromium`, installed with apt-get when missing (as root). The browser runs with a fresh
profile, no network services, and logs to stderr so console errors can be checked.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tests.support.histories import write_history, write_verdicts
from worker.cli import main
from worker.engine import Policy, load_policy

pytestmark = pytest.mark.e2e

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0"]
SCREENSHOT_DIR_ENV = "APOLOGY_REPORT_SCREENSHOT_DIR"  # keep the screenshot to look at it


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip("chromium is missing and installing it needs root")
    subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, timeout=1200,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    found = shutil.which("chromium")
    assert found, "apt-get installed chromium but it is not on PATH"
    return found


def run_chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=180)


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_report_renders_in_headless_chromium(tmp_path: Path, policy: Policy) -> None:
    browser = chromium()
    history = write_history(tmp_path / "history.jsonl", tickets=400)
    base = write_verdicts(history, policy, tmp_path / "liability-aware.jsonl")
    other = write_verdicts(history, load_policy("empathy-first"), tmp_path / "empathy-first.jsonl")
    page = tmp_path / "report.html"
    assert main(["report", str(base), "--history", str(history), "--compare", str(other),
                 "--html", str(page)]) == 0

    shots = Path(os.environ.get(SCREENSHOT_DIR_ENV) or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    png = shots / "report.png"
    png.unlink(missing_ok=True)
    shot = run_chromium(browser, tmp_path / "profile-shot", "--window-size=1280,2400",
                        f"--screenshot={png}", page.as_uri())
    assert png.exists(), shot.stderr[-2000:]
    width, height = png_size(png)
    assert (width, height) == (1280, 2400)
    assert png.stat().st_size > 50_000  # a blank page compresses to a few kilobytes

    dom = run_chromium(browser, tmp_path / "profile-dom", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Outcome: did apologising help?" in dom.stdout and "Worst replies" in dom.stdout
    assert "Compare: liability-aware → empathy-first" in dom.stdout
    console_errors = [line for line in dom.stderr.splitlines()
                      if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]
    assert console_errors == []
