"""Inflated Inception-v1 (I3D, Carreira & Zisserman 2017) for Kinetics-400 logits, with TF "SAME" padding."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# DeepMind's Sonnet batch norm epsilon; the I3D checkpoint was trained with it.
BN_EPS = 1e-3
NUM_CLASSES = 400
# Output channels of the six convolutions of each Inception block:
# (branch 0 1x1, branch 1 1x1, branch 1 3x3, branch 2 1x1, branch 2 3x3, branch 3 1x1 after the max-pool).
MIXED_CHANNELS: dict[str, tuple[int, int, int, int, int, int]] = {
    "3b": (64, 96, 128, 16, 32, 32),
    "3c": (128, 128, 192, 32, 96, 64),
    "4b": (192, 96, 208, 16, 48, 64),
    "4c": (160, 112, 224, 24, 64, 64),
    "4d": (128, 128, 256, 24, 64, 64),
    "4e": (112, 144, 288, 32, 64, 64),
    "4f": (256, 160, 320, 32, 128, 128),
    "5b": (256, 160, 320, 32, 128, 128),
    "5c": (384, 192, 384, 48, 128, 128),
}
# The shortest clip the network accepts: three temporal halvings must leave the 2-frame average pool a window.
MIN_FRAMES = 9


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding (before, after) of one axis: the odd pixel goes after (right / bottom / later)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int],
             value: float = 0.0) -> torch.Tensor:
    """Pad (B, C, T, H, W) so that a VALID conv / pool afterwards equals TF "SAME"."""
    pads: list[int] = []
    for axis in (4, 3, 2):  # F.pad lists the last axis first
        pads.extend(same_padding(x.shape[axis], kernel[axis - 2], stride[axis - 2]))
    return F.pad(x, pads, value=value)


#################################################################################
#                                 Building blocks                               #
#################################################################################

class Unit3D(nn.Module):
    """Conv3d (no bias) + batch norm + ReLU with "SAME" padding; the logits unit has a bias and neither."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), norm_and_relu: bool = True) -> None:
        super().__init__()
        self.kernel, self.stride, self.norm_and_relu = kernel, stride, norm_and_relu
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, bias=not norm_and_relu)
        self.bn = nn.BatchNorm3d(out_channels, eps=BN_EPS) if norm_and_relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Cin, T, H, W) -> (B, Cout, T / st, H / sh, W / sw) rounded up."""
        x = self.conv(pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = F.relu(self.bn(x))
        return x


class MaxPoolSame(nn.Module):
    """3D max-pool with TF "SAME" padding (padded cells never win)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, C, T / st, H / sh, W / sw) rounded up."""
        return F.max_pool3d(pad_same(x, self.kernel, self.stride, value=-math.inf), self.kernel, self.stride)


class InceptionBlock(nn.Module):
    """Four parallel branches (1x1; 1x1-3x3; 1x1-3x3; maxpool-1x1) concatenated on channels."""

    def __init__(self, in_channels: int, channels: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.branch_0 = Unit3D(in_channels, channels[0])
        self.branch_1a = Unit3D(in_channels, channels[1])
        self.branch_1b = Unit3D(channels[1], channels[2], (3, 3, 3))
        self.branch_2a = Unit3D(in_channels, channels[3])
        self.branch_2b = Unit3D(channels[3], channels[4], (3, 3, 3))
        self.branch_3a = MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.branch_3b = Unit3D(in_channels, channels[5])
        self.out_channels = channels[0] + channels[2] + channels[4] + channels[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Cin, T, H, W) -> (B, Cout, T, H, W)."""
        return torch.cat([
            self.branch_0(x),
            self.branch_1b(self.branch_1a(x)),
            self.branch_2b(self.branch_2a(x)),
            self.branch_3b(self.branch_3a(x)),
        ], dim=1)


#################################################################################
#                                      I3D                                      #
#################################################################################

class I3D(nn.Module):
    """RGB I3D up to the Kinetics logits, averaged over time as in DeepMind's `InceptionI3d` ("Logits" end point)."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.maxpool3d_2a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.conv3d_2b_1x1 = Unit3D(64, 64)
        self.conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.maxpool3d_3a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        channels = 192
        for name in ("3b", "3c", "4b", "4c", "4d", "4e", "4f", "5b", "5c"):
            block = InceptionBlock(channels, MIXED_CHANNELS[name])
            self.add_module(f"mixed_{name}", block)
            channels = block.out_channels
        self.maxpool3d_4a_3x3 = MaxPoolSame((3, 3, 3), (2, 2, 2))
        self.maxpool3d_5a_2x2 = MaxPoolSame((2, 2, 2), (2, 2, 2))
        self.logits = Unit3D(channels, num_classes, norm_and_relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, 224, 224) in [-1, 1], T >= 9 -> (B, num_classes) logits before softmax."""
        if x.shape[2] < MIN_FRAMES:
            raise ValueError(f"I3D needs at least {MIN_FRAMES} frames, got {x.shape[2]}")
        x = self.maxpool3d_2a_3x3(self.conv3d_1a_7x7(x))  # (B, 64, T/2, 56, 56)
        x = self.maxpool3d_3a_3x3(self.conv3d_2c_3x3(self.conv3d_2b_1x1(x)))  # (B, 192, T/2, 28, 28)
        x = self.mixed_3c(self.mixed_3b(x))  # (B, 480, T/2, 28, 28)
        x = self.maxpool3d_4a_3x3(x)  # (B, 480, T/4, 14, 14)
        for name in ("4b", "4c", "4d", "4e", "4f"):
            x = getattr(self, f"mixed_{name}")(x)  # (B, 832, T/4, 14, 14)
        x = self.maxpool3d_5a_2x2(x)  # (B, 832, T/8, 7, 7)
        x = self.mixed_5c(self.mixed_5b(x))  # (B, 1024, T/8, 7, 7)
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)  # VALID: (B, 1024, T/8 - 1, 1, 1)
        x = self.logits(x)  # (B, num_classes, T', 1, 1)
        return x.flatten(2).mean(dim=2)  # (B, num_classes)
