"""OpenDV-YouTube: meta splits, frame folders and raw videos, discard windows, language commands and captions."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.data.test_videos import SIZE, clip_numbers, write_numbered_folder, write_numbered_video
from worldmodel.data.actions import Command
from worldmodel.data.errors import DatasetError
from worldmodel.data.opendv import OPENDV_COMMANDS, OpenDVClips, opendv_command


def _record(vid: str, split: str, start: float = 0.0, end: float = 0.0, youtuber: str = "Road Trips") -> dict:
    return {"id": 1, "videoid": vid, "youtuber": youtuber, "split": split, "start_discard": start,
            "end_discard": end, "duration": "1:00", "length": 60}


@pytest.fixture()
def opendv(tmp_path: Path) -> Path:
    """DriveAGI layout: OpenDV-YouTube/{full_images,val_images,videos} and meta/OpenDV-YouTube.json beside it."""
    root = tmp_path / "OpenDV-YouTube"
    records = [_record("vidframes", "Train", start=90.0, end=60.0), _record("vidraw", "Train", start=1.0, end=1.0),
               _record("vidval", "Val", start=5.0), _record("vidmissing", "Train")]
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "OpenDV-YouTube.json").write_text(json.dumps(records))
    write_numbered_folder(root / "full_images" / "Road_Trips" / "vidframes", range(30), suffix=".jpg")
    write_numbered_video(root / "videos" / "Road_Trips" / "vidraw.mp4", 150, fps=30)  # 5 s
    write_numbered_folder(root / "val_images" / "Road_Trips" / "vidval", range(10), suffix=".jpg")
    lang = tmp_path / "OpenDV-YouTube-Language"
    lang.mkdir()
    notes = [{"cmd": 2, "blip": "a city street with cars", "folder": "full_images/Road_Trips/vidframes",
              "first_frame": "000000000.jpg", "last_frame": "000000011.jpg"},
             {"cmd": 6, "blip": "a highway exit", "folder": "full_images/Road_Trips/vidframes",
              "first_frame": "000000012.jpg", "last_frame": "000000019.jpg"},
             {"cmd": 10, "blip": "merging traffic", "folder": "full_images/Road_Trips/vidframes",
              "first_frame": "000000020.jpg", "last_frame": "000000029.jpg"}]
    (lang / "10hz_YouTube_train_split0.json").write_text(json.dumps(notes))
    (lang / "10hz_YouTube_val.json").write_text(json.dumps([]))
    return root


def test_split_filtering_is_case_insensitive_and_missing_videos_are_counted(opendv: Path) -> None:
    train = OpenDVClips(opendv, split="train", num_frames=10, size=SIZE)
    assert sorted({e["scene"] for e in train.entries}) == ["Road_Trips/vidframes", "Road_Trips/vidraw"]
    assert train.skips.counts["not downloaded (no frames folder or video file)"] == 1
    val = OpenDVClips(opendv, split="Val", num_frames=5, size=SIZE)
    assert {e["scene"] for e in val.entries} == {"Road_Trips/vidval"} and len(val) == 2


def test_frame_folders_start_after_the_discarded_seconds(opendv: Path) -> None:
    ds = OpenDVClips(opendv, num_frames=10, size=SIZE)
    clips = [ds[i] for i in range(len(ds)) if ds.entries[i]["kind"] == "frames"]
    assert [clip_numbers(c) for c in clips] == [list(range(k, k + 10)) for k in (0, 10, 20)]
    np.testing.assert_allclose(clips[1]["meta"]["timestamps"], 90.0 + np.arange(10, 20) / 10)
    assert clips[0]["meta"]["dataset"] == "opendv" and clips[0]["meta"]["cameras"] == ["CAM_FRONT"]


def test_raw_video_drops_the_discard_windows_and_resamples(opendv: Path) -> None:
    ds = OpenDVClips(opendv, num_frames=10, size=SIZE)
    raw = [i for i, e in enumerate(ds.entries) if e["kind"] == "video"]
    assert len(raw) == 3  # 5 s minus 1 s at each end: 3 s, 30 ticks at 10 Hz
    assert clip_numbers(ds[raw[0]]) == list(range(30, 60, 3))  # starts 1 s in, every third 30 fps frame
    assert clip_numbers(ds[raw[-1]])[-1] <= 120
    assert ds[raw[0]]["meta"]["opendv_frames"] == [0, 9]


def test_language_gives_the_command_and_caption(opendv: Path) -> None:
    ds = OpenDVClips(opendv, num_frames=10, size=SIZE, language=opendv.parent / "OpenDV-YouTube-Language")
    by_frames = {tuple(e["opendv_frames"]): i for i, e in enumerate(ds.entries) if e["kind"] == "frames"}
    first, second, third = (ds[by_frames[k]] for k in ((0, 9), (10, 19), (20, 29)))
    assert first["actions"]["command"] == Command.LEFT and first["meta"]["text"] == "a city street with cars"
    assert second["actions"]["command"] == Command.LEFT and second["meta"]["text"] == "a highway exit"  # 8 of 10 frames
    assert third["actions"]["command"] == Command.OTHER and third["meta"]["opendv_cmd"] == 10
    assert first["actions"]["valid"] == {"command": True, "trajectory": False, "speed": False, "angle": False,
                                         "goal": False}
    raw = next(i for i, e in enumerate(ds.entries) if e["kind"] == "video")
    assert not any(ds[raw]["actions"]["valid"].values()) and ds[raw]["meta"]["text"] is None


@pytest.mark.parametrize("cmd,expected", [
    (0, Command.STRAIGHT), (1, Command.STRAIGHT), (2, Command.LEFT), (3, Command.RIGHT),
    (4, Command.LANE_CHANGE_LEFT), (5, Command.LANE_CHANGE_RIGHT), (6, Command.LEFT), (7, Command.RIGHT),
    (8, Command.STRAIGHT), (9, Command.STRAIGHT), (10, Command.OTHER), (11, Command.U_TURN), (12, Command.STOP),
    (13, Command.OTHER)])
def test_command_table(cmd: int, expected: Command) -> None:
    assert opendv_command(cmd) is expected


def test_command_table_is_complete_and_unknown_is_none() -> None:
    assert sorted(OPENDV_COMMANDS) == list(range(14)) and opendv_command(14) is None


def test_missing_meta_and_wrong_split_are_clear(tmp_path: Path, opendv: Path) -> None:
    empty = tmp_path / "elsewhere" / "OpenDV-YouTube"
    empty.mkdir(parents=True)
    with pytest.raises(DatasetError, match="OpenDV-YouTube.json"):
        OpenDVClips(empty)
    with pytest.raises(DatasetError, match="split 'test'"):
        OpenDVClips(opendv, split="test")
    with pytest.raises(DatasetError, match="language annotations"):
        OpenDVClips(opendv, language=tmp_path / "nowhere")


def test_index_round_trip_keeps_language(opendv: Path, tmp_path: Path) -> None:
    ds = OpenDVClips(opendv, num_frames=10, size=SIZE, language=opendv.parent / "OpenDV-YouTube-Language")
    index = tmp_path / "index.json"
    index.write_text(json.dumps(ds.build_index()))
    again = OpenDVClips(opendv, num_frames=10, size=SIZE, index=index)
    assert len(again) == len(ds)
    assert again[0]["meta"]["text"] == ds[0]["meta"]["text"] and again[0]["actions"]["command"] == ds[0]["actions"]["command"]
