"""Latents streamed chunk by chunk into a safetensors file read back by the safetensors library."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from worldmodel.rollout.latents_file import StreamingSafetensors


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_streamed_file_round_trips(tmp_path: Path, dtype: torch.dtype) -> None:
    full = torch.randn(7, 2, 3, 4)
    with StreamingSafetensors(tmp_path / "x.safetensors", "latents", tuple(full.shape), dtype, {"seed": "3"}) as f:
        f.append(full[:3])
        f.append(full[3:])
    with safe_open(str(tmp_path / "x.safetensors"), framework="pt") as f:
        assert torch.equal(f.get_tensor("latents"), full.to(dtype))
        assert f.metadata() == {"seed": "3"}


def test_short_or_failed_stream_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    with pytest.raises(ValueError, match="1 rows written, 2 announced"):
        with StreamingSafetensors(path, "latents", (2, 3)) as f:
            f.append(torch.zeros(1, 3))
    # The caller's own error comes through, not one from closing the half-written file.
    with pytest.raises(RuntimeError, match="generation failed"):
        with StreamingSafetensors(path, "latents", (2, 3)) as f:
            raise RuntimeError("generation failed")
    assert list(tmp_path.iterdir()) == []
