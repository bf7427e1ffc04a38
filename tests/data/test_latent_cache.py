"""Latent cache: exact round trip with the pixel codec, resumable shards, atomic writes, clear errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.data.test_videos import SIZE, write_numbered_video
from worldmodel.codecs import PixelCodec
from worldmodel.data.cache import LatentCacheClips, write_latent_cache
from worldmodel.data.errors import DatasetError
from worldmodel.data.videos import VideoFolderClips
from worldmodel.viz.tensors import from_uint8


@pytest.fixture()
def clips(tmp_path: Path) -> VideoFolderClips:
    write_numbered_video(tmp_path / "videos" / "a.mp4", 50, fps=10)
    return VideoFolderClips(tmp_path / "videos", num_frames=10, size=SIZE)  # 5 clips


def _assert_same_tree(a, b) -> None:
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            _assert_same_tree(a[k], b[k])
    elif isinstance(a, (np.ndarray, np.generic)):
        assert isinstance(b, (np.ndarray, np.generic)) and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


def test_round_trip_is_exact_for_the_pixel_codec(clips: VideoFolderClips, tmp_path: Path) -> None:
    codec = PixelCodec(factor=4)
    result = write_latent_cache(clips, codec, tmp_path / "cache", shard_size=2, batch_size=2, dtype="float32",
                                progress=False)
    assert result.written == [0, 1, 2] and result.manifest["latent_shape"] == [10, 1, 48, 8, 12]
    cache = LatentCacheClips(tmp_path / "cache")
    assert len(cache) == 5
    for i in range(5):
        clip, cached = clips[i], cache[i]
        expected = codec.encode_video(from_uint8(clip["frames"][None]))[0]
        assert cached["latents"].dtype == torch.float32 and torch.equal(cached["latents"], expected)
        _assert_same_tree(clip["actions"], cached["actions"])
        _assert_same_tree(clip["meta"], cached["meta"])


def test_float16_cache_is_close(clips: VideoFolderClips, tmp_path: Path) -> None:
    write_latent_cache(clips, PixelCodec(), tmp_path / "c16", shard_size=8, progress=False)
    cache = LatentCacheClips(tmp_path / "c16")
    expected = PixelCodec().encode_video(from_uint8(clips[3]["frames"][None]))[0]
    torch.testing.assert_close(cache[3]["latents"], expected, atol=1e-3, rtol=0)


def test_a_deleted_shard_is_the_only_one_rewritten(clips: VideoFolderClips, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    write_latent_cache(clips, PixelCodec(), out, shard_size=2, progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")}
    (out / "shard-00001.safetensors").unlink()
    result = write_latent_cache(clips, PixelCodec(), out, shard_size=2, progress=False)
    assert result.written == [1] and result.skipped == [0, 2]
    for name in ("shard-00000.safetensors", "shard-00000.json", "shard-00002.safetensors"):
        assert (out / name).stat().st_mtime_ns == stamps[name]
    assert len(LatentCacheClips(out)) == 5


class _FailingCodec(PixelCodec):
    """Raises on the n-th encode call, like a run killed mid-shard."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.calls, self.fail_at = 0, fail_at

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("interrupted")
        return super().encode(frames)


def test_an_interrupted_run_leaves_no_half_shard_and_resumes(clips: VideoFolderClips, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    config = {"_target_": "worldmodel.codecs.PixelCodec", "factor": 4}
    with pytest.raises(RuntimeError, match="interrupted"):
        write_latent_cache(clips, _FailingCodec(fail_at=3), out, shard_size=2, batch_size=1, progress=False,
                           codec_config=config)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "shard-00000.json", "shard-00000.safetensors"]
    with pytest.raises(DatasetError, match="incomplete"):
        LatentCacheClips(out)
    result = write_latent_cache(clips, PixelCodec(), out, shard_size=2, progress=False, codec_config=config)
    assert result.skipped == [0] and result.written == [1, 2]


def test_another_codec_or_a_wrong_folder_is_refused(clips: VideoFolderClips, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    write_latent_cache(clips, PixelCodec(factor=4), out, shard_size=4, progress=False)
    with pytest.raises(DatasetError, match="other codec, latent_shape"):
        write_latent_cache(clips, PixelCodec(factor=2), out, shard_size=4, progress=False)
    with pytest.raises(DatasetError, match="manifest.json"):
        LatentCacheClips(tmp_path / "nothing")
    (out / "shard-00001.json").unlink()
    with pytest.raises(DatasetError, match="shard-00001"):
        LatentCacheClips(out)


def test_cache_reads_in_data_loader_workers(clips: VideoFolderClips, tmp_path: Path) -> None:
    write_latent_cache(clips, PixelCodec(), tmp_path / "cache", shard_size=2, dtype="float32", progress=False)
    cache = LatentCacheClips(tmp_path / "cache")
    cache[0]  # an open shard in the parent must not travel to the workers
    # forkserver: the cache is pickled to each worker, so this checks what travels (never an open shard).
    loader = torch.utils.data.DataLoader(cache, batch_size=5, num_workers=2, collate_fn=list,
                                         multiprocessing_context="forkserver")
    batch = [c for part in loader for c in part]
    assert [float(c["latents"].sum()) for c in batch] == [float(cache[i]["latents"].sum()) for i in range(5)]
