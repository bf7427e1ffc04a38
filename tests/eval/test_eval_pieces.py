"""The pieces of an evaluation run: protocols, clip selection, horizon segments, Gaussian statistics, baselines."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from worldmodel.config import CONF_DIR
from worldmodel.eval.accumulate import FVD_RESAMPLE_FRAMES, copy_last_frame, fvd_clip_frames
from worldmodel.eval.frechet import frechet_distance
from worldmodel.eval.gaussian import GaussianStats, frechet
from worldmodel.eval.i3d import MIN_FRAMES
from worldmodel.eval.protocol import EvalProtocol, ProtocolError
from worldmodel.eval.selection import evenly_spaced, fid_frame_mask, segments, select_clips
from omegaconf import OmegaConf


@pytest.mark.parametrize("path", sorted((CONF_DIR / "protocol").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_protocol_builds(path, monkeypatch) -> None:
    monkeypatch.setenv("OPENDV_META", "meta.json")
    config = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    protocol = EvalProtocol.from_config(config)
    assert protocol.name == path.stem
    assert protocol.video_frames(10.0) > protocol.first_reference


def test_paper_protocol_numbers_are_the_published_ones() -> None:
    load = lambda name: EvalProtocol.from_config(  # noqa: E731
        OmegaConf.to_container(OmegaConf.load(CONF_DIR / "protocol" / f"{name}.yaml"), resolve=True))
    single, mview, waymo, opendv = (load(n) for n in ("nuscenes_single", "nuscenes_mview", "waymo_zeroshot",
                                                      "opendv_long"))
    assert (single.num_videos, single.num_frames, single.first_reference) == (None, 25, 1)
    assert (mview.selection, mview.fid_frames, mview.dataset["views"]) == ("per_scene", 10000, None)
    assert (waymo.num_videos, waymo.fid_frames, waymo.use_actions) == (600, 15000, False)
    assert (opendv.num_videos, opendv.seconds, opendv.horizon_step_s) == (300, 12.5, 2.5)
    assert [label for label, _, _ in segments(1, opendv.video_frames(10.0), 10.0, 2.5)] == [
        "all", "0-2.5s", "2.5-5s", "5-7.5s", "7.5-10s", "10-12.5s"]


@pytest.mark.parametrize("change, key", [({"metrics": ["fid", "lpips"]}, "metrics"),
                                         ({"selection": "random"}, "selection"),
                                         ({"num_frames": None}, "num_frames / seconds"),
                                         ({"num_videos": 1}, "num_videos"),
                                         ({"first_reference": 0}, "first_reference"),
                                         ({"colour": "red"}, "colour")])
def test_bad_protocols_name_the_key(change: dict, key: str) -> None:
    config = {"name": "p", "num_frames": 25, **change}
    with pytest.raises(ProtocolError, match=key):
        EvalProtocol.from_config(config)


def test_fingerprint_changes_with_anything_that_changes_numbers() -> None:
    a = EvalProtocol(name="p")
    assert a.fingerprint(checkpoint="x") == EvalProtocol(name="p").fingerprint(checkpoint="x")
    assert a.fingerprint(checkpoint="x") != EvalProtocol(name="p", seed=1).fingerprint(checkpoint="x")
    assert a.fingerprint(checkpoint="x") != a.fingerprint(checkpoint="y")


def test_segments_cover_the_predicted_frames_in_steps() -> None:
    seg = segments(first_reference=3, num_frames=3 + 50, fps=10.0, step_s=2.5)
    assert seg[0] == ("all", 3, 53)
    assert seg[1:] == [("0-2.5s", 3, 28), ("2.5-5s", 28, 53)]
    # A last partial step shorter than half a step is dropped, not reported as a noisy point.
    assert segments(1, 1 + 30, 10.0, 2.5)[1:] == [("0-2.5s", 1, 26)]
    assert segments(1, 1 + 40, 10.0, 2.5)[1:] == [("0-2.5s", 1, 26), ("2.5-4s", 26, 41)]


class _Clips(torch.utils.data.Dataset):
    def __init__(self, scenes: list[str]) -> None:
        self.scenes = scenes

    def __len__(self) -> int:
        return len(self.scenes)

    def build_index(self) -> list[dict]:
        return [{"scene": s} for s in self.scenes]


def test_selection_modes() -> None:
    data = _Clips(["a", "a", "b", "b", "b", "c", "d", "d"])
    assert select_clips(data, "first", 3) == [0, 1, 2]
    assert select_clips(data, "evenly_spaced", None) == list(range(8))
    assert select_clips(data, "evenly_spaced", 3) == [0, 4, 7]
    assert select_clips(data, "per_scene", None) == [0, 2, 5, 6]
    assert select_clips(data, "per_scene", 2) == [0, 6]
    assert evenly_spaced(5, 10) == [0, 1, 2, 3, 4]


def test_fid_frame_mask_draws_exactly_the_asked_count_reproducibly() -> None:
    mask = fid_frame_mask(num_videos=10, frames_per_video=24, views=6, wanted=1000, seed=3)
    assert mask.shape == (10, 24, 6) and mask.sum() == 1000
    assert np.array_equal(mask, fid_frame_mask(10, 24, 6, 1000, 3))
    assert not np.array_equal(mask, fid_frame_mask(10, 24, 6, 1000, 4))
    assert fid_frame_mask(2, 3, 1, None, 0) is None and fid_frame_mask(2, 3, 1, 100, 0) is None


def test_gaussian_stats_match_numpy_and_merge_like_one_pass() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 5)), rng.normal(1.0, 2.0, size=(200, 5))
    whole = GaussianStats(5)
    whole.add(torch.from_numpy(np.concatenate([x[:100], x[100:]])))
    parts = [GaussianStats(5), GaussianStats(5)]
    parts[0].add(torch.from_numpy(x[:100]))
    parts[1].add(torch.from_numpy(x[100:]))
    parts[0].merge(parts[1])
    restored = GaussianStats.from_state(parts[0].state_dict())
    for stats in (whole, restored):
        mean, cov = stats.mean_cov()
        assert np.allclose(mean, x.mean(0)) and np.allclose(cov, np.cov(x, rowvar=False))
    other = GaussianStats(5)
    other.add(torch.from_numpy(y))
    expected = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert frechet(whole, other) == pytest.approx(expected, rel=1e-9)
    assert frechet(whole, GaussianStats(5)) is None
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        whole.add(torch.zeros(3, 4))


def test_copy_last_frame_holds_the_last_reference() -> None:
    truth = np.arange(6 * 1 * 2 * 2 * 3, dtype=np.uint8).reshape(6, 1, 2, 2, 3)
    copy = copy_last_frame(truth, first_reference=2)
    assert np.array_equal(copy[:2], truth[:2])
    assert all(np.array_equal(copy[t], truth[1]) for t in range(2, 6))


def test_short_fvd_clips_are_stretched_by_repetition() -> None:
    assert np.array_equal(fvd_clip_frames(MIN_FRAMES), np.arange(MIN_FRAMES))
    stretched = fvd_clip_frames(7)
    assert len(stretched) == FVD_RESAMPLE_FRAMES and stretched[0] == 0 and stretched[-1] == 6
    assert np.all(np.diff(stretched) >= 0) and set(stretched) == set(range(7))
