"""`python tests/plan/fsdp2_peak.py RANKS OVERRIDE...`: one rank's peak bytes of a training step under FSDP2 over RANKS
ranks, by torch's FSDP memory tracker, on fake tensors and a fake process group; prints JSON by kind. A process of
its own: the process group is global state. The planner test compares the planner's FSDP split with it."""
from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist
from hydra.utils import instantiate
from torch.distributed._tools.fsdp2_mem_tracker import FSDPMemTracker
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.testing._internal.distributed.fake_pg import FakeStore

from worldmodel.config import compose_config
from worldmodel.plan.codec import plannable_codec
from worldmodel.plan.fake_step import _fake, _TrainingStep, build_for_plan, step_inputs
from worldmodel.training.fsdp import BLOCK_CLASSES
from worldmodel.training.trainable import freeze_idle_groups


def main(ranks: int, overrides: list[str]) -> dict[str, int]:
    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=ranks)
    mesh = init_device_mesh("cpu", (ranks,))  # outside the fake mode: the mesh holds real rank tensors
    cfg, _ = build_for_plan(compose_config("train", overrides))
    codec, _, _ = plannable_codec(cfg)
    with _fake():
        model = instantiate(cfg.model, _convert_="all").train()
        objective = instantiate(cfg.objective, _convert_="all")
        freeze_idle_groups(model, objective)
        for module in list(model.modules()):
            if type(module) in BLOCK_CLASSES:  # the units `trainer=fsdp` wraps
                fully_shard(module, mesh=mesh)
        step = fully_shard(_TrainingStep(model, codec, objective), mesh=mesh)
        optimizer = torch.optim.AdamW([p for p in step.parameters() if p.requires_grad], lr=1e-5)
        inputs = step_inputs(cfg, model, codec, encodes=True)

        def one_step() -> None:
            step(*inputs).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        one_step()  # AdamW's state exists from the second step on
        tracker = FSDPMemTracker(step, optimizer)
        tracker.track_inputs(inputs)
        with tracker:
            one_step()
        peak = next(iter(tracker.get_tracker_snapshot("peak").values()))
    dist.destroy_process_group()
    return {str(kind).rsplit(".", 1)[-1]: int(value) for kind, value in peak.items()}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), sys.argv[2:])))
