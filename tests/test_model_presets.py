"""The model presets: one full definition (sd3_medium) plus sizes, as DiT's `DiT_models` table.

- every preset builds (tiny on the CPU, the rest on the meta device) with the sizes this file's table names,
  and its parameter count per part matches what those sizes give (SD3's own class for the spatial stack);
- each file that inherits sets only keys its parent has, each to a value other than the parent's;
- each _mview preset differs from its single-view preset only in the multi-view keys.
"""
from __future__ import annotations

import inspect

import pytest
import torch
from diffusers import SD3Transformer2DModel
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from worldmodel.config import CONF_DIR, compose_config
from worldmodel.model import MaskGWM
from worldmodel.model.maskgwm import SD3_MODULES
from worldmodel.model.sd3 import SD3_SIZE_KEYS

MODEL_DIR = CONF_DIR / "model"
ROOT = "sd3_medium"
# (num_layers, num_attention_heads, attention_head_dim): hidden = heads x head_dim, as the file headers say.
SIZES = {"tiny": (2, 2, 48), "small": (8, 6, 64), "base": (12, 12, 64), "sd3_medium": (24, 24, 64)}
SINGLE_VIEW = sorted(SIZES)
PRESETS = SINGLE_VIEW + [f"{name}_mview" for name in SINGLE_VIEW]
# What six cameras change; everything else of an _mview preset is its single-view preset's.
MVIEW_KEYS = {"num_views": 6, "use_view_blocks": True}
# Small enough to allocate on a CPU; the others are built on the meta device (no memory).
ON_CPU = {"tiny", "tiny_mview"}
# SD3 medium's transformer, as diffusers builds it at these sizes (BENCHMARKS.md, "Model sizes").
SD3_MEDIUM_SPATIAL = 2_028_328_000


def preset(name: str) -> DictConfig:
    """The preset as `worldmodel-train model=<name>` composes it, without the default experiment's own keys."""
    return compose_config("train", [f"model={name}", "~experiment"]).model


def parent_of(name: str) -> str | None:
    return None if name == ROOT else name.removesuffix("_mview") if name.endswith("_mview") else ROOT


def test_every_preset_file_is_listed() -> None:
    # A new preset must join the size table (and so these tests), not go untested.
    assert sorted(p.stem for p in MODEL_DIR.glob("*.yaml")) == sorted(PRESETS)


def test_root_is_the_one_full_definition() -> None:
    raw = OmegaConf.load(MODEL_DIR / f"{ROOT}.yaml")
    assert "defaults" not in raw, f"{ROOT}.yaml is the root of the presets; it inherits from nothing"
    options = set(inspect.signature(MaskGWM.__init__).parameters) - {"self"}
    # Every option of the network is written (and commented) once, here; sigma_data only matters with
    # prediction=preconditioned and is added on the command line then (`+model.sigma_data=...`).
    assert set(raw) - {"_target_", "pretrained_sd3"} == options - {"sigma_data"}


@pytest.mark.parametrize("name", [p for p in PRESETS if p != ROOT])
def test_preset_inherits_and_sets_only_what_differs(name: str) -> None:
    raw = OmegaConf.to_container(OmegaConf.load(MODEL_DIR / f"{name}.yaml"))
    parent = parent_of(name)
    assert raw.pop("defaults") == [parent, "_self_"]
    composed_parent = OmegaConf.to_container(preset(parent), resolve=True)
    new = sorted(set(raw) - set(composed_parent))
    assert not new, f"{name}.yaml adds {new}: new options belong in {ROOT}.yaml, with their comment"
    redundant = sorted(key for key, value in raw.items() if composed_parent[key] == value)
    assert not redundant, f"{name}.yaml repeats {parent}'s value for {redundant}; drop those lines"


@pytest.mark.parametrize("name", SINGLE_VIEW)
def test_mview_differs_from_its_single_view_preset_only_in_the_camera_keys(name: str) -> None:
    single = OmegaConf.to_container(preset(name), resolve=True)
    mview = OmegaConf.to_container(preset(f"{name}_mview"), resolve=True)
    assert set(mview) == set(single)
    differs = {key: mview[key] for key in mview if mview[key] != single[key]}
    assert differs == MVIEW_KEYS
    assert single["num_views"] == 1 and single["use_view_blocks"] is False


def _attention(hidden: int, heads: int, head_dim: int, qk_norm: bool) -> int:
    """worldmodel.model.attention.Attention: q, k, v and out projections with biases, optional q/k RMS norms."""
    inner = heads * head_dim
    return 3 * (hidden * inner + inner) + inner * hidden + hidden + (2 * head_dim if qk_norm else 0)


def _mlp(hidden: int, ratio: float) -> int:
    width = int(hidden * ratio)
    return hidden * width + width + width * hidden + hidden


def _temporal_block(cfg: DictConfig) -> int:
    """Self-attention over frames, text cross-attention, MLP and a 9-way adaLN (TemporalBlock, window 1)."""
    hidden = cfg.num_attention_heads * cfg.attention_head_dim
    attn = _attention(hidden, cfg.num_attention_heads, cfg.attention_head_dim, cfg.qk_norm is not None)
    return 2 * attn + _mlp(hidden, cfg.temporal_mlp_ratio) + hidden * 9 * hidden + 9 * hidden


def _view_block(cfg: DictConfig) -> int:
    """A per-view embedding, attention across the views, MLP and a 6-way adaLN (ViewBlock)."""
    hidden = cfg.num_attention_heads * cfg.attention_head_dim
    attn = _attention(hidden, cfg.num_attention_heads, cfg.attention_head_dim, cfg.qk_norm is not None)
    return cfg.num_views * hidden + attn + _mlp(hidden, cfg.temporal_mlp_ratio) + hidden * 6 * hidden + 6 * hidden


def _expected_parameters(cfg: DictConfig, sd3: SD3Transformer2DModel) -> dict[str, int]:
    """Parameters per top-level module of MaskGWM at the preset's sizes; SD3's own class gives the SD3 parts."""
    hidden = cfg.num_attention_heads * cfg.attention_head_dim
    patch = cfg.in_channels * hidden * cfg.patch_size ** 2 + hidden  # a patchifying Conv2d with bias
    expected = {name: _count(getattr(sd3, name)) for name in SD3_MODULES}
    expected["temporal_blocks"] = cfg.num_layers * _temporal_block(cfg)
    expected["view_blocks"] = cfg.num_layers * _view_block(cfg) if cfg.use_view_blocks else 0
    expected["temporal_pos_embed"] = 0  # sin-cos, computed on the fly
    expected["frame_time_embed"] = 256 * hidden + hidden + hidden * hidden + hidden
    # MR: the noise embedding of the mask token (patchify, then 1x1) and the token; F is one SD3 block
    # without text output (as SD3's last block) plus one temporal block.
    expected["mask_token"] = patch + hidden * hidden + hidden + hidden if cfg.mask_reconstruction else 0
    expected["reconstruction"] = (_count(sd3.transformer_blocks[-1]) + _temporal_block(cfg)
                                  if cfg.mask_reconstruction else 0)
    expected["action_embedding"] = cfg.num_action_scalars * cfg.action_fourier_dim * hidden  # no bias
    expected["warp_embed"] = patch if cfg.warp_condition else 0
    expected["null_text"] = cfg.num_null_text_tokens * cfg.joint_attention_dim
    expected["null_pooled"] = cfg.pooled_projection_dim
    return expected


def _count(module: torch.nn.Module | torch.Tensor | None) -> int:
    if module is None:
        return 0
    if isinstance(module, torch.Tensor):
        return module.numel()
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", PRESETS)
def test_preset_builds_with_its_sizes(name: str) -> None:
    cfg = preset(name)
    layers, heads, head_dim = SIZES[name.removesuffix("_mview")]
    assert (cfg.num_layers, cfg.num_attention_heads, cfg.attention_head_dim) == (layers, heads, head_dim)
    assert cfg.caption_projection_dim == heads * head_dim
    assert cfg.temporal_window == 1  # the block formula above is the paper's one-position temporal attention
    device = "cpu" if name in ON_CPU else "meta"
    with torch.device(device):
        model = instantiate(cfg, _convert_="all")
        sd3 = SD3Transformer2DModel(sample_size=cfg.sample_size, **{k: cfg[k] for k in SD3_SIZE_KEYS})
    assert isinstance(model, MaskGWM)
    assert all(p.device.type == device for p in model.parameters())
    assert model.inner_dim == heads * head_dim
    assert len(model.transformer_blocks) == len(model.temporal_blocks) == layers
    assert (model.view_blocks is not None) == cfg.use_view_blocks == (cfg.num_views == 6)
    assert model.config.mr_decoder_layers == max(1, round(layers * 5 / 24))

    # The spatial stack is SD3's at these sizes, parameter for parameter (SD3 weights load 1:1).
    assert {k: v.shape for k, v in model.spatial_state_dict().items()} == \
        {k: v.shape for k, v in sd3.state_dict().items()}
    if name.removesuffix("_mview") == ROOT:
        assert _count(sd3) == SD3_MEDIUM_SPATIAL
    # Every parameter is in a module counted from the sizes, so the total follows from the config alone.
    expected = _expected_parameters(cfg, sd3)
    assert {name: _count(getattr(model, name)) for name in expected} == expected
    assert _count(model) == sum(expected.values())
