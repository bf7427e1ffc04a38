"""Tests for worldmodel.model.action_embedding and the sinusoidal features it uses."""

import math

import pytest
import torch

from worldmodel.model import ACTION_GROUP_SIZES, ActionEmbedding, MaskGWM
from worldmodel.model.embeddings import TemporalPositionEmbedding, sinusoidal_features

GROUP_SLICES = [(0, 1), (1, 9), (9, 13), (13, 17), (17, 19)]


def trained_embedding(hidden: int = 16) -> ActionEmbedding:
    torch.manual_seed(0)
    emb = ActionEmbedding(hidden, fourier_dim=8)
    with torch.no_grad():
        emb.proj.weight.normal_()
    return emb


def test_sinusoidal_features_golden_values():
    feats = sinusoidal_features(torch.tensor([0.0, 1.0]), dim=4, max_period=100.0)
    # freqs = 100 ** (-[0, 1] / 2) = [1, 0.1]
    expected = torch.tensor([
        [1.0, 1.0, 0.0, 0.0],
        [math.cos(1.0), math.cos(0.1), math.sin(1.0), math.sin(0.1)],
    ])
    assert torch.allclose(feats, expected, atol=1e-6)
    with pytest.raises(ValueError, match="even"):
        sinusoidal_features(torch.zeros(2), dim=3)


def test_group_layout_is_vista_interface():
    assert ACTION_GROUP_SIZES == (1, 8, 4, 4, 2)
    assert sum(ACTION_GROUP_SIZES) == 19
    emb = ActionEmbedding(32)
    assert emb.proj.in_features == 19 * 128 and emb.proj.bias is None


def test_zero_at_init_in_the_model():
    model = MaskGWM(sample_size=8, in_channels=4, out_channels=4, num_layers=1, attention_head_dim=8,
                    num_attention_heads=2, joint_attention_dim=8, caption_projection_dim=16,
                    pooled_projection_dim=8, pos_embed_max_size=8, num_null_text_tokens=2)
    out = model.action_embedding(torch.randn(3, 19), torch.ones(3, 5, dtype=torch.bool))
    assert out.shape == (3, 16)
    assert out.eq(0).all()


def test_invalid_groups_are_ignored_and_all_invalid_is_zero():
    emb = trained_embedding()
    actions = torch.randn(4, 19)
    valid = torch.ones(4, 5, dtype=torch.bool)
    full = emb(actions, valid)
    for g, (lo, hi) in enumerate(GROUP_SLICES):
        changed = actions.clone()
        changed[:, lo:hi] += 1.0
        assert not torch.allclose(emb(changed, valid), full), f"group {g} has no effect when valid"
        dropped = valid.clone()
        dropped[:, g] = False
        nan_filled = actions.clone()
        nan_filled[:, lo:hi] = float("nan")
        assert torch.equal(emb(changed, dropped), emb(nan_filled, dropped))
        assert not torch.allclose(emb(actions, dropped), full)
    assert emb(actions, torch.zeros_like(valid)).eq(0).all()


def test_dropped_differs_from_value_zero():
    emb = trained_embedding()
    zeros = torch.zeros(2, 19)
    assert not torch.allclose(emb(zeros, torch.ones(2, 5, dtype=torch.bool)), torch.zeros(2, 16))


def test_valid_none_means_all_valid_and_bad_shape_raises():
    emb = trained_embedding()
    actions = torch.randn(2, 19)
    assert torch.equal(emb(actions), emb(actions, torch.ones(2, 5, dtype=torch.bool)))
    with pytest.raises(ValueError, match="19 action scalars"):
        emb(torch.randn(2, 18))


def test_temporal_position_embedding_limits():
    pos = TemporalPositionEmbedding(max_frames=8, hidden_size=6)
    assert pos(5).shape == (5, 6)
    assert torch.equal(pos(5), pos(8)[:5])
    with pytest.raises(ValueError, match="max_frames=8"):
        pos(9)
