"""Settings that earlier versions wrote into run configs and this one no longer has (docs/FINDINGS.md).

An export or `.ckpt` carries the resolved config of the run that wrote it. When a setting leaves the package, its
stored default must not break loading those files: `retire_settings` drops a retired key whose stored value is the
old default, moves one that now belongs to another class (the sampler's reference noise, now on the experimental
shelf) there with its value, and refuses, naming the key, a value this version can no longer reproduce.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worldmodel.errors import UserInputError

NOISY_REFERENCE = "worldmodel.experimental.reference_noise.NoisyReferenceSampler"
_STANDARDISATION = "the DCT channel standardisation was removed (measured not to help)"


@dataclass(frozen=True)
class Retired:
    """A key that left its class: `off` is its stored default; `now_in` names the class that took it over (the
    node is rebuilt as that class, with the value) or None when nothing did (any other value is refused)."""

    off: Any
    why: str
    now_in: str | None = None


# section -> class -> retired key
RETIRED: dict[str, dict[str, dict[str, Retired]]] = {
    "codec": {"worldmodel.codecs.DCTCodec": {
        "channel_mean": Retired(None, _STANDARDISATION),
        "channel_std": Retired(None, _STANDARDISATION),
    }},
    "sampler": {"worldmodel.diffusion.FlowEulerSampler": {
        "reference_noise": Retired(0.0, "it moved to the experimental shelf (extension=reference_noise)",
                                   now_in=NOISY_REFERENCE),
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
    for key, setting in retired.items():
        if key not in node or node[key] == setting.off:
            node.pop(key, None)
        elif setting.now_in is not None:
            # The same behaviour as the version that wrote it: the class that took the setting over.
            node["_target_"] = setting.now_in
        else:
            raise RetiredSettingError(
                f"{source}: its run config sets {section}.{key}={node[key]!r}, but {setting.why}; this version "
                f"cannot rebuild that {section}. Load it with the worldmodel version that trained it "
                f"(docs/FINDINGS.md names the commit), or retrain")
    return node
