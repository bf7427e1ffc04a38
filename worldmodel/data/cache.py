"""Latent cache: a dataset's clips encoded once by a codec into sharded safetensors files, and read back.

Layout of a cache folder:
```
manifest.json              codec config, latent shape, dtype, clip count, shard size, dataset description
shard-00000.safetensors    one tensor per clip, "clip-00000000" (t, v, c, h, w), in the cache dtype
shard-00000.json           {"clips": [{"index", "actions", "meta"}]}: the clips' actions and meta, JSON-safe
```
Shard k holds clips [k * shard_size, (k + 1) * shard_size). Each file is written atomically and the
safetensors file last, so a shard exists completely or not at all; a rerun skips finished shards
and refuses to mix a cache written with another codec, latent shape, dtype or clip count.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from worldmodel.codecs.base import LatentCodec
from worldmodel.data.errors import DatasetError, SkipLog, require_root
from worldmodel.files import atomic_path, atomic_write_json
from worldmodel.viz.tensors import from_uint8

CACHE_FORMAT = "worldmodel-latent-cache"
CACHE_VERSION = 1
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# What must agree between a cache on disk and a run that resumes it.
_RESUME_KEYS = ("format", "version", "codec", "latent_shape", "dtype", "clips", "shard_size")


# ----------------------------------------------------------------------------------------------
# JSON-safe actions and meta (numpy arrays and scalars keep their dtype through the round trip)
# ----------------------------------------------------------------------------------------------
def to_jsonable(obj: Any) -> Any:
    """Nested dicts / lists of numpy arrays, numpy scalars, tensors and plain values -> JSON values."""
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype), "shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return {"__scalar__": obj.item(), "dtype": str(obj.dtype)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def from_jsonable(obj: Any) -> Any:
    """The inverse of `to_jsonable` (tuples come back as lists)."""
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return np.asarray(obj["__ndarray__"], dtype=obj["dtype"]).reshape(obj["shape"])
        if "__scalar__" in obj:
            return np.dtype(obj["dtype"]).type(obj["__scalar__"])
        return {k: from_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_jsonable(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
def shard_name(k: int) -> str:
    return f"shard-{k:05d}"


def codec_description(codec: LatentCodec) -> dict[str, Any]:
    """What identifies a codec's latents when no config is given: class, channels, factor, repr."""
    cls = type(codec)
    return {"_target_": f"{cls.__module__}.{cls.__qualname__}", "latent_channels": int(codec.latent_channels),
            "downsample": int(codec.downsample), "repr": codec.extra_repr()}


def _shard_done(out_dir: Path, k: int, count: int) -> bool:
    tensors, records = out_dir / f"{shard_name(k)}.safetensors", out_dir / f"{shard_name(k)}.json"
    if not (tensors.is_file() and records.is_file()):
        return False
    try:
        with safe_open(str(tensors), framework="pt") as handle:
            return int((handle.metadata() or {}).get("clips", -1)) == count
    except Exception:  # a damaged file counts as not written  # noqa: BLE001
        return False


@dataclass
class CacheWriteResult:
    """Where a cache went, its manifest, and which shards this run wrote or found finished."""

    out_dir: Path
    manifest: dict[str, Any]
    written: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


def write_latent_cache(dataset: Dataset, codec: LatentCodec, out_dir: str | Path, shard_size: int = 256,
                       batch_size: int = 4, progress: bool = True, dtype: str = "float16", workers: int = 0,
                       codec_config: Mapping[str, Any] | None = None,
                       device: str | torch.device | None = None) -> CacheWriteResult:
    """Encode every clip of `dataset` with `codec` into `out_dir` (resumable; see the module docstring).

    Frames are turned into floats in [-1, 1] (b, t, v, 3, H, W) and encoded with `codec.encode_video`;
    latents are stored in `dtype` (float16 by default; float32 keeps them exact). `codec_config`
    (e.g. the Hydra codec node) identifies the codec in the manifest; `workers` data loader
    processes read clips in parallel.
    """
    if dtype not in DTYPES:
        raise ValueError(f"cache dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if shard_size < 1 or batch_size < 1:
        raise ValueError(f"shard_size and batch_size must be >= 1, got {shard_size} and {batch_size}")
    total = len(dataset)
    if total == 0:
        raise DatasetError("the dataset holds no clips; nothing to cache")
    out = Path(out_dir)
    if device is None:
        first_param = next(codec.parameters(), None)
        device = first_param.device if first_param is not None else torch.device("cpu")
    t, v, h, w, _ = np.asarray(dataset[0]["frames"]).shape
    num_shards = -(-total // shard_size)
    manifest = {
        "format": CACHE_FORMAT, "version": CACHE_VERSION,
        "codec": to_jsonable(dict(codec_config)) if codec_config is not None else codec_description(codec),
        "latent_shape": [int(t), int(v), *codec.latent_shape(int(h), int(w))], "frame_size": [int(h), int(w)],
        "dtype": dtype, "clips": total, "shard_size": int(shard_size), "num_shards": num_shards,
        "dataset": to_jsonable(dataset.describe()) if hasattr(dataset, "describe") else {"clips": total},
        "complete": False,
    }
    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        differ = [k for k in _RESUME_KEYS if old.get(k) != manifest[k]]
        if differ:
            raise DatasetError(f"{out} holds a latent cache with other {', '.join(differ)} "
                               f"({', '.join(f'{k}={old.get(k)!r}' for k in differ)}); "
                               "write to a new folder or delete this one")
    atomic_write_json(manifest_path, manifest)
    result = CacheWriteResult(out, manifest)
    codec.eval()
    bar = tqdm(total=total, desc=f"encoding latents -> {out}", unit="clip", disable=not progress)
    for k in range(num_shards):
        lo, hi = k * shard_size, min((k + 1) * shard_size, total)
        if _shard_done(out, k, hi - lo):
            result.skipped.append(k)
            bar.update(hi - lo)
            continue
        _write_shard(dataset, codec, out, k, range(lo, hi), manifest, batch_size, workers, device, bar)
        result.written.append(k)
    bar.close()
    manifest["complete"] = True
    atomic_write_json(manifest_path, manifest)
    return result


def _write_shard(dataset: Dataset, codec: LatentCodec, out: Path, k: int, indices: range,
                 manifest: dict[str, Any], batch_size: int, workers: int, device: torch.device, bar: tqdm) -> None:
    """Encode one shard's clips and write its JSON, then its safetensors file, each atomically."""
    loader = DataLoader(Subset(dataset, indices), batch_size=batch_size, num_workers=workers,
                        collate_fn=list, shuffle=False)
    expected = tuple(manifest["latent_shape"])
    tensors: dict[str, torch.Tensor] = {}
    records: list[dict[str, Any]] = []
    index = indices.start
    for batch in loader:
        frames = torch.from_numpy(np.stack([np.asarray(c["frames"]) for c in batch]))  # (b, t, v, H, W, 3)
        with torch.no_grad():
            latents = codec.encode_video(from_uint8(frames).to(device))  # (b, t, v, c, h, w)
        for clip, latent in zip(batch, latents):
            if tuple(latent.shape) != expected:
                raise DatasetError(f"clip {index} encodes to {tuple(latent.shape)}, the cache holds {expected}; "
                                   "every clip of a cached dataset needs the same frames, views and size")
            tensors[f"clip-{index:08d}"] = latent.to(DTYPES[manifest["dtype"]]).cpu().contiguous()
            records.append({"index": index, "actions": to_jsonable(clip["actions"]), "meta": to_jsonable(clip["meta"])})
            index += 1
        bar.update(len(batch))
    atomic_write_json(out / f"{shard_name(k)}.json", {"clips": records})
    with atomic_path(out / f"{shard_name(k)}.safetensors") as temp:
        save_file(tensors, str(temp), metadata={"clips": str(len(records)), "first": str(indices.start)})


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------
class LatentCacheClips(Dataset):
    """Clips of a latent cache: {"latents": float32 (t, v, c, h, w), "actions", "meta"}, one shard open at a time."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.cache_dir = Path(cache_dir).expanduser()
        # A missing folder (nearly always an unset LATENT_CACHE) before a folder without a manifest.
        require_root(self.cache_dir, "latent cache", "LATENT_CACHE",
                     "manifest.json and shard-*.safetensors (LATENT_CACHE: the folder of train/ and val/)",
                     key="cache_dir")
        manifest_path = self.cache_dir / "manifest.json"
        if not manifest_path.is_file():
            raise DatasetError(f"no latent cache at {self.cache_dir}: expected manifest.json and shard-*.safetensors "
                               "written by `worldmodel-prepare ... cache=true` (or write_latent_cache)")
        try:
            self.manifest = json.loads(manifest_path.read_text())
        except ValueError as err:
            raise DatasetError(f"cannot read {manifest_path} ({err})") from err
        if self.manifest.get("format") != CACHE_FORMAT:
            raise DatasetError(f"{manifest_path} is not a worldmodel latent cache manifest")
        if not self.manifest.get("complete"):
            raise DatasetError(f"the latent cache at {self.cache_dir} is incomplete (its writing was interrupted); "
                               "rerun the same command to finish it")
        missing = [shard_name(k) for k in range(self.manifest["num_shards"])
                   if not (self.cache_dir / f"{shard_name(k)}.safetensors").is_file()
                   or not (self.cache_dir / f"{shard_name(k)}.json").is_file()]
        if missing:
            raise DatasetError(f"the latent cache at {self.cache_dir} lacks {missing[0]}.safetensors/.json "
                               f"({len(missing)} shards missing); rerun the command that wrote it")
        self.num_clips, self.shard_size = int(self.manifest["clips"]), int(self.manifest["shard_size"])
        self.latent_shape = tuple(self.manifest["latent_shape"])
        self.skips = SkipLog()
        self._shard: int | None = None
        self._handle: Any = None
        self._records: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return self.num_clips

    def _open(self, k: int) -> None:
        if self._shard == k:
            return
        self._handle = None  # drop the previous shard before opening the next
        base = self.cache_dir / shard_name(k)
        self._records = json.loads(base.with_suffix(".json").read_text())["clips"]
        self._handle = safe_open(str(base.with_suffix(".safetensors")), framework="pt")
        self._shard = k

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.num_clips:
            raise IndexError(f"clip {index} out of range ({self.num_clips} clips)")
        k, offset = divmod(index, self.shard_size)
        self._open(k)
        record = self._records[offset]
        latents = self._handle.get_tensor(f"clip-{index:08d}").to(torch.float32)
        return {"latents": latents, "actions": from_jsonable(record["actions"]), "meta": from_jsonable(record["meta"])}

    def __getstate__(self) -> dict[str, Any]:
        # Data loader workers open their own shard.
        state = dict(self.__dict__)
        state.update(_shard=None, _handle=None, _records=[])
        return state

    def build_index(self) -> list[dict[str, Any]]:
        """(shard, clip) of every index."""
        return [{"shard": i // self.shard_size, "clip": i} for i in range(self.num_clips)]

    def describe(self) -> dict[str, Any]:
        """The source dataset's description, with the cache's shape and codec."""
        source = self.manifest.get("dataset", {})
        return {**source, "dataset": f"latents of {source.get('dataset', 'a dataset')}", "clips": self.num_clips,
                "latent_shape": list(self.latent_shape), "codec": self.manifest.get("codec"),
                "cache_dir": str(self.cache_dir), "skipped": {}, "skipped_total": 0}
