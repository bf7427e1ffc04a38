"""Find operations that make the host wait for the GPU: reading a value (`.item()`, `float(t)`, `if t.any():`),
an output whose shape depends on the data (`nonzero`, boolean-mask indexing, `unique`), or a copy to the CPU.

On a GPU each of these stalls the CPU until every queued kernel has run, so a training step or a sampling chunk
that has one loses the overlap of Python and GPU work. Under `FakeTensorMode` most of them cannot even run (a fake
tensor has no value); this mode names the first one and the line outside torch that asked for it.
"""
from __future__ import annotations

import traceback
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
PACKAGE = Path(__file__).resolve().parents[1]
_VALUE_READS = {aten._local_scalar_dense.default: "reads a value on the host (.item(), float(t), bool(t))",
                aten.is_nonzero.default: "reads a value on the host (bool(t))",
                aten.equal.default: "reads a value on the host (torch.equal)"}
_DATA_SHAPED = {aten.nonzero.default, aten.masked_select.default, aten._unique2.default, aten.unique_dim.default,
                aten.unique_consecutive.default, aten.repeat_interleave.Tensor}


class HostSyncError(RuntimeError):
    """An operation that waits for the GPU, named with the line that asked for it."""


def _caller() -> str:
    """The innermost frame outside torch and this file: the line to change."""
    torch_dir, this = Path(torch.__file__).resolve().parent, Path(__file__).resolve()
    for frame in reversed(traceback.extract_stack()):
        path = Path(frame.filename).resolve()
        if path != this and torch_dir not in path.parents:
            where = path.relative_to(PACKAGE.parent) if PACKAGE.parent in path.parents else path
            return f"{where}:{frame.lineno} ({frame.name}: {frame.line})"
    return "inside torch"


def _has_bool_index(indices) -> bool:
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices or ())


def sync_reason(func, args: tuple, kwargs: dict, device_type: str = "cuda") -> str | None:
    """Why `func(*args, **kwargs)` waits for a `device_type` device, or None."""
    if func in _VALUE_READS:
        # A CPU tensor's value is on the host already.
        on_device = any(isinstance(a, torch.Tensor) and a.device.type == device_type for a in args)
        return _VALUE_READS[func] if on_device else None
    if func in _DATA_SHAPED:
        return f"{func.__name__} has an output shape that depends on the data"
    if func in (aten.index.Tensor, aten.index_put.default, aten.index_put_.default) and _has_bool_index(args[1]):
        return "boolean-mask indexing has a shape that depends on the data (it runs nonzero)"
    if func in (aten._to_copy.default, aten.copy_.default):
        source = args[1] if func is aten.copy_.default else args[0]
        target = args[0].device if func is aten.copy_.default else kwargs.get("device")
        if isinstance(source, torch.Tensor) and source.device.type == device_type and target is not None \
                and torch.device(target).type == "cpu" and device_type != "cpu":
            return "copies a GPU tensor to the CPU"
    return None


class HostSyncFinder(TorchDispatchMode):
    """Raises HostSyncError at the first operation that would make the host wait for the GPU.

    Enter it inside the FakeTensorMode (the later mode sees each operation first). `device_type` is the
    accelerator's ("cpu" lets a CPU build of torch test the finder itself)."""

    def __init__(self, device_type: str = "cuda") -> None:
        super().__init__()
        self.device_type = device_type

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if (reason := sync_reason(func, args, kwargs, self.device_type)) is not None:
            raise HostSyncError(f"{func.__name__} {reason}: {_caller()}")
        return func(*args, **kwargs)
