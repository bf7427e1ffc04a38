"""Frozen diffusers AutoencoderKL as a latent codec (e.g. the Stable Diffusion 3 VAE)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL

from worldmodel.codecs.base import LatentCodec

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
_EXPECTED = (
    "a diffusers AutoencoderKL folder with config.json and diffusion_pytorch_model.safetensors, "
    "e.g. the vae/ subfolder of a Stable Diffusion 3 download"
)


def _plain(value: Any) -> Any:
    # Hydra hands over DictConfig/ListConfig; diffusers wants plain dicts, lists and tuples.
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_plain(v) for v in value]
    return value


def resolve_vae_folder(pretrained_path: str, subfolder: str | None = None) -> Path:
    """Return the local AutoencoderKL folder, or raise FileNotFoundError saying what was expected."""
    folder = Path(pretrained_path).expanduser()
    if subfolder:
        folder = folder / subfolder
    if not folder.is_dir():
        raise FileNotFoundError(
            f"VAE folder {folder} does not exist; expected {_EXPECTED}. Weights are never downloaded: "
            "point codec.pretrained_path (or the SD3_PATH environment variable) at a local copy."
        )
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} has no config.json; expected {_EXPECTED}.")
    if not any((folder / name).is_file() for name in _WEIGHT_FILES):
        raise FileNotFoundError(
            f"{folder} has no weights ({' or '.join(_WEIGHT_FILES)}); expected {_EXPECTED}."
        )
    return folder


class DiffusersVAECodec(LatentCodec):
    """Frozen AutoencoderKL codec: latents = (posterior mean - shift) * scale."""

    def __init__(
        self,
        pretrained_path: str | None = None,
        subfolder: str | None = None,
        config: Mapping[str, Any] | None = None,
        scaling_factor: float | None = None,
        shift_factor: float | None = None,
        chunk_size: int = 8,
        dtype: str = "float32",
    ) -> None:
        """Load from a local folder (`pretrained_path`[/`subfolder`]) or build from `config`.

        `scaling_factor` / `shift_factor` default to the VAE config's values (SD3: 1.5305 and
        0.0609); a config without a shift uses 0.
        """
        super().__init__()
        if (pretrained_path is None) == (config is None):
            raise ValueError("DiffusersVAECodec needs exactly one of pretrained_path or config")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        torch_dtype = _DTYPES[dtype]
        if pretrained_path is not None:
            folder = resolve_vae_folder(pretrained_path, subfolder)
            vae = AutoencoderKL.from_pretrained(folder, local_files_only=True, torch_dtype=torch_dtype,
                                                low_cpu_mem_usage=False)
        else:
            vae = AutoencoderKL.from_config(_plain(config))
            # Built in float32; cast only to another dtype (a no-op .to() still rebuilds every parameter).
            if torch_dtype != torch.float32:
                vae = vae.to(torch_dtype)
        # Frozen: the codec is a fixed coordinate system for the world model, never trained here.
        vae.requires_grad_(False)
        vae.eval()
        self.vae = vae

        cfg = vae.config
        self.scaling_factor = float(cfg.scaling_factor if scaling_factor is None else scaling_factor)
        config_shift = getattr(cfg, "shift_factor", None)
        self.shift_factor = float(
            shift_factor if shift_factor is not None else (config_shift if config_shift is not None else 0.0)
        )
        self.latent_channels = int(cfg.latent_channels)
        # Every encoder block but the last halves the resolution.
        self.downsample = 2 ** (len(cfg.block_out_channels) - 1)
        self.chunk_size = int(chunk_size)

    def train(self, mode: bool = True) -> DiffusersVAECodec:
        """Keep the VAE in eval mode even when a parent module switches to training."""
        super().train(mode)
        self.vae.eval()
        return self

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (n, 3, H, W) in [-1, 1] -> latents (n, c, H/f, W/f).

        Uses the posterior mean rather than a sample, so encoding is deterministic and a latent
        cache is reproducible; the posterior std of KL VAEs is tiny next to the flow noise anyway.
        """
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"DiffusersVAECodec.encode expects (n, 3, H, W), got {tuple(frames.shape)}")
        self.check_size(frames.shape[-2], frames.shape[-1])
        posterior = self.vae.encode(frames.to(self.vae.dtype)).latent_dist
        latents = (posterior.mean - self.shift_factor) * self.scaling_factor  # (n, c, h, w)
        return latents.to(frames.dtype)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (n, c, h, w) -> frames (n, 3, h*f, w*f) clamped to [-1, 1]."""
        if latents.ndim != 4 or latents.shape[1] != self.latent_channels:
            raise ValueError(
                f"DiffusersVAECodec.decode expects (n, {self.latent_channels}, h, w), "
                f"got {tuple(latents.shape)}"
            )
        z = latents.to(self.vae.dtype) / self.scaling_factor + self.shift_factor
        frames = self.vae.decode(z).sample  # (n, 3, H, W)
        return frames.clamp(-1.0, 1.0).to(latents.dtype)

    def extra_repr(self) -> str:
        return (
            f"latent_channels={self.latent_channels}, downsample={self.downsample}, "
            f"scaling_factor={self.scaling_factor}, shift_factor={self.shift_factor}, "
            f"chunk_size={self.chunk_size}"
        )
