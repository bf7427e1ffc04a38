"""The nuScenes reader against fabricated files in the real format (tables, sweeps, CAN bus) with known truth."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.data.nuscenes_fixture import (CAMERAS, CX, CY, FOCAL, IMAGE_SIZE, FakeScene, camera_to_ego,
                                         frame_time_us, num_frames, read_colour, write_nuscenes)
from worldmodel.data.actions import Command
from worldmodel.data.errors import CorruptFileError, DatasetError
from worldmodel.data.nuscenes import NuScenesClips

SMALL = (18, 32)
# scene-0001 / -0002 / -0004 are in the official train split, scene-0003 in val.
STANDARD = [
    FakeScene("scene-0001", speed=10.0, heading=0.5),  # straight, no CAN bus
    FakeScene("scene-0002", speed=8.0, yaw_rate=0.3, can=True, can_pose=False, steering_deg=120.0),
    FakeScene("scene-0004", speed=6.0, yaw_rate=-0.3, heading=-2.0, can=True, steering_deg=-90.0,
              monitor_speed_kmh=99.0),  # pose.vel must win over vehicle_monitor
    FakeScene("scene-0003", seconds=3.0),
]


@pytest.fixture(scope="module")
def standard(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("nuscenes")
    return root, write_nuscenes(root, STANDARD)


def _by_scene(ds: NuScenesClips) -> dict[str, dict]:
    return {clip["meta"]["scene"]: clip for clip in (ds[i] for i in range(len(ds)))}


# ---------------------------------------------------------------------- frames and cameras
def test_frames_follow_sweeps_in_time_order_and_every_camera_is_aligned(standard) -> None:
    root, starts = standard
    ds = NuScenesClips(root, split="train", size=SMALL)
    clip = _by_scene(ds)["scene-0001"]
    frames, meta = clip["frames"], clip["meta"]
    assert frames.shape == (25, 6, *SMALL, 3) and frames.dtype == np.uint8
    assert meta["cameras"] == list(CAMERAS) and meta["dataset"] == "nuscenes" and meta["fps"] == 10.0
    t = meta["timestamps"]
    assert t[0] == 0.0 and np.all(np.diff(t) > 0)
    assert np.all(np.abs(t - 0.1 * np.arange(25)) <= 1 / 24 + 1e-6)  # nearest 12 Hz frame to each 10 Hz tick
    for j in range(25):
        front_k = round(1.2 * j)
        assert read_colour(frames[j, 1]) == (1, front_k)
        assert t[j] == pytest.approx(front_k / 12, abs=1e-6)
        tick_us = frame_time_us(starts["scene-0001"], "CAM_FRONT", front_k)
        for v, camera in enumerate(CAMERAS):
            cam, k = read_colour(frames[j, v])
            expected = int(np.argmin([abs(frame_time_us(starts["scene-0001"], camera, i) - tick_us)
                                      for i in range(num_frames(STANDARD[0]))]))
            assert (cam, k) == (v, expected), (j, camera)
            assert abs(frame_time_us(starts["scene-0001"], camera, k) - tick_us) <= 60_000
    # Sweeps, not only the 2 Hz key frames, fill the clip.
    assert any(round(1.2 * j) % 6 for j in range(25))


def test_resampling_to_another_fps(standard) -> None:
    root, _ = standard
    slow = NuScenesClips(root, split="val", fps=5.0, num_frames=10, views="front", size=SMALL)
    clip = slow[0]
    assert clip["frames"].shape == (10, 1, *SMALL, 3) and clip["meta"]["cameras"] == ["CAM_FRONT"]
    np.testing.assert_allclose(clip["meta"]["timestamps"], [round(2.4 * j) / 12 for j in range(10)], atol=1e-6)
    assert [read_colour(f[0])[1] for f in clip["frames"]] == [round(2.4 * j) for j in range(10)]
    native = NuScenesClips(root, split="val", fps=12.0, num_frames=12, views="front", size=SMALL)
    assert len(native) == 3  # 37 frames of a 3 s scene -> 3 clips of 12
    assert [read_colour(f[0])[1] for f in native[1]["frames"]] == list(range(12, 24))


def test_intrinsics_follow_the_resize_and_extrinsics_the_rig(standard) -> None:
    root, _ = standard
    clip = NuScenesClips(root, split="val", num_frames=5, size=(24, 32))[0]
    scale = max(24 / IMAGE_SIZE[0], 32 / IMAGE_SIZE[1])
    left = (round(IMAGE_SIZE[1] * scale) - 32) // 2
    k = clip["meta"]["intrinsics"]
    assert k.shape == (6, 3, 3) and k.dtype == np.float32
    np.testing.assert_allclose(k[1], [[FOCAL * scale, 0, CX * scale - left], [0, FOCAL * scale, CY * scale], [0, 0, 1]],
                               atol=1e-4)
    ext = clip["meta"]["extrinsics"]
    assert ext.shape == (6, 4, 4)
    for v, camera in enumerate(CAMERAS):
        np.testing.assert_allclose(ext[v], camera_to_ego(camera), atol=1e-6)
    np.testing.assert_allclose(ext[4][:3, 2], [-1, 0, 0], atol=1e-6)  # CAM_BACK looks backwards


# ---------------------------------------------------------------------- actions
def test_straight_drive_without_can_bus(standard) -> None:
    root, _ = standard
    clip = _by_scene(NuScenesClips(root, split="train", size=SMALL))["scene-0001"]
    actions, meta = clip["actions"], clip["meta"]
    np.testing.assert_allclose(actions["trajectory"], [[5, 0], [10, 0], [15, 0], [20, 0]], atol=1e-4)
    np.testing.assert_allclose(actions["speed"], 10.0, atol=1e-4)
    assert actions["command"] == Command.STRAIGHT
    assert actions["valid"] == {"command": True, "trajectory": True, "speed": True, "angle": False, "goal": True}
    assert actions["goal"][0] == pytest.approx(0.5, abs=1e-4) and 0.5 < actions["goal"][1] < 1.0
    assert meta["speed_source"] == "ego_pose" and meta["steering_source"] is None and "ego_steering" not in meta
    np.testing.assert_allclose(meta["ego_poses"][:, 2], 0.5)
    np.testing.assert_allclose(meta["ego_speed"], 10.0, atol=1e-4)


def test_turns_with_can_bus_steering_and_speed(standard) -> None:
    root, _ = standard
    clips = _by_scene(NuScenesClips(root, split="train", size=SMALL))
    left = clips["scene-0002"]
    r, times = 8.0 / 0.3, np.array([0.5, 1.0, 1.5, 2.0])
    truth = np.stack([r * np.sin(0.3 * times), r * (1 - np.cos(0.3 * times))], axis=1)
    np.testing.assert_allclose(left["actions"]["trajectory"], truth, atol=1e-3)
    assert left["actions"]["command"] == Command.LEFT and np.all(left["actions"]["trajectory"][:, 1] > 0)
    np.testing.assert_allclose(left["actions"]["angle"], np.deg2rad(120.0), atol=1e-5)  # degrees -> rad, left > 0
    assert left["actions"]["valid"]["angle"] and left["actions"]["valid"]["speed"]
    np.testing.assert_allclose(left["actions"]["speed"], 8.0, atol=1e-4)  # 28.8 km/h from vehicle_monitor
    assert left["meta"]["speed_source"] == "can:vehicle_monitor.vehicle_speed"
    np.testing.assert_allclose(left["meta"]["ego_steering"], np.deg2rad(120.0))
    right = clips["scene-0004"]
    assert right["actions"]["command"] == Command.RIGHT and np.all(right["actions"]["trajectory"][:, 1] < 0)
    np.testing.assert_allclose(right["actions"]["angle"], np.deg2rad(-90.0), atol=1e-5)
    np.testing.assert_allclose(right["actions"]["speed"], 6.0, atol=1e-4)  # pose.vel, not the 99 km/h monitor
    assert right["meta"]["speed_source"] == "can:pose.vel"
    assert NuScenesClips(root, split="train", size=SMALL).describe()["clips_with_steering"] == 2


# ---------------------------------------------------------------------- splits and index
def test_official_splits_filter_the_scenes(standard) -> None:
    root, _ = standard
    assert sorted(_by_scene(NuScenesClips(root, split="train", views="front", size=SMALL))) == [
        "scene-0001", "scene-0002", "scene-0004"]
    val = NuScenesClips(root, split="val", views="front", size=SMALL)
    assert [val[i]["meta"]["scene"] for i in range(len(val))] == ["scene-0003"]
    assert len(NuScenesClips(root, split="test", views="front", size=SMALL)) == 0
    with pytest.raises(ValueError, match="mini_val"):
        NuScenesClips(root, split="training", size=SMALL)


def test_mini_version_maps_train_and_val(tmp_path: Path) -> None:
    write_nuscenes(tmp_path, [FakeScene("scene-0061", seconds=3.0), FakeScene("scene-0103", seconds=3.0)],
                   version="v1.0-mini")
    options = dict(version="v1.0-mini", views="front", size=SMALL, num_frames=8)
    assert NuScenesClips(tmp_path, split="train", **options)[0]["meta"]["scene"] == "scene-0061"
    assert NuScenesClips(tmp_path, split="mini_val", **options)[0]["meta"]["scene"] == "scene-0103"


def test_index_round_trip_without_the_tables(standard, tmp_path: Path) -> None:
    root, _ = standard
    copy = tmp_path / "nuscenes"
    shutil.copytree(root, copy)
    options = dict(split="train", num_frames=8, size=SMALL, action_times=(0.5, 1.0, 1.5, 2.0))
    scanned = NuScenesClips(copy, **options)
    path = tmp_path / "index.json"
    path.write_text(json.dumps(scanned.build_index()))
    shutil.rmtree(copy / "v1.0-trainval")  # the index alone must be enough: no devkit tables
    rebuilt = NuScenesClips(copy, index=path, **options)
    assert len(rebuilt) == len(scanned) == 15  # 3 scenes x 5 clips of 8 ticks
    for i in range(len(scanned)):
        a, b = scanned[i], rebuilt[i]
        assert np.array_equal(a["frames"], b["frames"])
        for key, value in a["actions"].items():
            assert np.array_equal(value, b["actions"][key]) if key != "valid" else value == b["actions"][key]
        assert a["meta"].keys() == b["meta"].keys()
        for key, value in a["meta"].items():
            assert np.array_equal(value, b["meta"][key]), key
    assert any(scanned[i]["actions"]["valid"]["trajectory"] for i in range(len(scanned)))
    assert not scanned[4]["actions"]["valid"]["trajectory"]  # the last clip of a scene has no 2 s future
    assert rebuilt.describe()["clips"] == 15
    with pytest.raises(DatasetError, match="num_frames=8"):
        NuScenesClips(copy, index=path, split="train", num_frames=25, size=SMALL)


# ---------------------------------------------------------------------- skips and errors
def test_corrupt_jpeg_is_skipped_and_counted_or_raises_when_strict(tmp_path: Path) -> None:
    write_nuscenes(tmp_path, [FakeScene("scene-0001", seconds=3.0), FakeScene("scene-0002", seconds=3.0)])
    ds = NuScenesClips(tmp_path, split="train", size=SMALL)
    bad = tmp_path / ds.build_index()[0]["files"][3][2]
    bad.write_bytes(bad.read_bytes()[:80])
    clips = [ds[i] for i in range(len(ds))]
    assert [c["meta"]["scene"] for c in clips] == ["scene-0002", "scene-0002"]  # replaced by the next clip
    assert ds.skips.counts["corrupt image"] == 1 and ds.skips.examples["corrupt image"] == [str(bad)]
    assert ds.describe()["skipped"]["corrupt image"]["count"] == 1 and len(ds.build_index()) == 1
    with pytest.raises(CorruptFileError, match=re.escape(bad.name)):
        NuScenesClips(tmp_path, split="train", size=SMALL, strict=True)[0]


def test_missing_camera_and_short_scene_are_skipped_with_reasons(tmp_path: Path) -> None:
    write_nuscenes(tmp_path, [
        FakeScene("scene-0001", seconds=3.0, cameras=tuple(c for c in CAMERAS if c != "CAM_BACK_LEFT")),
        FakeScene("scene-0002", seconds=1.5),
        FakeScene("scene-0004", seconds=3.0),
    ])
    ds = NuScenesClips(tmp_path, split="train", size=SMALL)
    assert {ds[i]["meta"]["scene"] for i in range(len(ds))} == {"scene-0004"}
    skipped = ds.describe()["skipped"]
    assert skipped["missing camera"]["count"] == 1 and "scene-0001" in skipped["missing camera"]["examples"][0]
    assert "CAM_BACK_LEFT" in skipped["missing camera"]["examples"][0]
    assert skipped["scene shorter than num_frames"]["examples"] == ["scene-0002: 16 ticks at 10 Hz, clips need 25"]
    front = NuScenesClips(tmp_path, split="train", views="front", size=SMALL)
    assert {front[i]["meta"]["scene"] for i in range(len(front))} == {"scene-0001", "scene-0004"}
    with pytest.raises(DatasetError, match="scene-0001.*CAM_BACK_LEFT"):
        NuScenesClips(tmp_path, split="train", size=SMALL, strict=True)


def test_dropped_frames_skip_the_clips_out_of_sync(tmp_path: Path) -> None:
    write_nuscenes(tmp_path, [FakeScene("scene-0001", seconds=5.0, dropped={"CAM_BACK": range(40, 44)})])
    ds = NuScenesClips(tmp_path, split="train", num_frames=10, size=SMALL)
    assert [ds[i]["meta"]["start_tick"] for i in range(len(ds))] == [0, 10, 20, 40]  # ticks 34-36 lack CAM_BACK
    skipped = ds.describe()["skipped"]["camera out of sync"]
    assert skipped["count"] == 1 and "CAM_BACK " in skipped["examples"][0]


def test_wrong_root_and_broken_tables_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"v1\.0-trainval/\*\.json from the nuScenes download.*version=v1\.0-mini"):
        NuScenesClips(tmp_path, size=SMALL)
    write_nuscenes(tmp_path, [FakeScene("scene-0001", seconds=3.0)])
    (tmp_path / "maps" / "fabricated.png").unlink()
    with pytest.raises(DatasetError, match="fabricated.png"):  # the devkit's assertion, wrapped
        NuScenesClips(tmp_path, size=SMALL)
    (tmp_path / "v1.0-trainval" / "sample.json").write_text('[{"token": ')
    with pytest.raises(CorruptFileError, match="sample.json"):
        NuScenesClips(tmp_path, size=SMALL)
    (tmp_path / "v1.0-trainval" / "sample.json").unlink()
    with pytest.raises(DatasetError, match=r"sample\.json"):
        NuScenesClips(tmp_path, size=SMALL)
