"""GPUs a run is planned for: dense bf16 tensor-core peak and memory, from the vendors' data sheets."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GPU:
    """One accelerator model: its name, dense (not sparse) bf16 peak in FLOP/s and memory in GiB."""

    name: str
    bf16_flops: float
    memory_gib: float


# Dense bf16 with fp32 accumulation. H200 has the H100's compute and more, faster memory.
GPUS: dict[str, GPU] = {gpu.name: gpu for gpu in (
    GPU("H100", 989.4e12, 80.0),
    GPU("H100-PCIe", 756.0e12, 80.0),
    GPU("H200", 989.4e12, 141.0),
    GPU("A100-80GB", 312.0e12, 80.0),
    GPU("A100-40GB", 312.0e12, 40.0),
    GPU("L40S", 362.0e12, 48.0),
    GPU("RTX-4090", 165.2e12, 24.0),
    GPU("RTX-4080", 97.4e12, 16.0),
)}
# Aliases a user may type, by lower-case name.
_ALIASES = {"a100": "A100-80GB", "h100-sxm": "H100", "4090": "RTX-4090", "rtx4090": "RTX-4090", "4080": "RTX-4080",
            "rtx4080": "RTX-4080"}


def gpu_named(name: str) -> GPU:
    """The GPU of a name (case-insensitive, e.g. h100, A100-40GB, l40s); an unknown name lists the known ones."""
    by_lower = {key.lower(): gpu for key, gpu in GPUS.items()}
    key = name.strip().lower()
    gpu = by_lower.get(_ALIASES.get(key, key).lower())
    if gpu is None:
        raise ValueError(f"unknown GPU {name!r}: choose plan.gpu from {', '.join(GPUS)}")
    return gpu


def bf16_peak_of_device_name(device_name: str) -> float | None:
    """The bf16 peak of a CUDA device name as torch reports it ("NVIDIA H100 80GB HBM3"), or None if unknown."""
    upper = device_name.upper()
    for marker, key in (("H100 PCIE", "H100-PCIe"), ("H200", "H200"), ("H100", "H100"), ("A100", "A100-80GB"),
                        ("L40S", "L40S"), ("4090", "RTX-4090"), ("4080", "RTX-4080")):
        if marker in upper:
            return GPUS[key].bf16_flops
    return None
