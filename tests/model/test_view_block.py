"""Tests for the mview cross-view blocks: locality, ring mask, zero-init equivalence, view count checks."""

import pytest
import torch

from tests.model.test_maskgwm import inputs, mask_plan_for, perturb_all, perturb_temporal, tiny_model
from worldmodel.model import ViewBlock
from worldmodel.model.view_block import NUSCENES_VIEW_ORDER, ring_adjacency


def active_view_block(num_views: int, ring_mask: bool = False, d: int = 32) -> ViewBlock:
    torch.manual_seed(0)
    block = ViewBlock(d, num_heads=2, head_dim=16, num_views=num_views, ring_mask=ring_mask)
    with torch.no_grad():
        for p in block.adaLN_modulation.parameters():
            p.normal_(std=0.2)
        block.view_embed.normal_(std=0.2)
    return block


def test_view_block_mixes_only_one_row_of_one_frame_across_views():
    """Through the model's own layout: output token (t, v, h, w) depends on inputs (t, *, h, *) only."""
    b, t, v, h, w, d = 1, 3, 4, 3, 5, 32
    block = active_view_block(v, d=d)
    x = torch.randn(b, t, v, h, w, d, requires_grad=True)
    temb = torch.randn(b * t * h, d)
    out = block(x.permute(0, 1, 3, 2, 4, 5).reshape(b * t * h, v, w, d), temb)  # ((B T H), V, W, D)
    out.reshape(b, t, h, v, w, d)[0, 1, 2, 0, 3].sum().backward()  # frame 1, row 2, view 0, column 3
    touched = x.grad.abs().sum(dim=-1)[0]  # (T, V, H, W)
    assert (touched[1, :, 2] > 0).all()  # every view and column of that row
    outside = torch.ones_like(touched, dtype=torch.bool)
    outside[1, :, 2] = False
    assert touched[outside].eq(0).all()


def test_ring_mask_limits_attention_to_ring_neighbours():
    adjacency = ring_adjacency(6)
    assert len(NUSCENES_VIEW_ORDER) == 6
    # FRONT_LEFT sees BACK_LEFT, itself and FRONT; not FRONT_RIGHT, BACK_RIGHT, BACK.
    assert adjacency[0].tolist() == [True, True, False, False, False, True]
    assert torch.equal(adjacency, adjacency.T) and adjacency.sum(dim=1).eq(3).all()
    block = active_view_block(6, ring_mask=True)
    x = torch.randn(2, 6, 4, 32, requires_grad=True)
    block(x, torch.randn(2, 32))[0, 0, 1].sum().backward()
    touched = x.grad.abs().sum(dim=(-1, -2))[0]  # (V,)
    assert (touched[[5, 0, 1]] > 0).all() and touched[[2, 3, 4]].eq(0).all()
    assert x.grad[1].eq(0).all()


def test_view_blocks_do_not_change_the_output_at_init():
    with_views = tiny_model(num_views=3, use_view_blocks=True, view_ring_mask=True)
    perturb_temporal(with_views)  # frames interact, so the equivalence covers the whole video model
    without = tiny_model(num_views=3, use_view_blocks=False)
    state = {k: p for k, p in with_views.state_dict().items() if not k.startswith("view_blocks.")}
    without.load_state_dict(state, strict=True)
    latents, tau, actions = inputs(t=3, v=3)
    with torch.no_grad():
        assert torch.equal(with_views(latents, tau, actions), without(latents, tau, actions))
        plan = mask_plan_for(latents)
        assert torch.equal(with_views.train()(latents, tau, actions, mask_plan=plan),
                           without.train()(latents, tau, actions, mask_plan=plan))


def test_trained_view_blocks_connect_views_and_ring_mask_cuts_far_views():
    latents, tau, _ = inputs(t=2, v=6, h=4, w=8)
    changed = latents.clone()
    changed[:, :, 3] += 1.0  # BACK_RIGHT, three ring steps from FRONT_LEFT
    changed[:, :, 1] += 1.0  # FRONT, a neighbour of FRONT_LEFT
    for ring, far_view_matters in ((False, True), (True, False)):
        model = tiny_model(num_views=6, use_view_blocks=True, view_ring_mask=ring)
        perturb_all(model)
        with torch.no_grad():
            base, moved = model(latents, tau), model(changed, tau)
            near_only = latents.clone()
            near_only[:, :, 1] += 1.0
            # 2 layers reach 2 ring steps: with the ring mask BACK_RIGHT cannot reach FRONT_LEFT.
            assert not torch.allclose(base[:, :, 0], moved[:, :, 0], atol=1e-5)
            far = not torch.allclose(moved[:, :, 0], model(near_only, tau)[:, :, 0], atol=1e-6)
            assert far == far_view_matters


def test_view_count_must_match_the_view_blocks():
    model = tiny_model(num_views=3, use_view_blocks=True)
    latents, tau, _ = inputs(t=2, v=2)
    with pytest.raises(ValueError, match="3 views"):
        model(latents, tau)
