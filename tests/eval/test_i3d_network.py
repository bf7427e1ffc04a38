"""I3D with the Kinetics-400 weights: output shape, determinism, batch independence, TF SAME padding."""
import numpy as np
import pytest
import torch

from worldmodel.eval.features import I3DFeatures
from worldmodel.eval.i3d import same_padding


def test_same_padding_puts_the_odd_pixel_after() -> None:
    assert same_padding(224, 7, 2) == (2, 3)  # TF: out 112, total pad 5 -> 2 before, 3 after
    assert same_padding(112, 3, 2) == (0, 1)
    assert same_padding(8, 2, 2) == (0, 0)
    assert same_padding(5, 3, 1) == (1, 1)


def test_logits_shape_determinism_and_batch_independence(world_clips: np.ndarray) -> None:
    features = I3DFeatures()
    clips = torch.from_numpy(world_clips[:2]).permute(0, 1, 4, 2, 3).contiguous()  # (2, 10, 3, H, W) uint8
    first = features(clips)
    assert first.shape == (2, 400) and first.dtype == torch.float32
    assert torch.equal(first, features(clips))
    torch.testing.assert_close(features(clips[1:]), first[1:], atol=1e-4, rtol=1e-4)
    assert torch.isfinite(first).all() and first.std() > 0.1


def test_too_short_clips_are_refused() -> None:
    features = I3DFeatures()
    with pytest.raises(ValueError, match="at least 9 frames"):
        features(torch.zeros(1, 8, 3, 32, 32, dtype=torch.uint8))
