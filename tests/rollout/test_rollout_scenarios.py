"""Scenario rollouts end to end on random tiny exports: frame counts, determinism, multi-view outputs, report."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from worldmodel.config import compose_config
from worldmodel.rollout.run import rollout
from worldmodel.rollout.warp_start import WarpStartError
from worldmodel.viz.video import read_video


def _run(export: Path, run_dir: Path, *overrides: str):
    cfg = compose_config("rollout", [f"checkpoint={export}", f"run_dir={run_dir}", "device=cpu", "progress=false",
                                     *overrides])
    return rollout(cfg)


def _latents(path: Path) -> np.ndarray:
    with safe_open(str(path), framework="pt") as f:
        return f.get_tensor("latents").numpy()


def test_horizon_and_fps_give_the_frame_count_and_every_file(tiny_export: Path, tmp_path: Path) -> None:
    result = _run(tiny_export, tmp_path, "scenario=left_turn", "horizon_s=1.5")
    folder = tmp_path / "left_turn"
    expected = 15  # 1.5 s at the model's 10 Hz; chunks of 8 frames carry 3, the last one is cut
    for name in ("generated.mp4", "CAM_FRONT.mp4", "side_by_side.mp4"):
        video = read_video(folder / name)
        assert video.shape[0] == expected, name
    assert read_video(folder / "CAM_FRONT.mp4").shape[1:3] == (32, 64)
    assert _latents(folder / "latents.safetensors").shape == (expected, 1, 16, 8, 16)
    for name in ("contact_sheet.png", "action_plan.png", "report.html", "metrics.json"):
        assert (folder / name).is_file(), name
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["scenario"]["name"] == "left_turn" and manifest["seed"] == 0 and manifest["frames"] == expected
    assert manifest["sampler_steps"] == 1 and "seconds_generate_batch" in manifest["timings"]
    metrics = result.runs[0].metrics
    assert len(metrics["psnr_model_per_frame"]) == expected - 1
    # The motion seen in the generated and the true front video, next to the scripted track's (1.5 s of driving).
    assert {"distance_m_generated", "distance_m_ground_truth", "turn_deg_commanded"} <= set(metrics)
    assert metrics["distance_m_commanded"] > 5.0
    assert json.loads((folder / "metrics.json").read_text())["distance_m_commanded"] == metrics["distance_m_commanded"]
    assert not list(tmp_path.rglob(".*tmp-*")), "temporary files left behind"


@pytest.mark.parametrize("sampler", [("churn=0",), ("num_steps=3", "churn=1.0")], ids=["ode", "churn"])
def test_fixed_seed_gives_the_same_rollout_alone_or_batched(tiny_export: Path, tmp_path: Path,
                                                            sampler: tuple[str, ...]) -> None:
    """Also with fresh noise at every sampler step: each scenario draws it from its own generator."""
    _run(tiny_export, tmp_path / "a", "scenario=straight_cruise", "horizon_s=1.5", *sampler)
    _run(tiny_export, tmp_path / "b", "scenario=[straight_cruise,brake_to_stop]", "horizon_s=1.5", "batch_size=2",
         *sampler)
    first = _latents(tmp_path / "a" / "straight_cruise" / "latents.safetensors")
    again = _latents(tmp_path / "b" / "straight_cruise" / "latents.safetensors")
    np.testing.assert_allclose(first, again, atol=1e-4)  # batch mates do not change a scenario's noise
    other = _latents(tmp_path / "b" / "brake_to_stop" / "latents.safetensors")
    assert not np.allclose(first[1:], other[1:])
    _run(tiny_export, tmp_path / "c", "scenario=straight_cruise", "horizon_s=1.5", *sampler)
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["sampler_churn"] == float(sampler[-1][6:])
    assert np.array_equal(first, _latents(tmp_path / "c" / "straight_cruise" / "latents.safetensors"))
    assert (read_video(tmp_path / "a" / "straight_cruise" / "generated.mp4")
            == read_video(tmp_path / "c" / "straight_cruise" / "generated.mp4")).all()


def test_multiview_rollout_writes_every_camera_and_the_rig_mosaic(mview_export: Path, tmp_path: Path) -> None:
    _run(mview_export, tmp_path, "scenario=right_turn", "horizon_s=0.8")
    folder = tmp_path / "right_turn"
    cameras = ["CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK", "CAM_BACK_LEFT"]
    for camera in cameras:
        assert read_video(folder / f"{camera}.mp4").shape == (8, 32, 64, 3), camera
    mosaic = read_video(folder / "generated.mp4")
    assert mosaic.shape[:3] == (8, 2 * 32 + 2, 3 * 64 + 2 * 2)  # the 2x3 rig layout with 2-pixel gaps
    assert _latents(folder / "latents.safetensors").shape[:2] == (8, 6)
    page = (folder / "report.html").read_text()
    assert all(f'src="{camera}.mp4"' in page for camera in cameras)


def test_sampler_override_out_of_range_is_named(tiny_export: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"churn must be in \[0, 1\]"):
        _run(tiny_export, tmp_path, "scenario=straight_cruise", "churn=2")
    with pytest.raises(ValueError, match=r"reference_noise=1.5 is for models trained with extension=reference_noise"):
        _run(tiny_export, tmp_path, "scenario=straight_cruise", "reference_noise=1.5")
    assert not (tmp_path / "straight_cruise").exists()


def test_clip_batch_mode_still_runs_without_a_scenario(tiny_export: Path, tmp_path: Path) -> None:
    result = _run(tiny_export, tmp_path, "num_chunks=2", "clips.num_clips=1")
    assert result.metrics["protocol"]["mode"] == "clips"
    assert read_video(tmp_path / "clip000" / "generated.mp4").shape[0] == 8 + 5


def test_warp_start_rolls_out_and_is_recorded(tiny_export: Path, tmp_path: Path) -> None:
    _run(tiny_export, tmp_path / "plain", "scenario=straight_cruise", "horizon_s=1.5")
    result = _run(tiny_export, tmp_path / "warp", "scenario=straight_cruise", "horizon_s=1.5", "warp_start=0.5")
    folder = tmp_path / "warp" / "straight_cruise"
    assert read_video(folder / "generated.mp4").shape[0] == 15
    assert json.loads((tmp_path / "warp" / "manifest.json").read_text())["warp_start"] == 0.5
    assert result.metrics["protocol"]["warp_start"] == 0.5
    plain = _latents(tmp_path / "plain" / "straight_cruise" / "latents.safetensors")
    warped = _latents(folder / "latents.safetensors")
    assert np.array_equal(plain[:1], warped[:1]) and not np.allclose(plain[1:], warped[1:])


def test_warp_start_refuses_what_it_cannot_warp_before_writing(tiny_export: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"warp_start must be a diffusion time in \(0, 1\]"):
        _run(tiny_export, tmp_path / "a", "scenario=straight_cruise", "warp_start=1.5")
    from PIL import Image

    Image.new("RGB", (64, 32), (90, 90, 120)).save(tmp_path / "still.png")
    scenario = tmp_path / "still.yaml"
    scenario.write_text("source:\n  files: [still.png]\nseed: 0\nhorizon_s: 1.0\n"
                        "actions:\n  - {at: 0.0, do: cruise, speed: 8}\n")
    with pytest.raises(WarpStartError, match="still has none .*warp_start=null"):
        _run(tiny_export, tmp_path / "b", f"scenario={scenario}", "warp_start=0.5")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_rollout_command_says_where_sampling_began(tiny_export: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(sys.executable).parent / "worldmodel-rollout"
    out = subprocess.run([str(script), f"checkpoint={tiny_export}", f"run_dir={tmp_path}/r", "device=cpu",
                          "progress=false", "scenario=straight_cruise", "horizon_s=0.8", "warp_start=0.5"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "sampling: from tau 0.5: each chunk's last frame moved along the commanded path (warp start)" in out.stdout
    refused = subprocess.run([str(script), f"checkpoint={tiny_export}", f"run_dir={tmp_path}/bad", "device=cpu",
                              "progress=false", "scenario=straight_cruise", "warp_start=1.5"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "worldmodel-rollout: warp_start must be a diffusion time in (0, 1]" in refused.stderr


def test_warp_start_on_the_six_camera_rig(mview_export: Path, tmp_path: Path) -> None:
    _run(mview_export, tmp_path, "scenario=right_turn", "horizon_s=0.8", "warp_start=0.5")
    assert read_video(tmp_path / "right_turn" / "CAM_BACK.mp4").shape == (8, 32, 64, 3)
    assert _latents(tmp_path / "right_turn" / "latents.safetensors").shape[:2] == (8, 6)
