"""Streaming evaluation state: feature statistics per horizon segment and per-video scores, resumable.

Every video adds to Gaussian statistics (FID: Inception features of single frames; FVD: I3D logits of
each camera's clip) of three sources: the ground truth ("real"), the model, and each baseline; the
real videos also split by parity into two halves whose distance is the metric's floor at this sample
count. PSNR, SSIM and action following are kept per video so curves and means come out at the end.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from einops import rearrange
from torch import nn

from worldmodel.eval.action_following import action_following
from worldmodel.eval.ego_motion import pixel_offset_of
from worldmodel.eval.gaussian import GaussianStats
from worldmodel.eval.i3d import MIN_FRAMES
from worldmodel.eval.psnr import psnr
from worldmodel.eval.ssim import ssim

REAL, HALF_A, HALF_B = "real", "real_half_a", "real_half_b"
# Clips shorter than I3D's minimum are stretched in time by frame repetition to this length (recorded).
FVD_RESAMPLE_FRAMES = 16


def plain(value: Any) -> Any:
    """`value` with numpy scalars and arrays as Python numbers and lists, tuples as lists: what the weights-only
    loader of `eval_state.pt` accepts (it refuses every class a pickle names, numpy's included)."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


def copy_last_frame(truth: np.ndarray, first_reference: int) -> np.ndarray:
    """The baseline video: the last reference frame held for every predicted frame. (T, V, H, W, 3) -> same."""
    out = truth.copy()
    out[first_reference:] = truth[first_reference - 1]
    return out


def fvd_clip_frames(length: int) -> np.ndarray:
    """Frame indices fed to I3D for a clip of `length` frames: all of them, or repeated up to 16 when too short."""
    if length >= MIN_FRAMES:
        return np.arange(length)
    return np.floor(np.arange(FVD_RESAMPLE_FRAMES) * length / FVD_RESAMPLE_FRAMES).astype(int)


class EvalAccumulator:
    """Adds videos one batch at a time; `state_dict` / `load_state_dict` let an interrupted run go on."""

    def __init__(self, metrics: Sequence[str], baselines: Sequence[str], segments: Sequence[tuple[str, int, int]],
                 first_reference: int, fps: float, fid_mask: np.ndarray | None = None,
                 inception: nn.Module | None = None, i3d: nn.Module | None = None, feature_batch: int = 16,
                 real_floor: bool = True) -> None:
        self.metrics, self.baselines = tuple(metrics), tuple(baselines)
        self.segments = list(segments)
        self.first_reference, self.fps = first_reference, fps
        self.fid_mask = fid_mask
        self.inception, self.i3d = inception, i3d
        self.feature_batch = feature_batch
        self.real_floor = real_floor
        if "fid" in self.metrics and inception is None:
            raise ValueError("FID needs the Inception feature network")
        if "fvd" in self.metrics and i3d is None:
            raise ValueError("FVD needs the I3D feature network")
        sources = [REAL, "model", *self.baselines]
        self.fid = {f"{label}|{s}": GaussianStats(2048) for label, _, _ in self.segments for s in sources} \
            if "fid" in self.metrics else {}
        self.fvd = {f"{label}|{s}": GaussianStats(400) for label, _, _ in self.segments for s in sources} \
            if "fvd" in self.metrics else {}
        if real_floor:
            for table, dim in ((self.fid, 2048), (self.fvd, 400)):
                if table:
                    table[f"all|{HALF_A}"], table[f"all|{HALF_B}"] = GaussianStats(dim), GaussianStats(dim)
        self.videos: list[dict[str, Any]] = []
        self.done: set[int] = set()

    # ------------------------------------------------------------------ features
    @staticmethod
    def _device(net: nn.Module) -> torch.device:
        tensor = next(iter(net.parameters()), None)
        if tensor is None:
            tensor = next(iter(net.buffers()), None)
        return torch.device("cpu") if tensor is None else tensor.device

    @torch.no_grad()
    def _inception(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> (N, 2048) float64 on the CPU, in batches of `feature_batch`."""
        device = self._device(self.inception)
        out = []
        for i in range(0, len(frames), self.feature_batch):
            x = torch.from_numpy(np.ascontiguousarray(frames[i:i + self.feature_batch])).permute(0, 3, 1, 2)
            out.append(self.inception(x.to(device)).double().cpu())
        return torch.cat(out) if out else torch.zeros(0, 2048, dtype=torch.float64)

    @torch.no_grad()
    def _i3d(self, clip: np.ndarray) -> torch.Tensor:
        """uint8 (T, H, W, 3) -> (1, 400) float64 on the CPU."""
        device = self._device(self.i3d)
        x = torch.from_numpy(np.ascontiguousarray(clip[fvd_clip_frames(len(clip))])).permute(0, 3, 1, 2)
        return self.i3d(x[None].to(device)).double().cpu()

    def _add_fid(self, source: str, video: np.ndarray, mask: np.ndarray | None, extra: Sequence[str]) -> None:
        k = self.first_reference
        feats = self._inception(rearrange(video[k:], "t v h w c -> (t v) h w c"))  # (P * V, 2048)
        feats = feats.reshape(video.shape[0] - k, video.shape[1], -1)
        for label, start, stop in self.segments:
            chosen = feats[start - k:stop - k]
            if mask is not None:
                chosen = chosen[torch.from_numpy(mask[start - k:stop - k])]
            chosen = chosen.reshape(-1, chosen.shape[-1])
            self.fid[f"{label}|{source}"].add(chosen)
            if label == "all":
                for name in extra:
                    self.fid[f"all|{name}"].add(chosen)

    def _add_fvd(self, source: str, video: np.ndarray, extra: Sequence[str]) -> None:
        for label, start, stop in self.segments:
            for v in range(video.shape[1]):
                logits = self._i3d(video[start:stop, v])
                self.fvd[f"{label}|{source}"].add(logits)
                if label == "all":
                    for name in extra:
                        self.fvd[f"all|{name}"].add(logits)

    # ------------------------------------------------------------------ one video
    def add_video(self, index: int, name: str, generated: np.ndarray, truth: np.ndarray,
                  actions: Mapping[str, Any] | None = None, meta: Mapping[str, Any] | None = None) -> None:
        """Score video `index` (its place in the protocol's selection, which fixes its FID frames and floor half).

        generated and truth: uint8 (T, V, H, W, 3), the reference frames (the first ones) included.
        """
        if index in self.done:
            return
        if generated.shape != truth.shape:
            raise ValueError(f"video {name}: generated {generated.shape} and ground truth {truth.shape} differ")
        k = self.first_reference
        videos = {"model": generated}
        if "copy_last_frame" in self.baselines:
            videos["copy_last_frame"] = copy_last_frame(truth, k)
        mask = None if self.fid_mask is None else self.fid_mask[index]
        half = [HALF_A if index % 2 == 0 else HALF_B] if self.real_floor else []
        if self.fid:
            self._add_fid(REAL, truth, mask, half)
            for source, video in videos.items():
                self._add_fid(source, video, mask, ())
        if self.fvd:
            self._add_fvd(REAL, truth, half)
            for source, video in videos.items():
                self._add_fvd(source, video, ())
        record: dict[str, Any] = {"index": int(index), "name": name}
        for metric, fn in (("psnr", psnr), ("ssim", ssim)):
            if metric in self.metrics:
                record[metric] = {s: fn(v[k:], truth[k:]).mean(axis=1).round(4).tolist() for s, v in videos.items()}
        if "action_following" in self.metrics and actions is not None and meta is not None:
            record["action_following"] = self._action_following({"model": generated, "ground_truth": truth},
                                                                actions, meta)
        self.videos.append(record)
        self.done.add(int(index))

    def _action_following(self, videos: Mapping[str, np.ndarray], actions: Mapping[str, Any],
                          meta: Mapping[str, Any]) -> dict[str, dict[str, float]]:
        cameras = list(meta.get("cameras", []))
        if "CAM_FRONT" not in cameras or "intrinsics" not in meta:
            return {}
        v = cameras.index("CAM_FRONT")
        extrinsics = meta.get("extrinsics")
        return {s: action_following(video[:, v], actions, np.asarray(meta["intrinsics"])[v], self.fps, origin_frame=0,
                                    camera_to_ego=None if extrinsics is None else np.asarray(extrinsics)[v],
                                    pixel_offset=pixel_offset_of(meta))
                for s, video in videos.items()}

    # ------------------------------------------------------------------ state
    def merge(self, other: EvalAccumulator) -> None:
        """Add another shard's videos (disjoint from these) to this accumulator."""
        overlap = self.done & other.done
        if overlap:
            raise ValueError(f"shards overlap: videos {sorted(overlap)[:10]} were scored twice")
        for table, theirs in ((self.fid, other.fid), (self.fvd, other.fvd)):
            if set(table) != set(theirs):
                raise ValueError(f"shards scored different statistics: {sorted(table)} vs {sorted(theirs)}")
            for name, stats in theirs.items():
                table[name].merge(stats)
        self.videos = sorted(self.videos + other.videos, key=lambda v: v["index"])
        self.done |= other.done

    def state_dict(self) -> dict[str, Any]:
        return {"done": [int(i) for i in sorted(self.done)], "videos": plain(self.videos),
                "fid": {k: s.state_dict() for k, s in self.fid.items()},
                "fvd": {k: s.state_dict() for k, s in self.fvd.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for table, key in ((self.fid, "fid"), (self.fvd, "fvd")):
            if set(state[key]) != set(table):
                raise ValueError(f"saved {key} statistics {sorted(state[key])} do not match this run's {sorted(table)}")
            for name in table:
                table[name] = GaussianStats.from_state(state[key][name])
        self.videos = list(state["videos"])
        self.done = set(int(i) for i in state["done"])
