"""Tests for worldmodel.model.masking: row-wise MR mask plans, raster-order packing, exact unpacking."""

import pytest
import torch

from worldmodel.model import MaskPlan, pack_tokens, sample_mask_plan, unpack_tokens
from worldmodel.model.masking import num_dropped


def plan(b=3, t=5, v=2, h=4, w=8, ratio=0.25, spatial_prob=0.5, seed=0) -> MaskPlan:
    gen = torch.Generator().manual_seed(seed)
    return sample_mask_plan((b, t, v), (h, w), ratio, spatial_prob, torch.zeros(b, t, v, 1, 2 * h, 2 * w), gen)


@pytest.mark.parametrize("ratio, kept", [(0.25, 6), (0.1, 7), (0.4, 5), (0.0, 8)])
def test_every_row_of_every_frame_keeps_exactly_1_minus_r_w_tokens(ratio, kept):
    p = plan(ratio=ratio)
    assert p.kept_width == kept == 8 - num_dropped(8, ratio)
    assert p.visible().sum(dim=-1).eq(kept).all()  # (B, T, V, H) rows
    assert p.token_index().shape == (3 * 5 * 2, 4 * kept)


def test_kept_indices_and_packed_tokens_are_in_raster_order():
    p = plan()
    assert (p.keep[..., 1:] > p.keep[..., :-1]).all()
    # Tokens carrying their own raster index come out of packing strictly increasing in every frame.
    x = torch.arange(32, dtype=torch.float32).repeat(30, 1)[..., None]  # ((B T V), H W, 1)
    packed = pack_tokens(x, p)[..., 0]  # ((B T V), H Wk)
    assert (packed[:, 1:] > packed[:, :-1]).all()
    assert torch.equal(packed.long(), p.token_index())


def test_unpacking_puts_every_visible_token_back_at_its_own_position():
    p = plan()
    x = torch.randn(30, 32, 7)
    fill = torch.full_like(x, float("nan"))
    back = unpack_tokens(pack_tokens(x, p), fill, p)
    visible = p.visible().reshape(30, 32)
    assert torch.equal(back[visible], x[visible])
    assert back[~visible].isnan().all()
    assert int(visible.sum()) == 30 * 4 * 6


def test_spatial_mask_is_shared_by_all_frames_and_time_mask_is_not():
    p = plan(b=8, t=6, v=3, spatial_prob=0.5, seed=1)
    spatial, temporal = ~p.time_mask, p.time_mask  # (B, V)
    assert spatial.any() and temporal.any()
    keep = p.keep.permute(0, 2, 1, 3, 4)  # (B, V, T, H, Wk)
    same_as_first = (keep == keep[:, :, :1]).flatten(2).all(dim=-1)  # (B, V)
    assert same_as_first[spatial].all()
    assert not same_as_first[temporal].any()  # differs between frames (chosen per frame)
    # Rows of one frame are chosen independently too.
    rows_equal = (p.keep[:, :, :, 1:] == p.keep[:, :, :, :1]).all(dim=-1)
    assert not rows_equal.all()


def test_mask_kind_probability_and_independence_across_views():
    p = plan(b=4000, t=1, v=2, h=1, w=4, spatial_prob=0.3, seed=2)
    assert abs((~p.time_mask).float().mean().item() - 0.3) < 0.03
    both_spatial = (~p.time_mask).all(dim=1).float().mean().item()
    assert abs(both_spatial - 0.09) < 0.02  # views choose independently
    assert (~plan(spatial_prob=1.0).time_mask).all() and plan(spatial_prob=0.0).time_mask.all()


def test_plan_is_reproducible_and_checks_arguments():
    assert torch.equal(plan(seed=4).keep, plan(seed=4).keep)
    assert not torch.equal(plan(seed=4).keep, plan(seed=5).keep)
    with pytest.raises(ValueError, match="mask ratio"):
        plan(ratio=1.0)
    with pytest.raises(ValueError, match="drops every token"):
        plan(w=1, ratio=0.9)
    with pytest.raises(ValueError, match="spatial_prob"):
        plan(spatial_prob=1.5)
