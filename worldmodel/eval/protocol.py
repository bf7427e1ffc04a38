"""An evaluation protocol: which clips, how long, which metrics; recorded next to every number it produces."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

METRICS = ("fid", "fvd", "psnr", "ssim", "action_following")
BASELINES = ("copy_last_frame",)
SELECTIONS = ("first", "evenly_spaced", "per_scene")


class ProtocolError(ValueError):
    """A protocol config that cannot be run: names the key and what it accepts."""


@dataclass(frozen=True)
class EvalProtocol:
    """Everything that decides an evaluation's numbers (see conf/protocol/*.yaml for each field's meaning)."""

    name: str
    description: str = ""
    # A reader config with `_target_` (frames, fps and size are set from the checkpoint); None: the
    # checkpoint's own validation reader (its dataset, split below).
    dataset: Mapping[str, Any] | None = None
    split: str = "val"
    num_videos: int | None = None
    selection: str = "evenly_spaced"
    num_frames: int | None = 25
    seconds: float | None = None
    first_reference: int = 1
    carry_frames: int = 3
    use_actions: bool = True
    horizon_step_s: float | None = None
    fid_frames: int | None = None
    metrics: tuple[str, ...] = ("fid", "fvd", "psnr", "ssim")
    baselines: tuple[str, ...] = ("copy_last_frame",)
    real_floor: bool = True
    seed: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def bad(key: str, why: str) -> ProtocolError:
            return ProtocolError(f"protocol {self.name!r}: {key} {why}")

        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise bad("metrics", f"has unknown {unknown}; choose from {list(METRICS)}")
        unknown = [b for b in self.baselines if b not in BASELINES]
        if unknown:
            raise bad("baselines", f"has unknown {unknown}; choose from {list(BASELINES)}")
        if self.selection not in SELECTIONS:
            raise bad("selection", f"is {self.selection!r}; choose from {list(SELECTIONS)}")
        if (self.num_frames is None) == (self.seconds is None):
            raise bad("num_frames / seconds", "set exactly one: frames per video, or seconds after the references")
        if self.num_videos is not None and self.num_videos < 2 and {"fid", "fvd"} & set(self.metrics):
            raise bad("num_videos", f"is {self.num_videos}; Fréchet distances need at least 2 videos")
        if self.first_reference < 1:
            raise bad("first_reference", f"is {self.first_reference}; the first chunk needs >= 1 real frame")
        if self.horizon_step_s is not None and self.horizon_step_s <= 0:
            raise bad("horizon_step_s", f"is {self.horizon_step_s}; give a positive number of seconds or null")
        if self.fid_frames is not None and self.fid_frames < 2:
            raise bad("fid_frames", f"is {self.fid_frames}; give >= 2 frames or null for every generated frame")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EvalProtocol:
        """Build from a plain dict (a resolved conf/protocol/*.yaml); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ProtocolError(f"protocol {config.get('name', '?')!r}: unknown key(s) {unknown}; "
                                f"known keys are {sorted(known)}")
        if "name" not in config:
            raise ProtocolError("a protocol needs a name")
        values = dict(config)
        for key in ("metrics", "baselines"):
            if key in values:
                values[key] = tuple(values[key] or ())
        if values.get("dataset") is not None:
            values["dataset"] = dict(values["dataset"])
        return cls(**values)

    def video_frames(self, fps: float) -> int:
        """Frames of each evaluated video, reference frames included."""
        if self.num_frames is not None:
            if self.num_frames <= self.first_reference:
                raise ProtocolError(f"protocol {self.name!r}: num_frames {self.num_frames} leaves no frame to "
                                    f"predict after {self.first_reference} reference frame(s)")
            return int(self.num_frames)
        return self.first_reference + int(round(float(self.seconds) * fps))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["metrics"], out["baselines"] = list(self.metrics), list(self.baselines)
        out["dataset"] = None if self.dataset is None else dict(self.dataset)
        out["extra"] = dict(self.extra)
        return out

    def fingerprint(self, **context: Any) -> str:
        """A short hash of the protocol and the run context (checkpoint, sampler): a resumed run must match it."""
        text = json.dumps({"protocol": self.to_dict(), **context}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
