"""Rollout scenarios: YAML files of where the reference frames come from and what the ego does.

```yaml
name: left_turn                    # optional; the file's stem by default
description: turn left at a junction
source:                            # exactly one of:
  procedural: {seed: 3}            #   the embedded world (optional: time_of_day, lanes, traffic, curves)
  # dataset: {name: nuscenes, root: ../datasets/nuscenes, split: val, clip: 12, options: {}}
  # files: [a.jpg, b.jpg]          #   images, oldest first (the last ones become the reference frames)
  # video: {path: drive.mp4, start_s: 0.0}
seed: 0                            # noise seed of the generation (optional; see "Seeds" below)
horizon_s: 8.0                     # seconds of video
actions:                           # an ego script, or {follow: recorded} (a dataset clip's own motion)
  - {at: 0.0, do: cruise, speed: 10}
  - {at: 2.0, do: turn_left}
  - {at: 6.0, do: brake_to_stop}
```
Relative paths are relative to the scenario file; `~`, `$VARS` and `${VAR:-default}` are expanded.

Allowed values (worldmodel/rollout/limits.py keeps them and says why; a value outside is refused with the
file, line, field, value and range):

| field                                   | allowed                          |
|-----------------------------------------|----------------------------------|
| seed, source.procedural.seed            | 0..4294967295                    |
| horizon_s                               | > 0 and <= 600 s                 |
| actions[i].at                           | 0..600 s, increasing, first 0    |
| actions[i].speed                        | 0..70 m/s                        |
| actions[i].speed of turn_left/right     | 0..9.7 m/s                       |
| source.procedural.lanes                 | 1..6 lanes                       |
| source.procedural.traffic               | 0..20 vehicles per 100 m of lane |
| source.dataset.clip                     | >= 0                             |
| source.video.start_s                    | >= 0 s                           |

Numbers must be finite (`.nan` and `.inf` are refused). A turn drives a junction bend of 12 m radius or
more, and above 9.7 m/s its lateral acceleration would pass 0.8 g; steering, yaw rate and acceleration are
not scenario fields: the ego model bounds them.

Seeds: a seed on the command line (`worldmodel-rollout ... seed=7`, likewise `worldmodel-sim`) wins over
the scenario's `seed:`; without one the scenario's seed is used; without both, 0. The manifest records the
seed each run used and its `seed_source` (cli, scenario or default).
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import worldmodel
from worldmodel.data.registry import READERS
from worldmodel.rollout import limits
from worldmodel.rollout.limits import Limit
from worldmodel.rollout.yamlmarks import ScenarioError, line_of, load_marked

# The scenario library at the top of the checkout, beside conf/ (editable install).
SCENARIO_DIR = Path(worldmodel.__file__).resolve().parent.parent / "rollout"
TURNS = ("turn_left", "turn_right")
MANOEUVRES = ("cruise", "accelerate", "brake", "brake_to_stop", "stop", "turn_left", "turn_right",
              "lane_change_left", "lane_change_right")
TIMES_OF_DAY = ("day", "overcast", "dusk")


@dataclass(frozen=True)
class ActionStep:
    """From `at` seconds on the ego does `do`, aiming for `speed` m/s (None: the manoeuvre's default)."""

    at: float
    do: str
    speed: float | None = None


@dataclass(frozen=True)
class ProceduralSource:
    """A world of the embedded procedural generator, built around the scenario's script."""

    seed: int
    time_of_day: str | None = None
    lanes: int | None = None
    traffic: float | None = None
    curves: bool = True


@dataclass(frozen=True)
class DatasetSource:
    """Clip `clip` of a dataset split read through `open_dataset`."""

    name: str
    root: Path
    split: str
    clip: int
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FilesSource:
    """Still images (oldest first) or a video file from `start_s` on."""

    paths: tuple[Path, ...]
    is_video: bool = False
    start_s: float = 0.0


Source = ProceduralSource | DatasetSource | FilesSource


@dataclass(frozen=True)
class Scenario:
    """One validated scenario file."""

    name: str
    path: Path
    source: Source
    actions: tuple[ActionStep, ...] | None  # None: follow the clip's recorded motion
    seed: int | None = None  # None: the file names none; the runners resolve it (worldmodel/rollout/seeds.py)
    horizon_s: float = 8.0
    description: str = ""
    # 1-based line of each dotted field read from the file, so later checks (a dataset too short, the sim's
    # top speed) can name the line too.
    lines: Mapping[str, int | None] = field(default_factory=dict, compare=False, repr=False)

    def line_of(self, name: str) -> int | None:
        """The line of field `name` in the file, else of the field holding it (a defaulted `source.dataset.clip`:
        `source.dataset`'s); None when unknown (a Scenario not read from a file)."""
        while name:
            if self.lines.get(name) is not None:
                return self.lines[name]
            name = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", name) if re.search(r"[.\[]", name) else ""
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary for manifests."""
        src = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.source).items()}
        if isinstance(self.source, FilesSource):
            src["paths"] = [str(p) for p in self.source.paths]
        return {"name": self.name, "path": str(self.path), "description": self.description, "seed": self.seed,
                "horizon_s": self.horizon_s, "source": {type(self.source).__name__: src},
                "actions": "recorded" if self.actions is None else [vars(a) for a in self.actions]}


_DEFAULTED_VAR = re.compile(r"\$\{(\w+):-([^}]*)\}")


def _default_var(match: re.Match) -> str:
    """`${NAME:-default}` as in a shell: the variable when set and non-empty, else the default."""
    return os.environ.get(match.group(1)) or match.group(2)


# ----------------------------------------------------------------------
# Field checks
# ----------------------------------------------------------------------
class _Fields:
    """Checks values of one file and raises ScenarioError naming the dotted field and its line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[str, int | None] = {}

    def fail(self, container: Any, key: str | int, name: str, problem: str) -> ScenarioError:
        return ScenarioError(self.path, name, line_of(container, key), problem)

    def mapping(self, container: Any, key: str | int, name: str, allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> Mapping[str, Any]:
        if name:  # "" is the whole file
            self.lines[name] = line_of(container, key)
        value = container[key]
        if not isinstance(value, Mapping):
            raise self.fail(container, key, name, f"expected a mapping, got {type(value).__name__} {value!r}")
        for k in value:
            if k not in allowed:
                raise self.fail(value, k, f"{name}.{k}" if name else str(k),
                                f"unknown key; allowed keys: {', '.join(allowed)}")
        for k in required:
            if k not in value:
                raise self.fail(container, key, f"{name}.{k}" if name else k, "missing")
        return value

    def number(self, container: Any, key: str | int, name: str, limit: Limit, integer: bool = False) -> float:
        self.lines[name] = line_of(container, key)
        value = container[key]
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            kind = "an integer" if integer else "a number"
            raise self.fail(container, key, name, f"expected {kind}, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):  # YAML's .nan / .inf: no range check would catch nan
            raise self.fail(container, key, name, f"expected a finite number, got {value}")
        self.within(container, key, name, value, limit)
        return value

    def within(self, container: Any, key: str | int, name: str, value: float, limit: Limit) -> None:
        problem = limit.problem(value)
        if problem is not None:
            raise self.fail(container, key, name, problem)

    def string(self, container: Any, key: str | int, name: str, choices: tuple[str, ...] | None = None) -> str:
        self.lines[name] = line_of(container, key)
        value = container[key]
        if not isinstance(value, str):
            raise self.fail(container, key, name, f"expected a string, got {type(value).__name__} {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(container, key, name, f"unknown value {value!r}; choose one of {', '.join(choices)}")
        return value

    def file_path(self, container: Any, key: str | int, name: str) -> Path:
        text = os.path.expanduser(os.path.expandvars(_DEFAULTED_VAR.sub(_default_var, self.string(container, key, name))))
        path = Path(text)
        return path if path.is_absolute() else (self.path.parent / path)


# ----------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------
def _source(f: _Fields, doc: Mapping[str, Any]) -> Source:
    src = f.mapping(doc, "source", "source", ("procedural", "dataset", "files", "video"))
    if len(src) != 1:
        raise f.fail(doc, "source", "source", f"give exactly one of procedural, dataset, files, video; got {list(src)}")
    kind = next(iter(src))
    f.lines[f"source.{kind}"] = line_of(src, kind)
    if kind == "procedural":
        p = f.mapping(src, kind, "source.procedural", ("seed", "time_of_day", "lanes", "traffic", "curves"), ("seed",))
        out: dict[str, Any] = {"seed": int(f.number(p, "seed", "source.procedural.seed", limits.SEED, integer=True))}
        if "time_of_day" in p:
            out["time_of_day"] = f.string(p, "time_of_day", "source.procedural.time_of_day", TIMES_OF_DAY)
        if "lanes" in p:
            out["lanes"] = int(f.number(p, "lanes", "source.procedural.lanes", limits.LANES, integer=True))
        if "traffic" in p:
            out["traffic"] = float(f.number(p, "traffic", "source.procedural.traffic", limits.TRAFFIC))
        if "curves" in p:
            if not isinstance(p["curves"], bool):
                raise f.fail(p, "curves", "source.procedural.curves", f"expected true or false, got {p['curves']!r}")
            out["curves"] = p["curves"]
        return ProceduralSource(**out)
    if kind == "dataset":
        d = f.mapping(src, kind, "source.dataset", ("name", "root", "split", "clip", "options"), ("name", "root"))
        options = dict(f.mapping(d, "options", "source.dataset.options", tuple(d["options"]))) if "options" in d else {}
        return DatasetSource(
            name=f.string(d, "name", "source.dataset.name", tuple(READERS)),
            root=f.file_path(d, "root", "source.dataset.root"),
            split=f.string(d, "split", "source.dataset.split") if "split" in d else "val",
            clip=int(f.number(d, "clip", "source.dataset.clip", limits.CLIP, integer=True)) if "clip" in d else 0,
            options=options)
    if kind == "files":
        items = src[kind]
        if not isinstance(items, list) or not items:
            raise f.fail(src, kind, "source.files", "expected a non-empty list of image paths")
        return FilesSource(tuple(f.file_path(items, i, f"source.files[{i}]") for i in range(len(items))))
    v = src[kind]
    if isinstance(v, str):
        return FilesSource((f.file_path(src, kind, "source.video"),), is_video=True)
    v = f.mapping(src, kind, "source.video", ("path", "start_s"), ("path",))
    start = float(f.number(v, "start_s", "source.video.start_s", limits.VIDEO_START)) if "start_s" in v else 0.0
    return FilesSource((f.file_path(v, "path", "source.video.path"),), is_video=True, start_s=start)


def _actions(f: _Fields, doc: Mapping[str, Any], source: Source) -> tuple[ActionStep, ...] | None:
    value = doc["actions"]
    if isinstance(value, Mapping):
        follow = f.mapping(doc, "actions", "actions", ("follow",), ("follow",))
        f.string(follow, "follow", "actions.follow", ("recorded",))
        if not isinstance(source, DatasetSource):
            raise f.fail(follow, "follow", "actions.follow", "follow: recorded needs a dataset source "
                         "(procedural worlds and plain files have no recorded motion; write a script)")
        return None
    if not isinstance(value, list) or not value:
        raise f.fail(doc, "actions", "actions", "expected a non-empty list of {at, do, speed} entries "
                     "or {follow: recorded}")
    steps: list[ActionStep] = []
    for i in range(len(value)):
        name = f"actions[{i}]"
        entry = f.mapping(value, i, name, ("at", "do", "speed"), ("at", "do"))
        at = float(f.number(entry, "at", f"{name}.at", limits.ACTION_TIME))
        do = f.string(entry, "do", f"{name}.do", MANOEUVRES)
        speed = float(f.number(entry, "speed", f"{name}.speed", limits.SPEED)) if "speed" in entry else None
        if speed is not None and do in TURNS:
            f.within(entry, "speed", f"{name}.speed", speed, limits.TURN_SPEED)
        if i == 0 and at != 0.0:
            raise f.fail(entry, "at", f"{name}.at", "the first action must start at 0.0")
        if i == 0 and speed is None and do not in ("stop", "brake_to_stop"):
            raise f.fail(value, i, f"{name}.speed", "missing: the first action sets the starting speed")
        if steps and at <= steps[-1].at:
            raise f.fail(entry, "at", f"{name}.at", f"times must increase, {at} follows {steps[-1].at}")
        steps.append(ActionStep(at, do, speed))
    return tuple(steps)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one scenario file; every problem raises ScenarioError(file, field, line)."""
    path = Path(path).expanduser().resolve()
    doc = load_marked(path)
    f = _Fields(path)
    if not isinstance(doc, Mapping):
        raise ScenarioError(path, "<top>", getattr(doc, "line", 1), "a scenario is a mapping of fields")
    f.lines.update({str(k): line_of(doc, k) for k in doc})
    holder = {"": doc}
    f.mapping(holder, "", "", ("name", "description", "source", "seed", "horizon_s", "actions"),
              ("source", "actions"))
    source = _source(f, doc)
    return Scenario(
        name=f.string(doc, "name", "name") if "name" in doc else path.stem,
        path=path, source=source, actions=_actions(f, doc, source),
        seed=int(f.number(doc, "seed", "seed", limits.SEED, integer=True)) if "seed" in doc else None,
        horizon_s=float(f.number(doc, "horizon_s", "horizon_s", limits.HORIZON)) if "horizon_s" in doc else 8.0,
        description=f.string(doc, "description", "description") if "description" in doc else "",
        lines=f.lines)


def resolve_scenario(name_or_path: str | Path) -> Path:
    """A scenario file from a path or a library name (`left_turn` -> rollout/left_turn.yaml)."""
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise ScenarioError(candidate, "scenario", None, "no such file")
        return candidate
    library = SCENARIO_DIR / f"{name_or_path}.yaml"
    if not library.is_file():
        known = ", ".join(library_names()) or "(none)"
        raise ScenarioError(library, "scenario", None, f"no scenario named {str(name_or_path)!r}; known: {known}")
    return library


def library_names() -> list[str]:
    """Names of the scenarios shipped in the library folder."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")) if SCENARIO_DIR.is_dir() else []
