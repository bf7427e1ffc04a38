"""Tests for DiffusersVAECodec with a tiny random AutoencoderKL (no downloads)."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from worldmodel.codecs import DiffusersVAECodec

CONF = Path(__file__).resolve().parents[2] / "conf" / "codec"
TINY = {
    "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
    "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"],
    "block_out_channels": [8, 16],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 4,
    "sample_size": 16,
    "scaling_factor": 0.5,
    "shift_factor": 0.1,
}


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    return DiffusersVAECodec(config=TINY, chunk_size=2)


def test_shapes_frozen_and_factors(codec):
    assert codec.latent_channels == 4 and codec.downsample == 2
    assert codec.scaling_factor == 0.5 and codec.shift_factor == 0.1
    assert all(not p.requires_grad for p in codec.parameters())
    codec.train()
    assert not codec.vae.training
    x = torch.rand(3, 3, 16, 12) * 2 - 1
    z = codec.encode(x)
    assert z.shape == (3, 4, 8, 6)
    y = codec.decode(z)
    assert y.shape == (3, 3, 16, 12) and y.abs().max() <= 1.0


def test_encode_is_deterministic_posterior_mean(codec):
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    mean = codec.vae.encode(x).latent_dist.mean
    expected = (mean - 0.1) * 0.5
    assert torch.allclose(codec.encode(x), expected, atol=1e-6)
    assert torch.equal(codec.encode(x), codec.encode(x))


def test_factor_overrides():
    torch.manual_seed(0)
    c = DiffusersVAECodec(config={**TINY, "shift_factor": None}, scaling_factor=2.0)
    assert c.scaling_factor == 2.0 and c.shift_factor == 0.0


def test_chunked_decode_video_equals_unchunked(codec):
    torch.manual_seed(1)
    latents = torch.randn(1, 3, 2, 4, 4, 4)  # (b, t, v, c, h, w): 6 frames, chunks of 2
    video = codec.decode_video(latents)
    assert video.shape == (1, 3, 2, 3, 8, 8)
    whole = codec.decode(latents.reshape(6, 4, 4, 4)).reshape(1, 3, 2, 3, 8, 8)
    assert torch.allclose(video, whole, atol=1e-5)
    assert codec.encode_video(video).shape == latents.shape


def test_save_pretrained_then_load_from_path(codec, tmp_path):
    codec.vae.save_pretrained(tmp_path / "sd3" / "vae")
    loaded = DiffusersVAECodec(pretrained_path=str(tmp_path / "sd3"), subfolder="vae")
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    assert torch.allclose(loaded.encode(x), codec.encode(x), atol=1e-6)
    assert loaded.scaling_factor == 0.5 and loaded.shift_factor == pytest.approx(0.1)


def test_missing_folder_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json.*safetensors.*Stable Diffusion 3"):
        DiffusersVAECodec(pretrained_path=str(tmp_path / "nowhere"), subfolder="vae")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        DiffusersVAECodec(pretrained_path=str(tmp_path / "empty"))


def test_needs_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        DiffusersVAECodec()


def test_conf_files_compose_and_instantiate(monkeypatch, tmp_path):
    tiny = instantiate(OmegaConf.load(CONF / "tiny_vae.yaml"))
    assert isinstance(tiny, DiffusersVAECodec) and tiny.downsample == 2
    pixel = instantiate(OmegaConf.load(CONF / "pixel.yaml"))
    assert pixel.latent_channels == 48
    # The SD3 config composes without the weights; instantiating points at the missing folder.
    monkeypatch.setenv("SD3_PATH", str(tmp_path / "sd3-missing"))
    sd3 = OmegaConf.load(CONF / "sd3_vae.yaml")
    assert OmegaConf.to_container(sd3, resolve=True)["pretrained_path"] == str(tmp_path / "sd3-missing")
    with pytest.raises(Exception, match="sd3-missing"):
        instantiate(sd3)
