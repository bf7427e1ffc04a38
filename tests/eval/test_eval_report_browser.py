"""The evaluation report renders in a real headless browser: headline table, curves plot, sample video."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import dump_dom, needs_chromium, screenshot
from worldmodel.config import compose_config
from worldmodel.eval.run import evaluate


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


@needs_chromium
def test_eval_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    html = dump_dom(report, tmp_path / "profile")
    assert 'id="curves-plot"' in html and html.count("<video") == 1 and "<table>" in html
    screenshot(report, tmp_path / "profile", tmp_path / "report.png")
