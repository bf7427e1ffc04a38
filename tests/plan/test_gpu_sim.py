"""The fake-CUDA check of the GPU path (`make gpu-sim`): it passes the quickstart recipe and fails on each kind of
defect it is there to find. Needs a CUDA build of torch (no GPU); skipped on the CPU build that `make test` uses."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from worldmodel.config import compose_config

pytestmark = pytest.mark.skipif(not torch.backends.cuda.is_built(),
                                reason="needs a CUDA build of torch: run `make gpu-sim`")

RUN = ["experiment=quickstart_mr"]


def test_the_quickstart_step_and_chunk_run_on_fake_cuda(capsys: pytest.CaptureFixture) -> None:
    from worldmodel.plan.gpu_sim import main

    assert main(RUN) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(" ok " in line for line in lines), lines
    assert "bfloat16 weights" in lines[2] and "float32 weights" in lines[1]


def test_a_host_sync_in_the_sampler_is_found_with_its_line(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    from worldmodel.diffusion.euler import FlowEulerSampler
    from worldmodel.plan.gpu_sim import check_rollout_chunk
    from worldmodel.plan.host_sync import HostSyncError

    sample = FlowEulerSampler.sample

    def logging_sample(self, model, reference, *args, **kwargs):
        print(f"reference mean {float(reference.mean()):.3f}")  # the kind of line that stalls a GPU
        return sample(self, model, reference, *args, **kwargs)

    monkeypatch.setattr(FlowEulerSampler, "sample", logging_sample)
    with pytest.raises(HostSyncError, match=r"test_gpu_sim.py:\d+ \(logging_sample"):
        check_rollout_chunk(compose_config("train", RUN))


def test_a_tensor_left_on_the_cpu_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    from worldmodel.model.maskgwm import MaskGWM
    from worldmodel.plan.gpu_sim import check_training_step

    forward = MaskGWM.forward

    def forward_with_a_cpu_constant(self, latents, *args, **kwargs):
        return forward(self, latents + torch.zeros(latents.shape[-1]), *args, **kwargs)  # no device=

    monkeypatch.setattr(MaskGWM, "forward", forward_with_a_cpu_constant)
    with pytest.raises(Exception, match=r"two devices, (cuda:0 and cpu|cpu and cuda:0)"):
        check_training_step(compose_config("train", RUN))


def test_a_plain_tensor_attribute_is_named() -> None:
    from worldmodel.plan.gpu_sim import unmoved_tensors

    module = nn.Sequential(nn.Linear(2, 2))
    module[0].scale = torch.ones(3)
    assert unmoved_tensors(module) == ["0.scale (3,)"]


def test_bf16_autocast_turns_on_without_a_driver() -> None:
    from worldmodel.plan.fake_step import _fake
    from worldmodel.plan.gpu_sim import cuda_autocast_without_driver

    with _fake(), torch.device("cuda"), cuda_autocast_without_driver(), torch.autocast("cuda", dtype=torch.bfloat16):
        out = nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16 and out.device.type == "cuda"
