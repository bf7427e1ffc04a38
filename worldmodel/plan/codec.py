"""The run's codec for a plan: built from its config, or, for the SD3 VAE without a local copy, from the SD3 VAE's
published architecture (shapes are all a plan needs; no weights are read on fake tensors anyway)."""
from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig

from worldmodel.codecs.base import LatentCodec
from worldmodel.codecs.vae import DiffusersVAECodec

# vae/config.json of stabilityai/stable-diffusion-3-medium-diffusers.
SD3_VAE_CONFIG = {
    "act_fn": "silu", "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4, "in_channels": 3, "out_channels": 3, "latent_channels": 16,
    "layers_per_block": 2, "norm_num_groups": 32, "sample_size": 1024, "scaling_factor": 1.5305,
    "shift_factor": 0.0609, "use_quant_conv": False, "use_post_quant_conv": False, "force_upcast": True,
}


def reads_latents(cfg: DictConfig) -> bool:
    """Whether the run's data gives latents (a latent cache), so that no step encodes frames."""
    return "LatentCache" in str(cfg.data.train.get("_target_", ""))


def plannable_codec(cfg: DictConfig) -> tuple[LatentCodec, bool, list[str]]:
    """(codec, whether each step encodes frames with it, notes). Call outside the fake mode: codecs compute and
    check constants when they are built (a 0.1 GB SD3 VAE, a DCT basis); the fake mode takes them in as fake
    tensors where the step uses them."""
    notes = []
    try:
        codec = instantiate(cfg.codec, _convert_="all")
    except Exception as error:  # noqa: BLE001 - any failure to find the weights: plan with the architecture
        if cfg.codec.get("_target_") != "worldmodel.codecs.DiffusersVAECodec":
            raise
        codec = DiffusersVAECodec(config=SD3_VAE_CONFIG, chunk_size=int(cfg.codec.get("chunk_size", 8)),
                                  dtype=str(cfg.codec.get("dtype", "float32")))
        notes.append(f"codec: SD3 VAE architecture from its published config ({type(error).__name__} reading "
                     f"{cfg.codec.get('pretrained_path')})")
    encodes = not reads_latents(cfg)
    if not encodes:
        notes.append("data is a latent cache: no step encodes frames")
    return codec, encodes, notes
