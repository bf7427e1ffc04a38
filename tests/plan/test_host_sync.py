"""HostSyncFinder names each kind of host sync with the line that asked for it, and lets device-side work run."""
from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from worldmodel.plan.host_sync import HostSyncError, HostSyncFinder


def _read(x: torch.Tensor) -> float:
    return float(x.sum())


@pytest.mark.parametrize("sync, message", [
    (_read, r"reads a value on the host .*tests/plan/test_host_sync.py:\d+ \(_read"),
    (lambda x: x.sum().item(), "_local_scalar_dense.default reads a value on the host"),
    (lambda x: bool(x.any()), "reads a value on the host"),
    (lambda x: torch.nonzero(x), "nonzero.default has an output shape that depends on the data"),
    (lambda x: x[x > 0], "boolean-mask indexing"),
    (lambda x: torch.unique(x), "output shape that depends on the data"),
], ids=["float", "item", "bool", "nonzero", "mask", "unique"])
def test_each_kind_of_sync_is_named(sync, message: str) -> None:
    with FakeTensorMode(), HostSyncFinder(device_type="cpu"):
        x = torch.randn(4, 4)
        with pytest.raises(HostSyncError, match=message):
            sync(x)


def test_device_side_work_runs_through() -> None:
    with FakeTensorMode(), HostSyncFinder(device_type="cpu"):
        x = torch.randn(8, 8)
        y = torch.where(x > 0, x, torch.zeros_like(x)).softmax(-1) @ x
        mask = torch.ones(8, dtype=torch.bool)
        z = y.masked_fill(~mask[:, None], 0.0).sum(dim=0)
    assert z.shape == (8,)
