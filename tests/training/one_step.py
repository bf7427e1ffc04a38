"""What one optimiser step of `train(cfg)` must leave behind, checked against values the test recomputes.

`record_training(monkeypatch)` wraps `build_module` so that the run's module, its initial weights and every loss
it computes (model, batch, random-generator states, value) are kept. `check_one_step` then holds the run to:

- the logged train/loss is finite and is the objective's loss of the recorded batch, recomputed with the initial
  weights and the same draws (and val/loss that of the EMA weights on the validation batch);
- the trainable parameters are those of the config's `trainable` groups, and only they moved, each element by at
  most AdamW's first step, lr * (1 / warmup_steps), and the largest move is that step (an update that was skipped,
  doubled or not warmed up would not be);
- the EMA shadow is the first warm-up update of the initial weights towards the new ones.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

import worldmodel.training.train as train_module
from worldmodel.model.maskgwm import PARAMETER_GROUPS
from worldmodel.training.module import WorldModelModule


@dataclass
class LossCall:
    """One `_loss` call of the run: the arguments to redo it and the value it gave."""

    trained_model: bool  # the live weights (a training step), not the EMA shadow (validation)
    training_mode: bool
    batch: dict[str, Any]
    kwargs: dict[str, Any]  # random generators among them as their states before the call
    loss: torch.Tensor


@dataclass
class Recording:
    module: WorldModelModule | None = None
    initial: dict[str, torch.Tensor] = field(default_factory=dict)
    calls: list[LossCall] = field(default_factory=list)


class _State(tuple):
    """(device, state) of a torch generator, to rebuild it as it was."""


def _states(value: Any) -> Any:
    """A generator, or a list of them (one per sample), as its states; anything else as it is."""
    if isinstance(value, torch.Generator):
        return _State((value.device, value.get_state()))
    if isinstance(value, (list, tuple)) and value and all(isinstance(g, torch.Generator) for g in value):
        return [_states(g) for g in value]
    return value


def _restore(value: Any) -> Any:
    if isinstance(value, _State):
        generator = torch.Generator(device=value[0])
        generator.set_state(value[1])
        return generator
    if isinstance(value, list) and value and all(isinstance(s, _State) for s in value):
        return [_restore(s) for s in value]
    return value


def record_training(monkeypatch: pytest.MonkeyPatch) -> Recording:
    """Make the next `train(cfg)` record its module, initial weights and losses."""
    recording = Recording()
    build = train_module.build_module

    def recording_build(cfg, run_config):
        module = build(cfg, run_config)
        recording.module = module
        recording.initial = {k: v.detach().clone() for k, v in module.model.state_dict().items()}
        loss_of = module._loss

        def recorded_loss(model, batch, **kwargs):  # the module passes all but model and batch by name
            before = {name: _states(value) for name, value in kwargs.items()}
            loss, logs = loss_of(model, batch, **kwargs)
            recording.calls.append(LossCall(model is module.model, model.training, batch, before,
                                            loss.detach().clone()))
            return loss, logs

        module._loss = recorded_loss
        return module

    monkeypatch.setattr(train_module, "build_module", recording_build)
    return recording


@torch.no_grad()
def _recompute(module: WorldModelModule, model: torch.nn.Module, call: LossCall) -> torch.Tensor:
    model.train(call.training_mode)
    kwargs = {name: _restore(value) for name, value in call.kwargs.items()}
    loss, _ = WorldModelModule._loss(module, model, call.batch, **kwargs)
    return loss


def expected_trainable(names: list[str], cfg: Any) -> set[str]:
    """The parameter names the config trains: its `trainable` groups (null: all), less the MR modules when the
    objective never masks (worldmodel/training/trainable.py freezes those)."""
    tops = {name.split(".")[0] for name in names}
    if cfg.trainable is not None:
        tops = {top for group in cfg.trainable for top in PARAMETER_GROUPS[group]}
    if cfg.objective.get("mr_probability", 0.0) == 0.0:
        tops -= set(PARAMETER_GROUPS["mr"])
    return {name for name in names if name.split(".")[0] in tops}


def check_one_step(recording: Recording, result: Any, cfg: Any) -> None:
    """The run of `result` (of config `cfg`) made exactly one optimiser step (a fast_dev_run); see the docstring
    of this module."""
    module = recording.module
    assert module is not None, "train() did not build its module through build_module"
    names = [name for name, _ in module.model.named_parameters()]
    trainable = {name for name, p in module.model.named_parameters() if p.requires_grad}
    expected = expected_trainable(names, cfg)
    assert trainable == expected, (f"trainable={cfg.trainable}: also trains {sorted(trainable - expected)[:5]}, "
                                   f"freezes {sorted(expected - trainable)[:5]}")
    assert result.global_step == 1
    train_calls = [c for c in recording.calls if c.trained_model]
    assert len(train_calls) == 1, f"{len(train_calls)} training losses for one step"
    step = train_calls[0]
    logged = result.metrics["train/loss"]
    assert math.isfinite(logged) and logged == pytest.approx(float(step.loss), rel=1e-6)
    # The same batch and draws through the initial weights give the logged loss: it is that batch's objective.
    initial_model = copy.deepcopy(module.model)
    initial_model.load_state_dict(recording.initial)
    assert float(_recompute(module, initial_model, step)) == pytest.approx(logged, rel=1e-5)

    # Validation ran once, on the EMA weights (fast_dev_run validates after its one training step).
    val_calls = [c for c in recording.calls if not c.trained_model]
    assert len(val_calls) == 1 and math.isfinite(result.metrics["val/loss"])
    assert float(_recompute(module, module.inference_model, val_calls[0])) == pytest.approx(
        result.metrics["val/loss"], rel=1e-5)

    # Only trainable parameters moved, by AdamW's first step at most: m / sqrt(v) = g / |g| at step 1, times the
    # warmed-up learning rate lr * min(1, 1 / warmup_steps). The paper recipes' step (5e-8) is below a float32
    # weight's spacing near 1, so each element is allowed its rounding, and the largest move is measured where
    # rounding is under a thousandth of the step (small weights, the zero-initialised ones among them).
    first_lr = cfg.optim.lr * min(1.0, 1.0 / max(1, cfg.optim.warmup_steps))
    moved, largest = [], 0.0
    for name, param in module.model.named_parameters():
        before, after = recording.initial[name], param.detach()
        delta = (after - before).abs()
        if not param.requires_grad:
            assert delta.max().item() == 0.0, f"frozen parameter {name} changed by {delta.max().item()}"
            continue
        rounding = torch.finfo(after.dtype).eps * torch.maximum(after.abs(), before.abs())
        assert (delta <= first_lr * 1.001 + rounding).all(), (
            f"{name} moved {delta.max().item()}, more than one AdamW step of {first_lr}")
        if delta.max() > 0:
            moved.append(name)
        exact = rounding < 1e-3 * first_lr
        if exact.any():
            largest = max(largest, delta[exact].max().item())
    # Not all of them: behind a zero-initialised adaLN gate a block's own weights get no gradient at step 1.
    assert moved, "no trainable parameter changed"
    assert largest == pytest.approx(first_lr, rel=1e-2), f"largest move {largest}, one AdamW step is {first_lr}"

    # EMA: shadow <- shadow + w * (live - shadow), w = 1 - min(decay, (1 + 0) / (10 + 0)) at its first update.
    if module.ema is not None:
        assert int(module.ema.num_updates) == 1
        weight = 1.0 - min(module.ema.decay, 0.1)
        live = dict(module.model.named_parameters())
        for name, shadow in module.ema.shadow.named_parameters():
            before, after = recording.initial[name], live[name].detach()
            averaged = before + weight * (after - before)
            # Strict where rounding is small: a shadow equal to the live or the initial weights is 0.1 or 0.9
            # of a step away.
            slack = 1e-3 * first_lr + 2 * torch.finfo(after.dtype).eps * torch.maximum(after.abs(), before.abs())
            assert ((shadow - averaged).abs() <= slack).all(), (
                f"EMA of {name} is off by {(shadow - averaged).abs().max().item()}")
