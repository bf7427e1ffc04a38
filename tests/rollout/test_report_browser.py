"""The report page renders in a real headless browser with its videos and the action-plan plot.

CI needs Debian's chromium: `apt-get update && apt-get install -y chromium`.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from worldmodel.config import compose_config
from worldmodel.rollout.run import rollout

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tiny_export: Path, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("report")
    rollout(compose_config("rollout", [f"checkpoint={tiny_export}", f"run_dir={run_dir}", "scenario=left_turn",
                                       "horizon_s=1.5", "device=cpu", "progress=false"]))
    return run_dir / "left_turn" / "report.html"


def test_report_page_links_files_that_exist(report: Path) -> None:
    page = report.read_text()
    for name in ("generated.mp4", "side_by_side.mp4", "CAM_FRONT.mp4", "action_plan.png", "contact_sheet.png"):
        assert f'src="{name}"' in page and (report.parent / name).is_file(), name
    assert "psnr_model" in page and "psnr_copy_last_frame" in page and "$" not in page.split("<body>")[1]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                    "(apt-get update && apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    dom = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", report.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert html.count("<video") >= 3 and 'src="generated.mp4"' in html and 'src="side_by_side.mp4"' in html
    assert 'id="action-plan"' in html and 'src="action_plan.png"' in html
    shot = tmp_path / "report.png"
    done = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--window-size=1200,1600",
                           f"--screenshot={shot}", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.stat().st_size > 10_000, done.stderr[-2000:]
