"""The Waymo reader against fabricated v1 TFRecord and v2 parquet segments (tests/data/waymo_fixture.py)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.data.waymo_fixture import (CAMERA_POSITION, FOCAL, FakeSegment, decode_colour, v1_path,
                                      write_v1_segment, write_v2_segment)
from worldmodel.data.actions import Command
from worldmodel.data.errors import CorruptFileError, DatasetError
from worldmodel.data.waymo import WaymoClips
from worldmodel.data.waymo.cameras import CAMERAS
from worldmodel.data.waymo.protos import Frame
from worldmodel.data.waymo.tfrecord import (crc32c, crc32c_python, iter_records, masked_crc32c, read_record,
                                            write_records)

SIZE = (32, 48)  # from 64x96 (front) an exact halving; from 48x96 (sides) scale 2/3 and a crop


def clips(root, **options) -> WaymoClips:
    options = {"num_frames": 6, "size": SIZE, **options}
    return WaymoClips(root, **options)


def frame_numbers(clip, view: int = 0) -> list[int]:
    return [decode_colour(clip["frames"][t, view, 16, 24])[1] for t in range(clip["frames"].shape[0])]


# ----------------------------------------------------------------------------
# TFRecord framing and CRC-32C
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [crc32c, crc32c_python])
def test_crc32c_golden_values(fn):
    assert fn(b"123456789") == 0xE3069283
    assert fn(b"") == 0
    assert fn(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4
    assert fn(b"\xff" * 32) == 0x62A8AB43
    assert fn(bytes(range(32))) == 0x46DD794E


def test_masked_crc_matches_tensorflow_framing():
    # The length field of an empty record, as TensorFlow writes it: 8 zero bytes.
    crc = crc32c(bytes(8))
    assert masked_crc32c(bytes(8)) == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_tfrecord_round_trip(tmp_path):
    records = [b"", b"a", os.urandom(1000), b"frame" * 300]
    offsets = write_records(tmp_path / "x.tfrecord", records)
    read = list(iter_records(tmp_path / "x.tfrecord"))
    assert [d for _, d in read] == records
    assert [o for o, _ in read] == offsets == [0, 16, 33, 33 + 1016]
    with open(tmp_path / "x.tfrecord", "rb") as handle:
        assert read_record(handle, offsets[2], tmp_path / "x.tfrecord") == records[2]


@pytest.mark.parametrize("damage", ["flip_data", "flip_length", "truncate"])
def test_tfrecord_damage_names_file_and_record_offset(tmp_path, damage):
    path = tmp_path / "seg.tfrecord"
    offsets = write_records(path, [b"x" * 50, b"y" * 60, b"z" * 70])
    data = bytearray(path.read_bytes())
    if damage == "flip_data":
        data[offsets[1] + 12 + 30] ^= 0x01
    elif damage == "flip_length":
        data[offsets[1]] ^= 0x01
    else:
        data = data[: offsets[2] + 40]
    path.write_bytes(bytes(data))
    bad = 2 if damage == "truncate" else 1
    with pytest.raises(CorruptFileError) as info:
        list(iter_records(path))
    assert info.value.offset == offsets[bad]
    assert str(path) in str(info.value) and f"offset {offsets[bad]}" in str(info.value)


# ----------------------------------------------------------------------------
# Reading clips
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    """Both formats of the same segments: two in training (one straight, one turning left), one in validation."""
    root = tmp_path_factory.mktemp("waymo")
    straight = FakeSegment(name="111_000_000_040_000", jitter_us=1500)
    turning = FakeSegment(name="222_000_000_040_000", speed=6.0, yaw_rate=0.4, yaw0=-2.0)
    held_out = FakeSegment(name="333_000_000_040_000", num_frames=20)
    for split, segment in (("training", straight), ("training", turning), ("validation", held_out)):
        write_v1_segment(root / "v1", split, segment)
        write_v2_segment(root / "v2", split, segment)
    return root, {"straight": straight, "turning": turning, "held_out": held_out}


@pytest.mark.parametrize("fmt", ["v1", "v2"])
def test_frames_cameras_and_timestamps(dataset_root, fmt):
    root, segments = dataset_root
    ds = clips(root / fmt)
    assert ds.format == fmt and len(ds) == 2 * (40 // 6)
    clip = ds[1]
    assert clip["frames"].shape == (6, 5, *SIZE, 3) and clip["frames"].dtype == np.uint8
    assert clip["meta"]["cameras"] == list(CAMERAS)
    for v in range(5):  # every view shows its own camera, in canonical order
        assert {decode_colour(clip["frames"][t, v, 16, 24])[0] for t in range(6)} == {v}
    assert frame_numbers(clip) == list(range(6, 12))
    expected = segments["straight"].timestamps_us()[6:12] * 1e-6
    np.testing.assert_allclose(clip["meta"]["timestamps"], expected, rtol=0, atol=1e-6)
    assert clip["meta"]["scene"] == clip["meta"]["segment"] == segments["straight"].name
    assert clip["meta"]["dataset"] == "waymo" and clip["meta"]["fps"] == 10.0


def test_resampled_to_lower_fps(dataset_root):
    root, _ = dataset_root
    ds = clips(root / "v1", fps=5.0, num_frames=5, views="front")
    clip = ds[0]
    assert clip["frames"].shape[1] == 1 and clip["meta"]["cameras"] == ["FRONT"]
    assert decode_colour(clip["frames"][0, 0, 16, 24])[0] == CAMERAS.index("FRONT")
    assert frame_numbers(clip) == [0, 2, 4, 6, 8]
    np.testing.assert_allclose(np.diff(clip["meta"]["timestamps"]), 0.2, atol=2e-3)
    assert frame_numbers(ds[1]) == [10, 12, 14, 16, 18]


def test_stride_overlaps_clips(dataset_root):
    root, _ = dataset_root
    ds = clips(root / "v2", views=["FRONT", "SIDE_LEFT"], stride=2)
    assert len(ds) == 2 * ((40 - 6) // 2 + 1)
    assert frame_numbers(ds[1]) == list(range(2, 8))
    assert [decode_colour(ds[0]["frames"][0, v, 16, 24])[0] for v in range(2)] == [2, 0]


def test_intrinsics_and_extrinsics(dataset_root):
    root, _ = dataset_root
    meta = clips(root / "v1")[0]["meta"]
    k = meta["intrinsics"]
    front, side = CAMERAS.index("FRONT"), CAMERAS.index("SIDE_LEFT")
    # 64x96 -> 32x48: scale 1/2.
    np.testing.assert_allclose(k[front], [[FOCAL / 2, 0, 24], [0, FOCAL / 2, 16], [0, 0, 1]], atol=1e-5)
    # 48x96 -> scale 2/3 to 32x64, then 8 columns cropped on each side.
    np.testing.assert_allclose(k[side], [[FOCAL * 2 / 3, 0, 48 * 2 / 3 - 8], [0, FOCAL * 2 / 3, 16], [0, 0, 1]],
                               atol=1e-4)
    e = meta["extrinsics"]
    assert e.shape == (5, 4, 4) and e.dtype == np.float32
    # Optical axes in the ego frame: FRONT looks along +x with image-right = -y and image-down = -z.
    np.testing.assert_allclose(e[front, :3, :3], [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=1e-6)
    np.testing.assert_allclose(e[side, :3, 2], [0, 1, 0], atol=1e-6)  # SIDE_LEFT looks along +y
    np.testing.assert_allclose(e[:, :3, 3], np.tile(CAMERA_POSITION, (5, 1)), atol=1e-6)


def test_actions_straight_constant_speed(dataset_root):
    root, segments = dataset_root
    clip = clips(root / "v1")[1]
    actions, seg = clip["actions"], segments["straight"]
    np.testing.assert_allclose(actions["trajectory"], [[4, 0], [8, 0], [12, 0], [16, 0]], atol=0.05)
    np.testing.assert_allclose(actions["speed"], 8.0, atol=0.02)
    assert actions["command"] == Command.STRAIGHT
    assert actions["valid"] == {"command": True, "trajectory": True, "speed": True, "angle": False, "goal": True}
    # The goal (16 m ahead on the ground) seen by FRONT: centred, below the horizon.
    expected_v = (16 + FOCAL / 2 * CAMERA_POSITION[2] / (16 - CAMERA_POSITION[0])) / SIZE[0]
    np.testing.assert_allclose(actions["goal"], [0.5, expected_v], atol=1e-3)
    states = np.array([seg.state((t - seg.timestamps_us()[0]) * 1e-6) for t in seg.timestamps_us()[6:12]])
    np.testing.assert_allclose(clip["meta"]["ego_poses"], states, atol=1e-6)
    np.testing.assert_allclose(clip["meta"]["ego_speed"], 8.0, atol=0.02)


def test_actions_constant_yaw_rate_turn_left(dataset_root):
    root, _ = dataset_root
    clip = [c for c in (clips(root / "v2")[i] for i in range(6, 8)) if c["meta"]["scene"].startswith("222")][0]
    actions = clip["actions"]
    v, w = 6.0, 0.4
    t = np.array([0.5, 1.0, 1.5, 2.0])
    expected = np.stack([v / w * np.sin(w * t), v / w * (1 - np.cos(w * t))], axis=-1)
    np.testing.assert_allclose(actions["trajectory"], expected, atol=0.02)
    np.testing.assert_allclose(actions["speed"], v, atol=0.02)
    assert actions["command"] == Command.LEFT


def test_v1_and_v2_give_the_same_clips(dataset_root):
    root, _ = dataset_root
    a, b = clips(root / "v1", views=["FRONT", "SIDE_RIGHT"]), clips(root / "v2", views=["FRONT", "SIDE_RIGHT"])
    assert len(a) == len(b)
    for i in (0, len(a) - 1):
        ca, cb = a[i], b[i]
        np.testing.assert_array_equal(ca["frames"], cb["frames"])
        for name in ("trajectory", "speed", "goal", "command"):
            np.testing.assert_allclose(ca["actions"][name], cb["actions"][name], atol=1e-6)
        assert ca["actions"]["valid"] == cb["actions"]["valid"]
        for key in ("timestamps", "intrinsics", "extrinsics", "ego_poses", "ego_speed"):
            np.testing.assert_allclose(ca["meta"][key], cb["meta"][key], atol=1e-6)
        assert ca["meta"]["scene"] == cb["meta"]["scene"]


@pytest.mark.parametrize("fmt", ["v1", "v2"])
def test_index_round_trip(dataset_root, tmp_path, fmt):
    root, segments = dataset_root
    ds = clips(root / fmt)
    entries = ds.build_index()
    path = tmp_path / "index.json"
    path.write_text(json.dumps(entries))
    again = clips(root / fmt, index=path)
    assert len(again) == len(ds) and again.format == fmt
    for i in (0, 7):
        np.testing.assert_array_equal(again[i]["frames"], ds[i]["frames"])
        np.testing.assert_allclose(again[i]["actions"]["trajectory"], ds[i]["actions"]["trajectory"])
    entry = entries[1]
    assert entry["timestamps_us"] == segments["straight"].timestamps_us()[6:12].tolist()
    if fmt == "v1":  # each frame is a record offset that reads back that frame directly
        with open(root / fmt / entry["file"], "rb") as handle:
            frame = Frame.FromString(read_record(handle, entry["frames"][2], entry["file"]))
        assert frame.timestamp_micros == entry["timestamps_us"][2]
    else:  # each frame has one parquet row id per camera
        assert all(len(rows) == 5 for rows in entry["frames"])
    front = clips(root / fmt, views="front", index=entries)  # a subset of the indexed cameras
    assert front[0]["frames"].shape[1] == 1
    with pytest.raises(DatasetError, match="rebuild the index"):
        clips(root / fmt, num_frames=8, index=entries)


def test_split_filtering(dataset_root):
    root, segments = dataset_root
    for fmt in ("v1", "v2"):
        ds = clips(root / fmt, split="validation")
        assert {e["segment"] for e in ds.build_index()} == {segments["held_out"].name}
        assert len(ds) == 20 // 6
    with pytest.raises(DatasetError, match="splits found under the root: \\['training', 'validation'\\]"):
        clips(root / "v1", split="testing")


def test_wrong_root_says_what_is_expected(tmp_path):
    with pytest.raises(DatasetError) as info:
        clips(tmp_path / "nowhere")
    message = str(info.value)
    assert f"*.tfrecord segments under {tmp_path / 'nowhere'}/training/ (v1)" in message
    assert f"{tmp_path / 'nowhere'}/training/camera_image/*.parquet (v2)" in message
    (tmp_path / "training").mkdir()
    with pytest.raises(DatasetError, match="no Waymo v2 segments found"):
        clips(tmp_path, format="v2")


# ----------------------------------------------------------------------------
# Skips and damage
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["v1", "v2"])
def test_short_segment_and_missing_camera_are_skipped(tmp_path, fmt):
    write = write_v1_segment if fmt == "v1" else write_v2_segment
    write(tmp_path, "training", FakeSegment(name="ok", num_frames=12))
    write(tmp_path, "training", FakeSegment(name="short", num_frames=4))
    write(tmp_path, "training", FakeSegment(name="noside", num_frames=12, missing_camera="SIDE_LEFT"))
    ds = clips(tmp_path)
    assert {e["segment"] for e in ds.entries} == {"ok"}
    assert ds.describe()["skipped"] == {"segment shorter than one clip": 1, "missing camera": 1}
    assert ds.describe()["scenes"] == 1 and ds.describe()["clips"] == 2
    assert {e["segment"] for e in clips(tmp_path, views="front").entries} == {"ok", "noside"}
    with pytest.raises(DatasetError, match="strict=true"):
        clips(tmp_path, strict=True)


def test_truncated_tfrecord_keeps_frames_before_the_damage(tmp_path):
    segment = FakeSegment(name="cut", num_frames=30)
    path, offsets = write_v1_segment(tmp_path, "training", segment)
    path.write_bytes(path.read_bytes()[: offsets[20] + 100])
    ds = clips(tmp_path)
    assert len(ds) == 20 // 6 and frame_numbers(ds[2]) == list(range(12, 18))
    assert ds.describe()["skipped"] == {"corrupt TFRecord (frames before the damage kept)": 1}
    assert ds.skips.examples["corrupt TFRecord (frames before the damage kept)"] == [str(path)]
    with pytest.raises(CorruptFileError) as info:
        clips(tmp_path, strict=True)
    assert info.value.offset == offsets[20] and str(v1_path(tmp_path, "training", segment)) in str(info.value)


@pytest.mark.parametrize("fmt", ["v1", "v2"])
def test_corrupt_jpeg_is_skipped_or_raised(tmp_path, fmt):
    write = write_v1_segment if fmt == "v1" else write_v2_segment
    write(tmp_path, "training", FakeSegment(name="bad", num_frames=18, corrupt_image=(3, "FRONT_RIGHT")))
    ds = clips(tmp_path)
    assert len(ds) == 3
    clip = ds[0]  # replaced by the next readable clip
    assert frame_numbers(clip) == list(range(6, 12))
    assert ds.skips.total == 1 and "camera FRONT_RIGHT" in next(iter(ds.skips.examples.values()))[0]
    assert frame_numbers(clips(tmp_path, views="front")[0]) == list(range(6))
    with pytest.raises(CorruptFileError, match="FRONT_RIGHT"):
        clips(tmp_path, strict=True)[0]
