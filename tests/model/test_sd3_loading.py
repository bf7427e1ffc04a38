"""Tests for worldmodel.model.build_maskgwm(pretrained_sd3=...): local SD3 folders, sharded weights, each error."""

import json

import pytest
import torch
from diffusers import SD3Transformer2DModel
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.model.test_maskgwm import SD3_KEYS, tiny_preset, inputs
from worldmodel.model import MaskGWM, SD3LoadError, build_maskgwm


def tiny_config() -> dict:
    cfg = OmegaConf.to_container(tiny_preset())
    cfg.pop("_target_")
    cfg.pop("pretrained_sd3")
    return cfg


def save_sd3(folder, seed: int = 3, max_shard_size: str | None = None, **overrides) -> SD3Transformer2DModel:
    torch.manual_seed(seed)
    cfg = tiny_config()
    sd3 = SD3Transformer2DModel(**{**{k: cfg[k] for k in SD3_KEYS}, **overrides}).eval()
    kwargs = {} if max_shard_size is None else {"max_shard_size": max_shard_size}
    sd3.save_pretrained(folder, **kwargs)
    return sd3


@pytest.mark.parametrize("layout", ["transformer_folder", "pipeline_folder", "sharded"])
def test_loads_sd3_weights_into_the_spatial_stack(tmp_path, layout):
    if layout == "pipeline_folder":
        sd3 = save_sd3(tmp_path / "pipe" / "transformer")
        path = tmp_path / "pipe"
    else:
        sd3 = save_sd3(tmp_path / "sd3", max_shard_size="200KB" if layout == "sharded" else None)
        path = tmp_path / "sd3"
    if layout == "sharded":
        assert (path / "diffusion_pytorch_model.safetensors.index.json").is_file()
        assert len(list(path.glob("*.safetensors"))) > 1
    torch.manual_seed(0)
    scratch = MaskGWM(**tiny_config())
    torch.manual_seed(0)
    model = build_maskgwm(pretrained_sd3=str(path), **tiny_config()).eval()
    for key, value in sd3.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    # Our modules keep their own (zero) init: the video model is the SD3 image model at init.
    for key, value in scratch.state_dict().items():
        if key not in sd3.state_dict():
            assert torch.equal(model.state_dict()[key], value), key
    latents, tau, _ = inputs(b=2, t=1, h=8, w=16)
    text = model.null_text[None].expand(2, -1, -1)
    pooled = model.null_pooled[None].expand(2, -1)
    with torch.no_grad():
        ours = model(latents, tau)
        ref = sd3(latents[:, 0, 0], text, pooled, tau[:, 0] * 1000).sample
    assert torch.allclose(ours[:, 0, 0], ref, atol=1e-5)


def test_preset_config_switch(tmp_path):
    sd3 = save_sd3(tmp_path / "sd3")
    cfg = tiny_preset()
    assert cfg.pretrained_sd3 is None
    cfg.pretrained_sd3 = str(tmp_path / "sd3")
    model = instantiate(cfg, _convert_="all")
    assert torch.equal(model.proj_out.weight, sd3.proj_out.weight)


def test_missing_folder_and_missing_config(tmp_path):
    with pytest.raises(SD3LoadError, match="does not exist"):
        build_maskgwm(pretrained_sd3=str(tmp_path / "nowhere"), **tiny_config())
    (tmp_path / "empty").mkdir()
    with pytest.raises(SD3LoadError, match="no config.json"):
        build_maskgwm(pretrained_sd3=str(tmp_path / "empty"), **tiny_config())


def test_not_an_sd3_transformer(tmp_path):
    save_sd3(tmp_path / "sd3")
    config = json.loads((tmp_path / "sd3" / "config.json").read_text())
    config["_class_name"] = "FluxTransformer2DModel"
    (tmp_path / "sd3" / "config.json").write_text(json.dumps(config))
    with pytest.raises(SD3LoadError, match="FluxTransformer2DModel"):
        build_maskgwm(pretrained_sd3=str(tmp_path / "sd3"), **tiny_config())


def test_sd35_dual_attention_layers_are_refused(tmp_path):
    save_sd3(tmp_path / "sd35", dual_attention_layers=(0,))
    with pytest.raises(SD3LoadError, match="dual-attention"):
        build_maskgwm(pretrained_sd3=str(tmp_path / "sd35"), **tiny_config())


def test_size_mismatch_names_every_key_and_both_values(tmp_path):
    save_sd3(tmp_path / "sd3", num_layers=3, attention_head_dim=24, caption_projection_dim=48)
    with pytest.raises(SD3LoadError) as err:
        build_maskgwm(pretrained_sd3=str(tmp_path / "sd3"), **tiny_config())
    message = str(err.value)
    for text in ("num_layers: SD3 folder 3 vs preset 2", "attention_head_dim: SD3 folder 24 vs preset 48",
                 "caption_projection_dim: SD3 folder 48 vs preset 96"):
        assert text in message
    assert "num_attention_heads" not in message


def test_missing_weights_and_missing_shard(tmp_path):
    save_sd3(tmp_path / "sd3")
    (tmp_path / "sd3" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(SD3LoadError, match="safetensors"):
        build_maskgwm(pretrained_sd3=str(tmp_path / "sd3"), **tiny_config())
    save_sd3(tmp_path / "sharded", max_shard_size="200KB")
    next((tmp_path / "sharded").glob("*-00001-of-*.safetensors")).unlink()
    with pytest.raises(SD3LoadError, match="missing"):
        build_maskgwm(pretrained_sd3=str(tmp_path / "sharded"), **tiny_config())
