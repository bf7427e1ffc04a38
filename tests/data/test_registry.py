"""open_dataset by name, its errors, and the seeded weighted mixture."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import Dataset

from tests.data.test_videos import SIZE, write_numbered_video
from worldmodel.data import MixtureDataset, open_dataset
from worldmodel.data.registry import READERS, reader_class
from worldmodel.data.videos import VideoFolderClips


@pytest.fixture()
def two_roots(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    write_numbered_video(a / "x.mp4", 40, fps=10)
    write_numbered_video(b / "y.mp4", 80, fps=10)
    (b / "broken.mp4").write_bytes(b"nope" * 10)
    return a, b


def test_every_name_is_registered_by_import_path() -> None:
    assert set(READERS) == {"synthetic", "nuscenes", "waymo", "opendv", "videos"}
    assert READERS["nuscenes"] == "worldmodel.data.nuscenes:NuScenesClips"
    assert READERS["waymo"] == "worldmodel.data.waymo:WaymoClips"
    assert reader_class("videos") is VideoFolderClips
    assert reader_class("opendv").__name__ == "OpenDVClips"


def test_open_dataset_builds_readers(two_roots: tuple[Path, Path]) -> None:
    ds = open_dataset("videos", root=two_roots[0], num_frames=10, size=SIZE)
    assert isinstance(ds, VideoFolderClips) and len(ds) == 4
    synthetic = open_dataset("synthetic", num_clips=3, num_frames=2, size=(32, 64))
    assert len(synthetic) == 3


def test_unknown_name_lists_the_names() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'kitti'.*synthetic, nuscenes, waymo, opendv, videos"):
        open_dataset("kitti")


def test_unknown_option_names_it_and_the_accepted_ones(two_roots: tuple[Path, Path]) -> None:
    with pytest.raises(TypeError, match=r"no option 'framerate'.*accepts root, split, num_frames, fps"):
        open_dataset("videos", root=two_roots[0], framerate=5)


def test_mixture_is_deterministic_and_follows_the_weights(two_roots: tuple[Path, Path]) -> None:
    members = {name: open_dataset("videos", root=root, num_frames=10, size=SIZE)
               for name, root in zip(("a", "b"), two_roots)}
    mix = MixtureDataset(members, {"a": 1.0, "b": 3.0}, length=4000, seed=7)
    again = MixtureDataset(members, {"a": 1.0, "b": 3.0}, length=4000, seed=7)
    other = MixtureDataset(members, {"a": 1.0, "b": 3.0}, length=4000, seed=8)
    draws = [mix.locate(i) for i in range(len(mix))]
    assert draws == [again.locate(i) for i in range(len(again))]
    assert draws != [other.locate(i) for i in range(len(other))]
    share_a = np.mean([name == "a" for name, _ in draws])
    assert abs(share_a - 0.25) < 0.03
    clips_b = [c for name, c in draws if name == "b"]
    assert set(clips_b) == set(range(len(members["b"])))  # every clip of a member is reachable
    name, clip = mix.locate(0)
    np.testing.assert_array_equal(mix[0]["frames"], members[name][clip]["frames"])


def test_mixture_merges_skips_and_refuses_mixed_shapes(two_roots: tuple[Path, Path]) -> None:
    a = open_dataset("videos", root=two_roots[0], num_frames=10, size=SIZE)
    b = open_dataset("videos", root=two_roots[1], num_frames=10, size=SIZE)
    mix = MixtureDataset({"a": a, "b": b}, {"a": 0.5, "b": 0.5}, length=10, seed=0)
    assert mix.skips.counts == {"b: unreadable video": 1}
    assert mix.describe()["skipped_total"] == 1
    wide = open_dataset("videos", root=two_roots[1], num_frames=10, size=(32, 64))
    with pytest.raises(ValueError, match="different clip shapes.*a: frames.*b: frames"):
        MixtureDataset({"a": a, "b": wide}, {"a": 0.5, "b": 0.5}, length=10, seed=0)
    with pytest.raises(ValueError, match="one weight per dataset"):
        MixtureDataset({"a": a, "b": b}, {"a": 1.0}, length=10, seed=0)


class _Substituting(Dataset):
    """A member whose `__getitem__` hands a substitute (as a reader skipping a damaged clip does)."""

    clip = {"frames": np.zeros((1, 1, 2, 2, 3), np.uint8)}

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int) -> dict:
        return {"substitute_for": index, **self.clip}

    def read_clip(self, index: int) -> dict:
        return {"exact": index, **self.clip}


def test_mixture_read_clip_reads_its_members_clip_exactly() -> None:
    mix = MixtureDataset({"a": _Substituting(), "b": _Substituting()}, {"a": 0.5, "b": 0.5}, length=20, seed=0)
    for i in range(len(mix)):
        assert mix.read_clip(i)["exact"] == mix.locate(i)[1]
