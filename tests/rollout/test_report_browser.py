"""The report page renders in a real headless browser with its videos and the action-plan plot.

CI needs Debian's chromium: `apt-get update && apt-get install -y chromium`.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import dump_dom, needs_chromium, screenshot
from worldmodel.config import compose_config
from worldmodel.rollout.run import rollout


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


@needs_chromium
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    html = dump_dom(report, tmp_path / "profile")
    assert html.count("<video") >= 3 and 'src="generated.mp4"' in html and 'src="side_by_side.mp4"' in html
    assert 'id="action-plan"' in html and 'src="action_plan.png"' in html
    screenshot(report, tmp_path / "profile", tmp_path / "report.png")
