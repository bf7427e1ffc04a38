"""Tests for worldmodel.model.MaskGWM: shapes, zero-init equivalence with SD3, temporal/action/reference behaviour."""

from pathlib import Path

import pytest
import torch
from diffusers import SD3Transformer2DModel
from hydra.utils import instantiate

from worldmodel.model import MaskGWM, TemporalBlock, sample_mask_plan

TINY_YAML = Path(__file__).resolve().parents[2] / "conf" / "model" / "tiny.yaml"


def tiny_preset():
    """conf/model/tiny.yaml as Hydra composes it (it inherits from sd3_medium.yaml), without any experiment."""
    from worldmodel.config import compose_config

    return compose_config("train", ["model=tiny", "~experiment"]).model

SD3_KEYS = ("sample_size", "patch_size", "in_channels", "out_channels", "num_layers", "attention_head_dim",
            "num_attention_heads", "joint_attention_dim", "caption_projection_dim", "pooled_projection_dim",
            "pos_embed_max_size", "qk_norm")


def tiny_model(seed: int = 0, **overrides) -> MaskGWM:
    torch.manual_seed(seed)
    cfg = tiny_preset()
    for key, value in overrides.items():
        cfg[key] = value
    return instantiate(cfg).eval()


def sd3_twin(model: MaskGWM) -> SD3Transformer2DModel:
    """A diffusers SD3 image model holding exactly our spatial weights."""
    sd3 = SD3Transformer2DModel(**{k: model.config[k] for k in SD3_KEYS}).eval()
    sd3.load_state_dict(model.spatial_state_dict(), strict=True)
    return sd3


def perturb_temporal(model: MaskGWM, seed: int = 1, scale: float = 0.2) -> None:
    """Give the zero-initialised modulations non-zero weights so the temporal blocks act."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in model.temporal_blocks:
            for p in block.adaLN_modulation.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * scale)


def perturb_all(model: MaskGWM, seed: int = 1, scale: float = 0.2) -> None:
    """Non-zero weights for every zero-initialised modulation: temporal, view and both MR branches."""
    perturb_temporal(model, seed, scale)
    gen = torch.Generator().manual_seed(seed + 1)
    modules = [block.adaLN_modulation for block in model.view_blocks or []]
    if model.reconstruction is not None:
        modules += [model.reconstruction.temporal.adaLN_modulation, model.reconstruction.spatial.norm1.linear]
    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * scale)


def mask_plan_for(latents: torch.Tensor, ratio: float = 0.25, spatial_prob: float = 0.5, seed: int = 0,
                  patch_size: int = 2):
    """A random MR plan for latents (B, T, V, C, H, W), its mask noise drawn from `seed`."""
    b, t, v, _, h, w = latents.shape
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(latents.shape, generator=gen)
    return sample_mask_plan((b, t, v), (h // patch_size, w // patch_size), ratio, spatial_prob, noise, gen)


def public_config(model: MaskGWM) -> dict:
    """The constructor kwargs, without diffusers' bookkeeping entries such as _name_or_path."""
    return {k: v for k, v in model.config.items() if not k.startswith("_")}


def inputs(b=2, t=4, v=1, h=8, w=8, c=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    latents = torch.randn(b, t, v, c, h, w, generator=gen)
    tau = torch.rand(b, t, generator=gen)
    actions = torch.randn(b, 19, generator=gen)
    return latents, tau, actions


def test_output_shapes_for_frames_and_views():
    model = tiny_model()
    for v in (1, 2):
        for t in range(1, 9):
            latents, tau, actions = inputs(b=1, t=t, v=v, h=4, w=8)
            with torch.no_grad():
                out = model(latents, tau, actions, torch.ones(1, 5, dtype=torch.bool))
            assert out.shape == latents.shape


@pytest.mark.parametrize("with_text", [False, True])
def test_single_frame_equals_sd3_image_model_at_init(with_text):
    model = tiny_model()
    sd3 = sd3_twin(model)
    latents, tau, _ = inputs(b=2, t=1, h=16, w=32)
    if with_text:
        text = torch.randn(2, 5, model.config.joint_attention_dim)
        pooled = torch.randn(2, model.config.pooled_projection_dim)
    else:
        text = model.null_text[None].expand(2, -1, -1)
        pooled = model.null_pooled[None].expand(2, -1)
    with torch.no_grad():
        ours = model(latents, tau, encoder_hidden_states=text if with_text else None,
                     pooled_projections=pooled if with_text else None)
        ref = sd3(latents[:, 0, 0], text, pooled, tau[:, 0] * 1000).sample
    assert torch.allclose(ours[:, 0, 0], ref, atol=1e-5)


def test_each_frame_equals_image_model_alone_at_init():
    model = tiny_model()
    latents, tau, actions = inputs(b=2, t=4, v=2)
    with torch.no_grad():
        video = model(latents, tau, actions)
        for i in range(4):
            alone = model(latents[:, i:i + 1], tau[:, i:i + 1])
            assert torch.allclose(video[:, i:i + 1], alone, atol=1e-5)


def test_frames_interact_only_after_temporal_blocks_are_trained():
    model = tiny_model()
    latents, tau, _ = inputs(t=4)
    changed = latents.clone()
    changed[:, 3] += 1.0
    with torch.no_grad():
        assert torch.equal(model(latents, tau)[:, 0], model(changed, tau)[:, 0])
        perturb_temporal(model)
        assert not torch.allclose(model(latents, tau)[:, 0], model(changed, tau)[:, 0], atol=1e-4)


def test_views_stay_independent():
    model = tiny_model()
    perturb_temporal(model)
    latents, tau, _ = inputs(t=3, v=2)
    changed = latents.clone()
    changed[:, :, 1] += 1.0
    with torch.no_grad():
        assert torch.allclose(model(latents, tau)[:, :, 0], model(changed, tau)[:, :, 0], atol=1e-6)


def test_actions_matter_only_once_projection_is_nonzero():
    model = tiny_model()
    perturb_temporal(model)
    latents, tau, actions = inputs(t=3)
    valid = torch.ones(2, 5, dtype=torch.bool)
    with torch.no_grad():
        no_action = model(latents, tau)
        assert torch.equal(model(latents, tau, actions, valid), no_action)
        model.action_embedding.proj.weight.normal_(std=0.05)
        with_action = model(latents, tau, actions, valid)
        assert not torch.allclose(with_action, no_action, atol=1e-4)
        assert not torch.allclose(model(latents, tau, actions + 1.0, valid), with_action, atol=1e-4)
        # All groups invalid is exactly "no actions": the unconditional branch of guidance.
        assert torch.equal(model(latents, tau, actions, torch.zeros_like(valid)), no_action)


def test_temporal_block_mixes_frames_only_at_the_same_grid_position():
    torch.manual_seed(0)
    d, s, t = 32, 6, 4
    block = TemporalBlock(d, num_heads=2, head_dim=16)
    with torch.no_grad():
        for p in block.adaLN_modulation.parameters():
            p.normal_(std=0.2)
    x = torch.randn(1, s, t, d, requires_grad=True)
    context = torch.randn(1, t, 3, d, requires_grad=True)
    temb, action, pos = torch.randn(1, t, d), torch.randn(1, d), torch.randn(t, d)
    block(x, context, action, temb, pos)[0, 2, 1].sum().backward()
    touched = x.grad.abs().sum(dim=-1)[0]  # (S, T)
    assert (touched[2] > 0).all()
    assert touched[[0, 1, 3, 4, 5]].eq(0).all()
    # Cross-attention reads only the text tokens of the query's own frame.
    ctx_touched = context.grad.abs().sum(dim=(-1, -2))[0]  # (T,)
    assert ctx_touched[1] > 0 and ctx_touched[[0, 2, 3]].eq(0).all()


def test_reference_frames_ignore_their_tau():
    model = tiny_model()
    perturb_temporal(model)
    latents, tau, _ = inputs(t=3)
    is_reference = torch.tensor([[True, False, False]] * 2)
    other = tau.clone()
    other[:, 0] = 0.9
    with torch.no_grad():
        # m = 0: a reference frame's tau never reaches the time embeddings ...
        assert torch.equal(model(latents, tau, is_reference=is_reference),
                           model(latents, other, is_reference=is_reference))
        zero = tau.clone()
        zero[:, 0] = 0.0
        assert torch.equal(model(latents, tau, is_reference=is_reference), model(latents, zero))
        # ... while without the flag it does.
        assert not torch.allclose(model(latents, tau), model(latents, other), atol=1e-4)


def test_temporal_blocks_receive_gradients_at_init():
    model = tiny_model().train()
    latents, tau, _ = inputs(t=3)
    model(latents, tau).square().mean().backward()
    for block in model.temporal_blocks:
        assert block.adaLN_modulation[-1].weight.grad.abs().sum() > 0
    assert model.null_text.grad.abs().sum() > 0


@pytest.mark.parametrize("mview", [False, True])
def test_save_and_load_round_trip(tmp_path, mview):
    overrides = {"num_views": 2, "use_view_blocks": True, "view_ring_mask": True} if mview else {}
    model = tiny_model(**overrides)
    perturb_all(model)
    with torch.no_grad():
        model.action_embedding.proj.weight.normal_(std=0.05)
    model.save_pretrained(tmp_path / "export")
    loaded = MaskGWM.from_pretrained(tmp_path / "export").eval()
    assert public_config(loaded) == public_config(model)
    assert loaded.state_dict().keys() == model.state_dict().keys()
    latents, tau, actions = inputs(t=3, v=2 if mview else 1)
    with torch.no_grad():
        assert torch.equal(model(latents, tau, actions), loaded(latents, tau, actions))
        # The MR modules (mask token, F_s, F_t) and the view blocks came back too.
        plan = mask_plan_for(latents)
        assert torch.equal(model.train()(latents, tau, actions, mask_plan=plan),
                           loaded.train()(latents, tau, actions, mask_plan=plan))


@pytest.mark.parametrize("masked", [False, True])
def test_gradient_checkpointing_gives_same_loss_and_grads(masked):
    model = tiny_model(num_views=2, use_view_blocks=True).train()
    perturb_all(model)
    latents, tau, actions = inputs(t=3, v=2)
    plan = mask_plan_for(latents, spatial_prob=0.5, seed=3) if masked else None
    if masked:
        assert plan.time_mask.any() and not plan.time_mask.all()  # both MR branches run

    def loss_and_grads():
        model.zero_grad()
        loss = model(latents, tau, actions, mask_plan=plan).square().mean()
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    loss_plain, grads_plain = loss_and_grads()
    model.enable_gradient_checkpointing()
    assert model.gradient_checkpointing and model.reconstruction.gradient_checkpointing
    loss_ckpt, grads_ckpt = loss_and_grads()
    assert torch.allclose(loss_plain, loss_ckpt)
    assert grads_plain.keys() == grads_ckpt.keys()
    assert any(n.startswith("view_blocks.") for n in grads_plain)
    assert any(n.startswith("reconstruction.spatial.") for n in grads_plain) == masked
    for name, grad in grads_plain.items():
        assert torch.allclose(grad, grads_ckpt[name], atol=1e-6), name


def test_load_sd3_state_dict():
    model = tiny_model()
    torch.manual_seed(5)
    sd3 = SD3Transformer2DModel(**{k: model.config[k] for k in SD3_KEYS})
    model.load_sd3_state_dict(sd3.state_dict())
    for key, value in sd3.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)
    broken = dict(sd3.state_dict())
    broken.pop("proj_out.bias")
    with pytest.raises(ValueError, match="missing"):
        model.load_sd3_state_dict(broken)


def test_rejects_mask_plan_outside_training_and_too_many_frames():
    model = tiny_model(max_frames=4)
    latents, tau, _ = inputs(t=2)
    plan = mask_plan_for(latents)
    with pytest.raises(ValueError, match="training-only"):
        model(latents, tau, mask_plan=plan)
    with pytest.raises(TypeError, match="MaskPlan"):
        model.train()(latents, tau, mask_plan={"kind": "spatial"})
    with pytest.raises(ValueError, match="does not fit"):
        model(latents[..., :4], tau, mask_plan=plan)
    with pytest.raises(ValueError, match="mask_reconstruction=False"):
        tiny_model(mask_reconstruction=False).train()(latents, tau, mask_plan=plan)
    model.eval()
    latents, tau, _ = inputs(t=5)
    with pytest.raises(ValueError, match="max_frames"):
        model(latents, tau)
