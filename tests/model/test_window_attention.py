"""Tests for the windowed temporal attention (model.temporal_window > 1)."""

import pytest
import torch
from hydra.utils import instantiate

from worldmodel.model import TemporalBlock
from worldmodel.model.attention import Attention
from worldmodel.model.window_attention import WindowTemporalAttention, window_index, window_offsets

from tests.model.test_maskgwm import tiny_preset, inputs, mask_plan_for, perturb_all


def test_window_index_of_a_corner_and_an_inner_position():
    index, valid = window_index((3, 4), 3)  # positions r * 4 + c
    assert window_offsets(3)[4] == (0, 0)
    # Corner (0, 0): only the offsets (0, 0), (0, 1), (1, 0), (1, 1) lie on the grid.
    assert valid[0].tolist() == [False, False, False, False, True, True, False, True, True]
    assert index[0][valid[0]].tolist() == [0, 1, 4, 5]
    # Inner (1, 1) = 5: the whole 3 x 3 square, row-major.
    assert valid[5].all() and index[5].tolist() == [0, 1, 2, 4, 5, 6, 8, 9, 10]


@pytest.mark.parametrize("window", [0, 2, -1])
def test_even_or_empty_windows_are_refused(window):
    with pytest.raises(ValueError, match="temporal_window must be an odd number"):
        window_offsets(window)


def test_window_one_is_the_papers_attention_over_frames():
    torch.manual_seed(0)
    plain = Attention(16, num_heads=2, head_dim=8)
    windowed = WindowTemporalAttention(16, num_heads=2, head_dim=8, window=1)
    windowed.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 6, 5, 16)  # (B, S, T, D) on a 2 x 3 grid
    expected = plain(x.reshape(12, 5, 16)).reshape(2, 6, 5, 16)
    assert torch.allclose(windowed(x, (2, 3)), expected, atol=1e-6)


def test_a_token_sees_exactly_its_window_in_every_frame():
    torch.manual_seed(0)
    attn = WindowTemporalAttention(16, num_heads=2, head_dim=8, window=3)
    x = torch.randn(1, 20, 4, 16, requires_grad=True)  # a 4 x 5 grid, 4 frames
    attn(x, (4, 5))[0, 7, 2].sum().backward()  # position (1, 2), frame 2
    touched = x.grad.abs().sum(dim=-1)[0].reshape(4, 5, 4)  # (row, column, frame)
    inside = torch.zeros(4, 5, dtype=torch.bool)
    inside[0:3, 1:4] = True
    assert (touched[inside] > 0).all()
    assert touched[~inside].eq(0).all()


def test_the_offset_embedding_can_fetch_the_right_neighbour():
    """Queries and keys without content, one offset made dominant: every token reads its right neighbour."""
    torch.manual_seed(0)
    attn = WindowTemporalAttention(4, num_heads=1, head_dim=4, window=3)
    with torch.no_grad():
        attn.to_q.weight.zero_()
        attn.to_q.bias.fill_(1.0)
        attn.to_k.weight.zero_()
        attn.to_k.bias.zero_()
        attn.offset_embed.zero_()
        attn.offset_embed[window_offsets(3).index((0, 1))] = 50.0
        for layer in (attn.to_v, attn.to_out):
            layer.weight.copy_(torch.eye(4))
            layer.bias.zero_()
    x = torch.randn(1, 6, 3, 4)  # a 2 x 3 grid, 3 frames
    out = attn(x, (2, 3))
    grid_x = x.reshape(2, 3, 3, 4)
    expected = grid_x[:, 1:].mean(dim=2, keepdim=True).expand(2, 2, 3, 4)  # right neighbour, mean over frames
    assert torch.allclose(out.reshape(2, 3, 3, 4)[:, :2], expected, atol=1e-4)


def test_windowed_block_needs_the_grid():
    block = TemporalBlock(16, num_heads=2, head_dim=8, window=3)
    x, context = torch.randn(1, 6, 3, 16), torch.randn(1, 3, 2, 16)
    with pytest.raises(ValueError, match="needs the token grid"):
        block(x, context, None, torch.randn(1, 3, 16), torch.randn(3, 16))
    assert block(x, context, None, torch.randn(1, 3, 16), torch.randn(3, 16), (2, 3)).shape == x.shape


def windowed_tiny(seed: int = 0):
    torch.manual_seed(seed)
    cfg = tiny_preset()
    cfg.temporal_window = 3
    return instantiate(cfg)


def test_windowed_model_is_the_image_model_per_frame_at_init():
    model = windowed_tiny().eval()
    latents, tau, actions = inputs(b=2, t=3)
    with torch.no_grad():
        video = model(latents, tau, actions)
        for i in range(3):
            assert torch.allclose(video[:, i:i + 1], model(latents[:, i:i + 1], tau[:, i:i + 1]), atol=1e-5)


def test_windowed_model_trains_with_mask_reconstruction():
    model = windowed_tiny().train()
    perturb_all(model)
    latents, tau, actions = inputs(b=2, t=3)
    out = model(latents, tau, actions, mask_plan=mask_plan_for(latents))
    assert out.shape == latents.shape
    out.square().mean().backward()
    assert model.temporal_blocks[0].attn.offset_embed.grad.abs().sum() > 0
