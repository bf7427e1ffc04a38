"""Parameter counts of every model preset, split by part of the method; built on the meta device (no memory).

    python -m benchmarks.param_counts
"""
from __future__ import annotations

import torch
from hydra.utils import instantiate

from worldmodel.config import CONF_DIR, compose_config
from worldmodel.model import PARAMETER_GROUPS

COLUMNS = ("spatial", "temporal", "view", "mr", "action", "null_text")
HEADERS = ("spatial (SD3)", "temporal", "view", "MR", "action", "null text")


def preset_names() -> list[str]:
    """Every conf/model preset, single-view (long) first, then multi-view."""
    names = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
    order = {"tiny": 0, "small": 1, "base": 2, "sd3_medium": 3}
    return sorted(names, key=lambda n: (n.endswith("_mview"), order.get(n.removesuffix("_mview"), 9), n))


def count_parameters(preset: str) -> dict[str, int]:
    """Parameters of one preset per group of PARAMETER_GROUPS, plus 'total'; nothing is allocated."""
    cfg = compose_config("train", [f"model={preset}"]).model
    with torch.device("meta"):
        model = instantiate(cfg, _convert_="all")
    owner = {name: group for group, names in PARAMETER_GROUPS.items() for name in names}
    counts = dict.fromkeys(COLUMNS, 0)
    for name, param in model.named_parameters():
        top = name.split(".")[0]
        if top not in owner:
            raise KeyError(f"parameter {name} belongs to no group of PARAMETER_GROUPS")
        counts[owner[top]] += param.numel()
    counts["total"] = sum(counts.values())
    counts["views"] = model.config.num_views
    counts["layers"] = model.config.num_layers
    counts["hidden"] = model.inner_dim
    return counts


def fmt(n: int) -> str:
    if n >= 100_000:
        return f"{n / 1e6:.2f} M"
    return f"{n / 1e3:.1f} K" if n else "0"


def main() -> None:
    print("| preset | layers x hidden | views | " + " | ".join(HEADERS) + " | total |")
    print("|---|---|---|" + "---|" * (len(HEADERS) + 1))
    for preset in preset_names():
        c = count_parameters(preset)
        cells = " | ".join(fmt(c[k]) for k in COLUMNS)
        print(f"| {preset} | {c['layers']} x {c['hidden']} | {c['views']} | {cells} | {fmt(c['total'])} |")


if __name__ == "__main__":
    main()
