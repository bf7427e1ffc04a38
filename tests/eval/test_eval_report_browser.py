"""The evaluation report renders in a real headless browser: headline table, curves plot, sample video."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from worldmodel.config import compose_config
from worldmodel.eval.run import evaluate

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tiny_eval_export: Path, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("eval_report")
    result = evaluate(compose_config("eval", [
        f"checkpoint={tiny_eval_export}", f"run_dir={run_dir}", "progress=false", "protocol.num_videos=2",
        "protocol.num_frames=13", "protocol.metrics=[psnr,ssim]", "write_videos=1"]))
    return result.report


def test_eval_report_links_files_that_exist(report: Path) -> None:
    page = report.read_text()
    assert 'src="curves.png"' in page and (report.parent / "curves.png").is_file()
    assert 'src="videos/clip00000.mp4"' in page and (report.parent / "videos" / "clip00000.mp4").is_file()
    assert "copy last frame" in page and "$" not in page.split("<body>")[1]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                    "(apt-get update && apt-get install -y chromium)")
def test_eval_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    dom = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", report.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert 'id="curves-plot"' in html and html.count("<video") == 1 and "<table>" in html
    shot = tmp_path / "report.png"
    done = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--window-size=1200,1600",
                           f"--screenshot={shot}", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.stat().st_size > 10_000, done.stderr[-2000:]
