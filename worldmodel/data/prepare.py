"""`prepare(cfg)`: scan a dataset root, validate it, write its clip index, summary and optional latent cache."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from worldmodel.data.cache import to_jsonable, write_latent_cache
from worldmodel.data.errors import DatasetError
from worldmodel.data.registry import open_dataset
from worldmodel.data.verify import check_mode
from worldmodel.files import atomic_write_json

# Top-level keys of conf/prepare.yaml passed to the reader when not null.
READER_KEYS = ("root", "split", "num_frames", "fps", "views", "size", "stride", "strict")


@dataclass
class PrepareResult:
    """What `prepare` wrote: the index, the summary (also returned) and the cache folder if any."""

    out_dir: Path
    split: str
    index_path: Path
    summary_path: Path
    cache_dir: Path | None
    summary: dict[str, Any]


def reader_options(cfg: DictConfig) -> dict[str, Any]:
    """Reader keyword options from the config: the non-null clip keys plus `options`."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    options = {k: plain[k] for k in READER_KEYS if plain.get(k) is not None}
    if "root" in options:
        options["root"] = str(Path(options["root"]).expanduser())
    options.update(plain.get("options") or {})
    return options


def _refuse_empty(reader: Any, root: Any) -> None:
    if len(reader) == 0:
        skips = getattr(reader, "skips", None)
        why = skips.summary() if skips is not None else "nothing found"
        raise DatasetError(f"no clips found under {root}; skipped: {why.replace(chr(10), '; ')}")


def _verify(reader: Any, mode: str, progress: bool) -> dict[str, Any]:
    """Check the files behind every clip (readers with `verify_files`), dropping the clips of damaged ones.

    A reader without files to check (the procedural world, a mixture) decodes its first and last clip instead,
    so that a broken decoder shows up now rather than in the first training step.
    """
    check_mode(mode)
    if hasattr(reader, "verify_files"):
        return reader.verify_files(mode, progress=progress).as_dict()
    checked = sorted({0, len(reader) - 1}) if len(reader) else []
    for i in checked:
        reader[i]
    return {"mode": "decoded clips", "clips": checked}


def _counts(reader: Any, index: list[Any]) -> dict[str, Any]:
    """The reader's description with the skip counts of its SkipLog, checked against the index written."""
    described = reader.describe() if hasattr(reader, "describe") else {"clips": len(reader)}
    skips = getattr(reader, "skips", None)
    if skips is not None:
        described.update(skipped=skips.as_dict(), skipped_total=skips.total)
    if described.get("clips") != len(index):
        # The summary must describe the index it sits beside; a reader that disagrees is a bug to fix, not hide.
        raise RuntimeError(f"{type(reader).__name__} describes {described.get('clips')} clips but its index holds "
                           f"{len(index)}; please report this")
    return described


def prepare(cfg: DictConfig) -> PrepareResult:
    """Scan `cfg.root` with the `cfg.dataset` reader, write `<out>/index/<split>.json`, update
    `<out>/summary.json` and, with `cfg.cache`, the latent cache in `<out>/latents/<split>/`."""
    if not cfg.dataset:
        raise DatasetError("pass dataset=<synthetic|nuscenes|waymo|opendv|videos> and root=<its folder>")
    options = reader_options(cfg)
    mode = check_mode(str(cfg.verify))
    reader = open_dataset(str(cfg.dataset), **options)
    _refuse_empty(reader, options.get("root"))
    verified = _verify(reader, mode, bool(cfg.progress))
    _refuse_empty(reader, options.get("root"))  # every clip may have needed a damaged file
    split = str(cfg.split or getattr(reader, "split", None) or "all")
    out = Path(str(cfg.out)).expanduser()
    index = reader.build_index() if hasattr(reader, "build_index") else [{"clip": i} for i in range(len(reader))]
    described = _counts(reader, index)
    index_path = atomic_write_json(out / "index" / f"{split}.json", to_jsonable(index))
    cache_dir = None
    if cfg.cache:
        cache_dir = out / "latents" / split
        codec = instantiate(cfg.codec)
        written = write_latent_cache(reader, codec, cache_dir, codec_config=OmegaConf.to_container(cfg.codec, resolve=True),
                                     progress=bool(cfg.progress), **OmegaConf.to_container(cfg.cache_options, resolve=True))
        described["cache"] = {"dir": str(cache_dir), "latent_shape": written.manifest["latent_shape"],
                              "dtype": written.manifest["dtype"], "shards_written": len(written.written),
                              "shards_kept": len(written.skipped)}
    described.update(index=str(index_path), verify=verified, options=to_jsonable(options))
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if summary.get("dataset") not in (None, str(cfg.dataset)):
        summary = {}
    summary = {"dataset": str(cfg.dataset), "splits": {**summary.get("splits", {}), split: to_jsonable(described)}}
    atomic_write_json(summary_path, summary)
    return PrepareResult(out, split, index_path, summary_path, cache_dir, summary)


def format_summary(result: PrepareResult) -> str:
    """The summary as a small table: one row per split, then the skip reasons with an example each."""
    head = f"{'dataset':<10}{'split':<8}{'scenes':>8}{'clips':>9}{'frames':>11}{'skipped':>9}"
    lines = [head, "-" * len(head)]
    reasons = []
    for split, d in result.summary["splits"].items():
        lines.append(f"{result.summary['dataset']:<10}{split:<8}{d.get('scenes', '-'):>8}{d.get('clips', 0):>9}"
                     f"{d.get('frames', '-'):>11}{d.get('skipped_total', 0):>9}")
        for reason, info in (d.get("skipped") or {}).items():
            example = info["examples"][0] if info.get("examples") else ""
            reasons.append(f"  {split}: {info['count']:6d}  {reason}  (e.g. {example})")
    if reasons:
        lines += ["skipped:", *reasons]
    for split, d in result.summary["splits"].items():
        v = d.get("verify") or {}
        if "checked" in v:
            lines.append(f"verify={v['mode']} ({split}): {v['checked']} {v.get('unit', 'files')} checked, "
                         f"{v['damaged']} damaged, clips left out: {v['clips_left_out']}")
    lines.append(f"index:   {result.index_path}")
    if result.cache_dir is not None:
        lines.append(f"latents: {result.cache_dir}")
    lines.append(f"summary: {result.summary_path}")
    return "\n".join(lines)
