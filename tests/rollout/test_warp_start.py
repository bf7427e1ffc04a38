"""Warp start: the first guess of a chunk's new frames is its last reference moved along the commanded path."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from worldmodel.codecs import DCTCodec
from worldmodel.data.actions import pack_actions
from worldmodel.data.synthetic import CAMERAS
from worldmodel.rollout.ground_warp import source_pixels, warp_frames
from worldmodel.rollout.warp_start import CameraCalibration, WarpStart

SIZE = (32, 64)
NAMES = ("CAM_FRONT", "CAM_BACK")


def _calibration(names=NAMES) -> CameraCalibration:
    return CameraCalibration(np.stack([CAMERAS[n].intrinsics(SIZE) for n in names]),
                             np.stack([CAMERAS[n].camera_to_ego() for n in names]), 0.5)


def _actions(speed_mps: float) -> tuple[torch.Tensor, torch.Tensor]:
    trajectory = np.stack([speed_mps * np.array([0.5, 1.0, 1.5, 2.0]), np.zeros(4)], axis=1)
    return pack_actions({"command": np.int64(0), "trajectory": trajectory, "speed": np.full(4, speed_mps),
                         "angle": np.zeros(4), "goal": np.zeros(2),
                         "valid": {"command": True, "trajectory": True, "speed": True, "angle": False,
                                   "goal": False}})


def _references(codec: DCTCodec, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth random frames (B=1, k, V=2, 3, H, W) and their latents (well inside [-1, 1]: decoding clamps)."""
    frames = torch.nn.functional.interpolate(torch.rand(k * 2, 3, 8, 16), size=SIZE, mode="bilinear") - 0.5
    frames = frames.reshape(1, k, 2, 3, *SIZE)
    return frames, codec.encode_video(frames)


def test_standing_still_repeats_the_last_reference() -> None:
    codec = DCTCodec()
    _, refs = _references(codec, k=2)
    values, valid = _actions(0.0)
    start = WarpStart(codec, [_calibration()], fps=10.0, tau=0.5)(refs, values, valid, chunk_frames=5)
    assert start.shape == (1, 3, 2, *refs.shape[3:])
    for j in range(3):  # the DCT codec's encode(decode(z)) is z, and the warp is the identity
        torch.testing.assert_close(start[:, j], refs[:, 1], atol=1e-4, rtol=0)


def test_each_camera_is_warped_with_its_own_calibration() -> None:
    codec = DCTCodec()
    _, refs = _references(codec, k=1)
    values, valid = _actions(10.0)  # 1 m per frame at 10 Hz
    start = WarpStart(codec, [_calibration()], fps=10.0, tau=0.5)(refs, values, valid, chunk_frames=3)
    last = codec.decode_video(refs)[:, 0]  # (1, V, 3, H, W)
    motion = np.array([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    for v, name in enumerate(NAMES):
        camera = CAMERAS[name]
        source = source_pixels(motion, camera.intrinsics(SIZE), camera.camera_to_ego(), SIZE, 0.5)
        expected = codec.encode_video(warp_frames(last[:, v], source[None])[:, :, None])[:, :, 0]
        torch.testing.assert_close(start[:, :, v], expected, atol=1e-4, rtol=0)
    assert not torch.allclose(start[:, 0], start[:, 1], atol=1e-3)  # the video moves frame to frame


def test_bad_settings_are_named() -> None:
    codec = DCTCodec()
    for tau in (0.0, 1.2):
        with pytest.raises(ValueError, match=r"warp_start must be a diffusion time in \(0, 1\]"):
            WarpStart(codec, [_calibration()], 10.0, tau)
    _, refs = _references(codec, k=1)
    with pytest.raises(ValueError, match="2 camera calibrations for a batch of 1"):
        WarpStart(codec, [_calibration()] * 2, 10.0, 0.5)(refs, *_actions(5.0), chunk_frames=3)
