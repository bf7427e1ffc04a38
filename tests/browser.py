"""Headless Debian chromium for the tests that open a report page (CI: `apt-get install -y chromium`)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                    "(apt-get update && apt-get install -y chromium)")


def dump_dom(page: Path, profile: Path) -> str:
    """The page's DOM after chromium loaded it (scripts run, relative files resolved)."""
    done = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(page: Path, profile: Path, out: Path, size: str = "1200,1600") -> Path:
    """A PNG of the rendered page; fails unless chromium drew something substantial."""
    done = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
                           f"--screenshot={out}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and out.stat().st_size > 10_000, done.stderr[-2000:]
    return out
