"""Settings that earlier versions wrote into run configs and this one no longer has (docs/FINDINGS.md).

An export or `.ckpt` carries the resolved config of the run that wrote it. When a setting leaves the package, its
stored default must not break loading those files: `retire_settings` drops a retired key whose stored value is the
old default, moves one that now belongs to another class (the sampler's reference noise, now on the experimental
shelf) there with its value, and refuses, naming the key, a value this version can no longer reproduce.
"""
from __future__ import annotations

from typing import Any

from worldmodel.errors import UserInputError

FLOW_EULER = "worldmodel.diffusion.FlowEulerSampler"
NOISY_REFERENCE = "worldmodel.experimental.reference_noise.NoisyReferenceSampler"

# section -> class -> retired key -> (the value that means "off", what happened to it)
RETIRED: dict[str, dict[str, dict[str, tuple[Any, str]]]] = {
    "codec": {"worldmodel.codecs.DCTCodec": {
        "channel_mean": (None, "the DCT channel standardisation was removed (measured not to help)"),
        "channel_std": (None, "the DCT channel standardisation was removed (measured not to help)"),
    }},
    "sampler": {FLOW_EULER: {
        "reference_noise": (0.0, "moved to the experimental shelf (extension=reference_noise)"),
    }},
}


class RetiredSettingError(UserInputError, ValueError):
    """A stored config uses a setting this version of worldmodel no longer has."""


def retire_settings(section: str, node: dict[str, Any], source: object) -> dict[str, Any]:
    """`node` (one section of a stored run config) with the retired settings of its class handled (see above)."""
    retired = RETIRED.get(section, {}).get(node.get("_target_"), {})
    if not any(key in node for key in retired):
        return node
    node = dict(node)
    if section == "sampler" and node.get("reference_noise", 0.0) != 0.0:
        # The same sampling as the version that wrote it: the reference-noise sampler took the setting over.
        node["_target_"] = NOISY_REFERENCE
        return node
    for key, (off, why) in retired.items():
        if key not in node:
            continue
        value = node.pop(key)
        if value != off:
            raise RetiredSettingError(
                f"{source}: its run config sets {section}.{key}={value!r}, but {why}; this version cannot rebuild "
                f"that {section}. Load it with the worldmodel version that trained it (docs/FINDINGS.md names the "
                f"commit), or retrain")
    return node
