"""`worldmodel-eval ... warp_start=TAU`: recorded, used, and refused before writing where it cannot apply."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from worldmodel.config import compose_config
from worldmodel.eval.protocol import ProtocolError
from worldmodel.eval.run import evaluate
from worldmodel.viz import write_video


def _cfg(export: Path, run_dir: Path, *overrides: str):
    return compose_config("eval", [f"checkpoint={export}", f"run_dir={run_dir}", "progress=false",
                                   "protocol.num_videos=2", "protocol.num_frames=13", "protocol.metrics=[psnr]",
                                   "write_videos=0", *overrides])


def test_warp_start_moves_the_untrained_model_onto_the_moved_last_frame(tiny_eval_export, tmp_path) -> None:
    """A random network from pure noise scores far below copying; started at tau 0.01 from the warped frame
    (one step, so its output is that frame almost unchanged) it scores near the copy baseline."""
    plain = evaluate(_cfg(tiny_eval_export, tmp_path / "plain")).metrics
    warped = evaluate(_cfg(tiny_eval_export, tmp_path / "warp", "warp_start=0.01")).metrics
    assert plain["protocol"]["resolved"]["warp_start"] is None
    assert warped["protocol"]["resolved"]["warp_start"] == 0.01
    copy = warped["psnr_copy_last_frame"]
    assert copy == plain["psnr_copy_last_frame"]
    assert plain["psnr"] < copy - 5
    assert warped["psnr"] > plain["psnr"] + 5 and abs(warped["psnr"] - copy) < 3


def test_videos_without_calibration_are_refused_before_anything_is_written(tiny_eval_export, tmp_path) -> None:
    root = tmp_path / "dashcam"
    frames = np.random.default_rng(0).integers(0, 255, size=(20, 48, 96, 3)).astype(np.uint8)
    write_video(root / "a.mp4", frames, fps=10.0)
    run_dir = tmp_path / "run"
    with pytest.raises(ProtocolError, match="warp_start=null"):
        evaluate(_cfg(tiny_eval_export, run_dir, "protocol=videos", f"protocol.dataset.root={root}",
                      "protocol.num_videos=null", "warp_start=0.4"))
    assert not run_dir.exists()


def test_actions_switched_off_are_refused(tiny_eval_export, tmp_path) -> None:
    with pytest.raises(ProtocolError, match="actions switched off"):
        evaluate(_cfg(tiny_eval_export, tmp_path / "run", "protocol.use_actions=false", "warp_start=0.4"))


def test_nuscenes_clips_bring_their_calibration(tiny_eval_export, tmp_path) -> None:
    """A real-format reader (fabricated nuScenes, val scene-0003) hands its resized intrinsics and extrinsics to
    the warp start; its frames are flat colours that change per frame, so the warp alone scores about what
    copying scores, where the untrained model from noise scores far less."""
    from tests.data.nuscenes_fixture import FakeScene, write_nuscenes

    root = tmp_path / "nuscenes"
    write_nuscenes(root, [FakeScene("scene-0003", seconds=5.0, speed=8.0, yaw_rate=0.2)])
    args = ("protocol=nuscenes_single", f"protocol.dataset.root={root}", "protocol.num_videos=1")
    plain = evaluate(_cfg(tiny_eval_export, tmp_path / "plain", *args)).metrics
    m = evaluate(_cfg(tiny_eval_export, tmp_path / "warp", *args, "warp_start=0.01")).metrics
    assert m["videos"] == 1 and m["protocol"]["resolved"]["warp_start"] == 0.01
    assert abs(m["psnr"] - m["psnr_copy_last_frame"]) < 2.0 and m["psnr"] > plain["psnr"] + 3
