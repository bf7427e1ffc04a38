"""Build MaskGWM from a config, optionally starting its spatial stack from a local diffusers SD3 transformer folder."""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from worldmodel.model.maskgwm import MaskGWM

SD3_CLASS_NAME = "SD3Transformer2DModel"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
WEIGHTS_INDEX_NAME = "diffusion_pytorch_model.safetensors.index.json"
# Config keys that fix the shapes of SD3's parameters; each must equal the preset's value.
# (sample_size is left out: with pos_embed_max_size it sets no parameter shape.)
SD3_SIZE_KEYS = ("patch_size", "in_channels", "out_channels", "num_layers", "attention_head_dim",
                 "num_attention_heads", "joint_attention_dim", "caption_projection_dim", "pooled_projection_dim",
                 "pos_embed_max_size", "qk_norm")


class SD3LoadError(ValueError):
    """A folder that is missing, is not a diffusers SD3 transformer, or does not fit the MaskGWM preset."""


#################################################################################
#                                SD3 Folder                                     #
#################################################################################

def find_sd3_transformer(path: str | Path) -> Path:
    """The folder holding the SD3 transformer's config.json: `path` itself or its `transformer/` subfolder."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise SD3LoadError(f"SD3 folder {root} does not exist (pass a local diffusers SD3 pipeline folder or its "
                           f"transformer/ subfolder; nothing is downloaded)")
    for folder in (root, root / "transformer"):
        if (folder / "config.json").is_file():
            return folder
    raise SD3LoadError(f"{root} has no config.json, nor a transformer/config.json: not a diffusers SD3 folder")


def read_sd3_config(folder: Path) -> dict:
    """The transformer's config.json, checked to be a plain SD3 (not SD3.5 dual-attention) transformer."""
    config = json.loads((folder / "config.json").read_text())
    if config.get("_class_name") != SD3_CLASS_NAME:
        raise SD3LoadError(f"{folder / 'config.json'} describes {config.get('_class_name')!r}, "
                           f"expected {SD3_CLASS_NAME!r}")
    dual = config.get("dual_attention_layers") or ()
    if len(dual) > 0:
        raise SD3LoadError(f"{folder} is an SD3.5 transformer with dual-attention layers {list(dual)}: "
                           f"MaskGWM's spatial blocks are plain SD3 joint blocks")
    return config


def check_sd3_sizes(sd3_config: dict, model_config: dict, folder: Path) -> None:
    """Raise naming every size key where the SD3 folder and the preset disagree."""
    defaults = {"out_channels": None, "qk_norm": None}
    mismatched = []
    for key in SD3_SIZE_KEYS:
        ours, theirs = model_config[key], sd3_config.get(key, defaults.get(key))
        if key == "out_channels":
            ours = ours if ours is not None else model_config["in_channels"]
            theirs = theirs if theirs is not None else sd3_config.get("in_channels")
        if ours != theirs:
            mismatched.append(f"{key}: SD3 folder {theirs!r} vs preset {ours!r}")
    if mismatched:
        raise SD3LoadError(f"the SD3 transformer in {folder} does not fit this preset: " + "; ".join(mismatched))


def load_sd3_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The safetensors state dict of the folder: one file, or shards listed by the index json."""
    single, index = folder / WEIGHTS_NAME, folder / WEIGHTS_INDEX_NAME
    if single.is_file():
        return load_file(single)
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            if not (folder / shard).is_file():
                raise SD3LoadError(f"{index} lists the shard {shard}, which is missing from {folder}")
            state.update(load_file(folder / shard))
        return state
    raise SD3LoadError(f"{folder} has neither {WEIGHTS_NAME} nor {WEIGHTS_INDEX_NAME} (safetensors weights needed)")


#################################################################################
#                                  Factory                                      #
#################################################################################

def build_maskgwm(pretrained_sd3: str | Path | None = None, **config) -> MaskGWM:
    """MaskGWM(**config); with `pretrained_sd3` its spatial stack is loaded from that local SD3 folder.

    The temporal, view, mask-reconstruction and action parameters keep their own init (zero-init
    where the method says so), so the video model starts equal to the SD3 image model.
    """
    model = MaskGWM(**config)
    if pretrained_sd3 is not None:
        folder = find_sd3_transformer(pretrained_sd3)
        check_sd3_sizes(read_sd3_config(folder), dict(model.config), folder)
        model.load_sd3_state_dict(load_sd3_weights(folder))
    return model
