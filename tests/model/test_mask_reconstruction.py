"""Tests for MaskGWM's mask reconstruction: packed encoder, shifted attention, mask tokens, F routing, cost."""

import pytest
import torch
from einops import rearrange
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from tests.model.test_maskgwm import inputs, mask_plan_for, perturb_all, perturb_temporal, tiny_model
from worldmodel.model import MaskGWM, pack_tokens


def capture_inputs(module: torch.nn.Module, store: list):
    return module.register_forward_hook(lambda mod, args, out: store.append([a for a in args]))


def test_masked_forward_has_the_unmasked_shape_and_is_training_only():
    model = tiny_model().train()
    perturb_all(model)
    latents, tau, actions = inputs(t=3, h=8, w=16)
    plan = mask_plan_for(latents)
    out = model(latents, tau, actions, mask_plan=plan)
    assert out.shape == latents.shape and torch.isfinite(out).all()
    assert not torch.allclose(out, model(latents, tau, actions), atol=1e-4)
    out.square().mean().backward()
    assert model.mask_token.token.grad.abs().sum() > 0
    assert model.mask_token.noise_embed[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="training-only"):
        model.eval()(latents, tau, actions, mask_plan=plan)


def test_encoder_runs_on_packed_tokens_with_their_own_position_embedding():
    model = tiny_model().train()
    latents, tau, _ = inputs(t=3, h=8, w=16)
    plan = mask_plan_for(latents)
    seen = {name: [] for name in ("enc", "dec", "tmp")}
    hooks = [capture_inputs(model.transformer_blocks[0], seen["enc"]),
             capture_inputs(model.transformer_blocks[-1], seen["dec"]),
             capture_inputs(model.temporal_blocks[0], seen["tmp"])]
    model(latents, tau, mask_plan=plan)
    for hook in hooks:
        hook.remove()
    assert model.num_encoder_layers == 1 and model.config.mr_decoder_layers == 1
    h, w, wk = 4, 8, plan.kept_width
    assert seen["enc"][0][0].shape[1] == h * wk and seen["tmp"][0][0].shape[1] == h * wk
    assert seen["dec"][0][0].shape[1] == h * w
    embedded = model.pos_embed(rearrange(latents, "b t v c h w -> (b t v) c h w"))
    assert torch.allclose(seen["enc"][0][0], pack_tokens(embedded, plan))


def test_time_mask_temporal_attention_is_shifted_on_the_packed_grid():
    """Packed token j of row h in frame 1 attends exactly to packed token j of row h in the other frames."""
    model = tiny_model().train()
    perturb_temporal(model)
    latents, tau, _ = inputs(b=1, t=3, h=8, w=16)
    plan = mask_plan_for(latents, spatial_prob=0.0)  # time mask
    seen, spatial_in = [], []
    hooks = [capture_inputs(model.temporal_blocks[0], seen), capture_inputs(model.transformer_blocks[0], spatial_in)]
    model(latents, tau, mask_plan=plan)
    for hook in hooks:
        hook.remove()
    x, context, action, temb, pos, _grid = seen[0]  # x ((B V), H Wk, T, D)
    wk, row, j = plan.kept_width, 2, 3
    x = x.detach().requires_grad_()
    model.temporal_blocks[0](x, context, action, temb, pos)[0, row * wk + j, 1].sum().backward()
    touched = x.grad.abs().sum(dim=-1)[0]  # (H Wk, T)
    assert (touched[row * wk + j] > 0).all()
    others = torch.ones(touched.shape[0], dtype=torch.bool)
    others[row * wk + j] = False
    assert touched[others].eq(0).all()
    # The packed slot holds each frame's own visible token (the spatial blocks are equivariant to
    # token order), which is a different image column in frame 1 and frame 2 for some slots: the shift.
    keep = plan.keep[0, :, 0]  # (T, H, Wk)
    assert (keep[1] != keep[2]).any()
    embedded = model.pos_embed(rearrange(latents, "b t v c h w -> (b t v) c h w"))  # (T, H W, D)
    for frame in (1, 2):
        column = keep[frame, row, j]
        assert torch.equal(spatial_in[0][0][frame, row * wk + j], embedded[frame, row * 8 + column])


def test_each_clip_view_goes_through_the_branch_of_its_mask_kind():
    latents, tau, _ = inputs(b=2, t=3, v=1, h=8, w=16)
    plan = mask_plan_for(latents)
    plan = type(plan)(plan.keep, torch.tensor([[True], [False]]), plan.mask_noise, plan.grid_width)
    model = tiny_model().train()
    perturb_temporal(model)
    with torch.no_grad():
        before = model(latents, tau, mask_plan=plan)
        for p in model.reconstruction.temporal.adaLN_modulation.parameters():
            p.normal_(std=0.2)
        after_t = model(latents, tau, mask_plan=plan)
        for p in model.reconstruction.spatial.norm1.linear.parameters():
            p.normal_(std=0.2)
        after_s = model(latents, tau, mask_plan=plan)
    assert not torch.allclose(before[0], after_t[0], atol=1e-5) and torch.equal(before[1], after_t[1])
    assert torch.equal(after_t[0], after_s[0]) and not torch.allclose(after_t[1], after_s[1], atol=1e-5)


def test_reconstruction_module_is_the_identity_at_init():
    model = tiny_model().train()
    x = torch.randn(2 * 3, 8, model.inner_dim)
    context = torch.randn(2 * 3, 4, model.inner_dim)
    out = model.reconstruction(x, context, torch.randn(6, model.inner_dim), torch.randn(2, 3, model.inner_dim),
                               None, torch.randn(3, model.inner_dim), torch.tensor([[True], [False]]), (2, 3, 1))
    assert torch.equal(out, x)


def total_flops(model: MaskGWM, latents, tau, plan) -> int:
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(latents, tau, mask_plan=plan).square().mean().backward()
    return counter.get_total_flops()


def test_masked_training_step_is_cheaper():
    """The paper's 24-block depth (5 decoder blocks) at a narrow width: r = 0.25 costs at most 0.85x."""
    torch.manual_seed(0)
    model = MaskGWM(sample_size=32, in_channels=4, out_channels=4, num_layers=24, attention_head_dim=16,
                    num_attention_heads=4, joint_attention_dim=32, caption_projection_dim=64,
                    pooled_projection_dim=32, pos_embed_max_size=32, num_null_text_tokens=2,
                    mask_reconstruction=True).train()
    assert model.config.mr_decoder_layers == 5
    latents = torch.randn(1, 8, 1, 4, 16, 32)
    tau = torch.rand(1, 8)
    full = total_flops(model, latents, tau, None)
    masked = total_flops(model, latents, tau, mask_plan_for(latents, ratio=0.25))
    assert masked <= 0.85 * full, masked / full
