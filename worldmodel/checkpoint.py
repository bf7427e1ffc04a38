"""Exported world models: write a `save_pretrained` folder, load it (or a Lightning .ckpt) back.

An export folder holds everything rollout and evaluation need without Lightning:
    model/            MaskGWM.save_pretrained (safetensors + config.json), EMA weights
    worldmodel.json   format marker, the resolved run config (codec, data, sampler), the step
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from worldmodel.errors import UserInputError
from worldmodel.files import FileWriteError, atomic_write_json
from worldmodel.retired import retire_settings
from worldmodel.safe_build import build_stored_config, check_stored_config

EXPORT_MARKER = "worldmodel.json"
EXPORT_FORMAT = "worldmodel-export"
EXPORT_VERSION = 1


# The network's class in an export's model/config.json, and the weight files `save_pretrained` writes there.
MODEL_CLASS = "MaskGWM"
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
WEIGHTS_INDEX = "diffusion_pytorch_model.safetensors.index.json"
_REEXPORT = "re-export: copy the export again, or load the run's .ckpt (<run_dir>/checkpoints/last.ckpt)"


class CheckpointError(UserInputError, ValueError):
    """A checkpoint path that is missing, damaged, or not a worldmodel checkpoint."""


@dataclass
class LoadedWorldModel:
    """A network, its codec and sampler, and the config of the run that trained it."""

    model: nn.Module
    codec: nn.Module
    sampler: Any
    config: dict[str, Any]
    source: Path
    step: int


def save_export(dirpath: str | Path, model: nn.Module, run_config: dict[str, Any], step: int) -> Path:
    """Write an export folder; the previous export stays intact until the new one is complete."""
    final = Path(dirpath)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        model.save_pretrained(staging / "model", safe_serialization=True)
        atomic_write_json(staging / EXPORT_MARKER, {
            "format": EXPORT_FORMAT, "version": EXPORT_VERSION, "step": int(step), "config": run_config})
        if final.exists():
            # Two renames: the old folder is only deleted once the new one has its name.
            retired = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, retired)
            os.replace(staging, final)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, final)
    except (OSError, RuntimeError) as err:  # a full disk or a read-only folder: name the export being written
        shutil.rmtree(staging, ignore_errors=True)
        raise FileWriteError(final, err) from err
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _read_export(path: Path) -> tuple[dict[str, Any], Path]:
    import json

    marker = path / EXPORT_MARKER
    if not marker.is_file():
        raise CheckpointError(
            f"{path} is a folder but not a worldmodel export: expected {EXPORT_MARKER} and model/ in it "
            f"(exports are written by training under <run_dir>/export)")
    try:
        info = json.loads(marker.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{marker} is not valid JSON ({err}); the export is damaged, re-export it") from err
    if info.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{marker} has format {info.get('format')!r}, expected {EXPORT_FORMAT!r}")
    return info, path / "model"


def _read_lightning(path: Path, mmap: bool = False) -> dict[str, Any]:
    from worldmodel.training.module import CHECKPOINT_KEY

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(checkpoint, dict) or CHECKPOINT_KEY not in checkpoint:
        raise CheckpointError(
            f"{path} is a checkpoint of another model: it has no '{CHECKPOINT_KEY}' entry. Pass a .ckpt "
            f"written by worldmodel-train or an export folder (<run_dir>/export)")
    return checkpoint


def _check_export_model(model_dir: Path) -> None:
    """Refuse, in one line, a model/ of another class or with damaged weights before diffusers reads it (its own
    errors are tracebacks dozens of lines long, or it loads a foreign class with a warning)."""
    import json

    from safetensors import safe_open

    config_file = model_dir / "config.json"
    try:
        found = json.loads(config_file.read_text()).get("_class_name")
    except (OSError, json.JSONDecodeError, AttributeError) as err:
        raise CheckpointError(f"cannot read {config_file} ({type(err).__name__}: {err}); the export is damaged, "
                              f"{_REEXPORT}") from None
    if found != MODEL_CLASS:
        raise CheckpointError(f"{config_file} has _class_name {found!r}, not {MODEL_CLASS!r}: this folder holds "
                              f"another model, not a worldmodel network; pass an export written by worldmodel-train "
                              f"(<run_dir>/export)")
    index = model_dir / WEIGHTS_INDEX
    try:
        # Large models are saved in shards listed by an index; small ones in one file.
        files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else [WEIGHTS_FILE]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(f"cannot read {index} ({type(err).__name__}: {err}); the export is damaged, "
                              f"{_REEXPORT}") from None
    for name in files:
        weights = model_dir / name
        try:
            # safe_open parses the header and checks that the tensors it lists fill the file exactly, so a
            # truncated copy fails here without reading the weights.
            with safe_open(str(weights), framework="pt"):
                pass
        except Exception as err:  # a missing file and a bad header raise different types  # noqa: BLE001
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"{weights} is missing or damaged ({reason}); {_REEXPORT}") from None


def _stored_section(config: dict[str, Any], section: str, source: Path) -> dict[str, Any]:
    node = config.get(section) if isinstance(config, dict) else None
    if not isinstance(node, dict) or "_target_" not in node:
        raise CheckpointError(f"{source}: its run config has no '{section}' section naming a class (_target_)")
    node = retire_settings(section, dict(node), source)
    if "pretrained_sd3" in node:
        # Trained weights are loaded next; the SD3 folder the run started from need not exist here.
        node["pretrained_sd3"] = None
    return node


def _check_sections(config: dict[str, Any], sections: tuple[str, ...], source: Path) -> None:
    """Every section that will be built passes the allow-list before the first is built or any weight is read."""
    for section in sections:
        check_stored_config(_stored_section(config, section, source), section, source)


def _build(config: dict[str, Any], section: str, source: Path) -> Any:
    # A stranger's export or .ckpt names these classes: only worldmodel's own are built (worldmodel/safe_build.py).
    return build_stored_config(_stored_section(config, section, source), section, source)


def model_from_training_state(config: dict[str, Any], state: dict[str, torch.Tensor], source: str | Path) -> nn.Module:
    """The network of a run config with the weights of a LightningModule state dict, EMA weights preferred.

    Used for `.ckpt` files and for the full state dict an FSDP run gathers before exporting.
    """
    source = Path(source)
    model = _build(config, "model", source)
    prefix = "ema.shadow." if any(k.startswith("ema.shadow.") for k in state) else "model."
    weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{source} does not match its own model config: {len(missing)} missing and "
            f"{len(unexpected)} unexpected weights (first: {(missing or unexpected)[:3]})")
    return model


def _existing(path: str | Path) -> Path:
    source = Path(path).expanduser()
    if not source.exists():
        raise CheckpointError(f"checkpoint {source} does not exist; pass an export folder (<run_dir>/export) or a "
                              f".ckpt (<run_dir>/checkpoints/last.ckpt)")
    return source


def stored_run_config(path: str | Path) -> dict[str, Any]:
    """The run config of an export folder or a Lightning `.ckpt`, without reading its weights (a `.ckpt` is
    memory-mapped, so only the pages of its small entries are read), its model, codec and sampler sections
    checked to name only worldmodel's own classes. For `worldmodel-plan checkpoint=`."""
    source = _existing(path)
    config = _read_export(source)[0].get("config") if source.is_dir() else (
        _read_lightning(source, mmap=True)["worldmodel"].get("config"))
    _check_sections(config, ("model", "codec", "sampler"), source)
    return config


def load_world_model(path: str | Path, device: str | torch.device = "cpu",
                     weights_dtype: torch.dtype | None = None) -> LoadedWorldModel:
    """Load an export folder or a Lightning `.ckpt` of worldmodel-train, EMA weights preferred.

    `weights_dtype` (e.g. torch.bfloat16) casts the network's weights before they move to `device`, so the device
    never holds the float32 copy; the codec keeps its own dtype."""
    from worldmodel.model import MaskGWM

    source = _existing(path)
    if source.is_dir():
        info, model_dir = _read_export(source)
        config, step = info.get("config"), int(info.get("step", 0))
        _check_sections(config, ("codec", "sampler"), source)
        _check_export_model(model_dir)
        # accelerate is not a dependency; saying so keeps diffusers from warning about it on every load.
        model = MaskGWM.from_pretrained(model_dir, low_cpu_mem_usage=False)
    else:
        checkpoint = _read_lightning(source)
        config, step = checkpoint["worldmodel"].get("config"), int(checkpoint.get("global_step", 0))
        _check_sections(config, ("model", "codec", "sampler"), source)
        model = model_from_training_state(config, checkpoint["state_dict"], source)
    codec = _build(config, "codec", source)
    sampler = _build(config, "sampler", source)
    if weights_dtype is not None:
        # nn.Module's own `to`: diffusers' override warns on every dtype cast, even with no float32-only modules.
        model = nn.Module.to(model, weights_dtype)
    model = model.to(device).eval()
    return LoadedWorldModel(model=model, codec=codec.to(device).eval(), sampler=sampler,
                            config=config, source=source, step=step)
