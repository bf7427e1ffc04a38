"""A checkpoint whose optimiser state lists the idle MR parameters (written before idle groups were frozen) resumes
exactly; one whose run trained another set of parameters is refused, naming both counts."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import TINY_RUN
from worldmodel.config import compose_config
from worldmodel.training.resume import ResumeError
from worldmodel.training.train import build_module, train

MR_OFF = [*TINY_RUN, "objective=rectified_flow", "model=tiny"]


def _with_listing(checkpoint: Path, out: Path, listed: list[str]) -> Path:
    """The checkpoint with its AdamW group listing the parameters `listed` (names), as a run that trained them
    would have written it: the state of each parameter stays with it, the others have none."""
    state = torch.load(checkpoint, weights_only=True)
    module = build_module(compose_config("train", MR_OFF), {})
    trainable = [name for name, p in module.model.named_parameters() if p.requires_grad]
    adam = state["optimizer_states"][0]
    by_name = {trainable[i]: s for i, s in adam["state"].items()}
    adam["param_groups"][0]["params"] = list(range(len(listed)))
    adam["state"] = {i: by_name[name] for i, name in enumerate(listed) if name in by_name}
    torch.save(state, out)
    return out


def _weights(run) -> dict[str, torch.Tensor]:
    return torch.load(run.last_checkpoint, weights_only=True)["state_dict"]


def test_an_optimiser_state_listing_the_idle_mr_parameters_resumes_exactly(tmp_path: Path) -> None:
    first = train(compose_config("train", [*MR_OFF, f"run_dir={tmp_path / 'first'}"]))
    model = build_module(compose_config("train", MR_OFF), {}).model
    earlier = [name for name, p in model.named_parameters()
               if p.requires_grad or name.startswith(("mask_token.", "reconstruction."))]
    assert len(earlier) > sum(p.requires_grad for p in model.parameters())  # the model has idle MR parameters
    old = _with_listing(first.last_checkpoint, tmp_path / "old.ckpt", earlier)

    def resumed(name: str, ckpt: Path):
        return train(compose_config("train", [*MR_OFF, f"run_dir={tmp_path / name}", "trainer.max_steps=4",
                                              f"ckpt_path={ckpt}"]))

    now, then = _weights(resumed("from_new", first.last_checkpoint)), _weights(resumed("from_old", old))
    assert now.keys() == then.keys() and all(torch.equal(now[k], then[k]) for k in now)


def test_an_optimiser_state_of_another_parameter_set_is_refused(tmp_path: Path) -> None:
    first = train(compose_config("train", [*MR_OFF, f"run_dir={tmp_path / 'first'}"]))
    model = build_module(compose_config("train", MR_OFF), {}).model
    fewer = [name for name, p in model.named_parameters() if p.requires_grad][:-3]
    other = _with_listing(first.last_checkpoint, tmp_path / "other.ckpt", fewer)
    trains = sum(p.requires_grad for p in model.parameters())
    with pytest.raises(ResumeError, match=rf"other.ckpt: its optimiser state holds {trains - 3} parameters but this "
                                          rf"run trains {trains}: resume with the trainable="):
        train(compose_config("train", [*MR_OFF, f"run_dir={tmp_path / 'again'}", "trainer.max_steps=4",
                                       f"ckpt_path={other}"]))
