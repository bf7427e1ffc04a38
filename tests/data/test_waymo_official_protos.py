"""Wire compatibility of our Frame subset with the official `waymo_open_dataset.dataset_pb2` classes.

The official wheel installs without TensorFlow: `pip install --no-deps waymo-open-dataset-tf-2-12-0`
(its generated code runs on the protobuf runtime the package already uses).
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.data.waymo_fixture import FakeSegment, make_frame
from worldmodel.data.waymo import WaymoClips, protos
from worldmodel.data.waymo.tfrecord import write_records

official = pytest.importorskip(
    "waymo_open_dataset.dataset_pb2",
    reason="the official Waymo protos are not installed: pip install --no-deps waymo-open-dataset-tf-2-12-0")


def used_fields(frame) -> dict:
    """Every field the reader uses, as plain Python values."""
    return {
        "name": frame.context.name,
        "timestamp": frame.timestamp_micros,
        "pose": list(frame.pose.transform),
        "calibrations": [(c.name, list(c.intrinsic), list(c.extrinsic.transform), c.width, c.height,
                          c.rolling_shutter_direction) for c in frame.context.camera_calibrations],
        "images": [(i.name, i.image, list(i.pose.transform), i.velocity.v_x, i.pose_timestamp, i.shutter)
                   for i in frame.images],
    }


def official_frame_with_extras(segment: FakeSegment, k: int):
    """An official Frame with fields our subset does not declare (lidar, labels, stats)."""
    frame = make_frame(segment, k, official)
    frame.context.stats.time_of_day = "Day"
    frame.context.stats.weather = "sunny"
    laser = frame.lasers.add(name=1)
    laser.ri_return1.range_image_compressed = b"\x01\x02\x03"
    frame.context.laser_calibrations.add(name=1, beam_inclination_min=-0.3, beam_inclination_max=0.05)
    frame.images[0].camera_trigger_time = 12.5
    return frame


def test_official_frame_parses_with_ours():
    segment = FakeSegment(num_frames=3)
    theirs = official_frame_with_extras(segment, 2)
    ours = protos.Frame.FromString(theirs.SerializeToString())
    assert used_fields(ours) == used_fields(theirs)
    assert ours.images[0].camera_trigger_time == 12.5
    # Undeclared fields ride along as unknown fields and come back unchanged.
    back = official.Frame.FromString(ours.SerializeToString())
    assert back == theirs
    assert back.context.stats.weather == "sunny" and back.lasers[0].ri_return1.range_image_compressed == b"\x01\x02\x03"


def test_our_frame_parses_with_official():
    segment = FakeSegment(num_frames=3)
    ours = make_frame(segment, 1, protos)
    data = ours.SerializeToString()
    theirs = official.Frame.FromString(data)
    assert used_fields(theirs) == used_fields(ours)
    assert theirs.SerializeToString() == data  # same fields, same encoding byte for byte
    assert make_frame(segment, 1, official).SerializeToString() == data


def test_enum_values_match_official():
    for name, value in protos.CAMERA_NAME_VALUES.items():
        assert official.CameraName.Name.Value(name) == value
    assert official.CameraName.Name.Value("FRONT") == protos.CameraName.Name.Value("FRONT")
    for message in ("Frame", "Context", "CameraCalibration", "CameraImage", "Transform", "Velocity"):
        ours = getattr(protos, message).DESCRIPTOR
        theirs = getattr(official, message).DESCRIPTOR
        assert ours.full_name == theirs.full_name
        for field in ours.fields:
            other = theirs.fields_by_name[field.name]
            shape = ("number", "type", "is_repeated", "is_packed", "has_presence")
            assert [getattr(field, a) for a in shape] == [getattr(other, a) for a in shape], field.name
            if field.message_type is not None:
                assert field.message_type.full_name == other.message_type.full_name


def test_reader_reads_a_segment_written_by_the_official_classes(tmp_path):
    segment = FakeSegment(name="official_seg", num_frames=12)
    path = tmp_path / "training" / "segment-official_seg_with_camera_labels.tfrecord"
    path.parent.mkdir(parents=True)
    write_records(path, [official_frame_with_extras(segment, k).SerializeToString() for k in range(12)])
    ds = WaymoClips(tmp_path, num_frames=6, size=(32, 48))
    assert len(ds) == 2 and ds.skips.total == 0
    clip = ds[1]
    assert clip["meta"]["scene"] == "official_seg"
    np.testing.assert_allclose(clip["meta"]["ego_speed"], segment.speed, atol=0.02)
