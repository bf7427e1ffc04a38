"""Build objects from a stored config (an export, a `.ckpt`, a protocol) through an allow-list of worldmodel's classes.

A config's `_target_` names what to call, and Hydra's `instantiate` calls whatever it names: an export whose
worldmodel.json says `codec: {_target_: os.system, ...}` would run that command on the machine of whoever rolls it
out. Here the whole node is checked first, and anything outside the allow-list refuses it before one object exists.

Hydra's own blocklist (os.system, builtins.exec, ...) does not stop `torch.load(..., weights_only=False)` or
`pathlib.Path.touch`, and an allow-list cannot miss what nobody thought of. The checked tree is then built by the
small builder below, not by Hydra, which would also resolve `${...}` interpolations (environment variables, any
registered resolver) in strings after they were checked; here a string reaches its class as it was stored.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from worldmodel.errors import UserInputError

TARGET = "_target_"
# An argument that takes one built object, or a mapping of name -> built object (MixtureDataset's members).
OBJECT, OBJECTS_BY_NAME = "object", "objects by name"

# Every class (or builder) that conf/ names under model/, codec/, sampler/, data/ and protocol/, spelled as conf/
# spells it, with the arguments that take nested built objects. A `_target_` anywhere else is refused.
ALLOWED_TARGETS: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "worldmodel.model.build_maskgwm": {},
    "worldmodel.codecs.DCTCodec": {},
    "worldmodel.codecs.PixelCodec": {},
    "worldmodel.codecs.DiffusersVAECodec": {},
    "worldmodel.diffusion.FlowEulerSampler": {},
    "worldmodel.experimental.reference_noise.NoisyReferenceSampler": {},
    "worldmodel.training.datamodule.WorldModelDataModule": {"train": OBJECT, "val": OBJECT},
    "worldmodel.data.pool.ClipPool": {"dataset": OBJECT},
    "worldmodel.data.registry.MixtureDataset": {"datasets": OBJECTS_BY_NAME},
    "worldmodel.data.synthetic.SyntheticDriving": {},
    "worldmodel.data.nuscenes.NuScenesClips": {},
    "worldmodel.data.opendv.OpenDVClips": {},
    "worldmodel.data.waymo.WaymoClips": {},
    "worldmodel.data.videos.VideoFolderClips": {},
    "worldmodel.data.cache.LatentCacheClips": {},
})

_PLAIN = (str, int, float, bool, type(None))
_ADVICE = ("nothing was built. Use a checkpoint written by worldmodel-train, or name one of worldmodel's own classes "
           "(the list is worldmodel.safe_build.ALLOWED_TARGETS)")


class UnsafeConfigError(UserInputError, ValueError):
    """A stored config names something other than worldmodel's own classes; it was refused before anything ran."""


def _refuse(where: str, path: str, what: str) -> UnsafeConfigError:
    return UnsafeConfigError(f"{where}{path} {what}; {_ADVICE}")


def _is_instruction(key: str) -> bool:
    """Hydra's `_partial_`, `_args_`, `_recursive_`, `_convert_` and anything spelled like them (`_call_`)."""
    return len(key) > 2 and key.startswith("_") and key.endswith("_") and key != TARGET


def _check(node: Any, path: str, takes_object: bool, where: str) -> None:
    if isinstance(node, Mapping):
        for key in node:
            if not isinstance(key, str):
                raise _refuse(where, path, f"has the key {key!r}, which is not a string")
        slots: Mapping[str, str] = {}
        if TARGET in node:
            target = node[TARGET]
            if not isinstance(target, str) or target not in ALLOWED_TARGETS:
                raise _refuse(where, f"{path}.{TARGET}", f"names {repr(target)[:200]}: only worldmodel's own "
                              "classes are built from a stored config (an export, a .ckpt or a protocol), since any "
                              "other target can run code")
            if not takes_object:
                raise _refuse(where, f"{path}.{TARGET}", f"names {target!r} where worldmodel builds no object (only "
                              "a section itself, a datamodule's train / val, a ClipPool's dataset and a "
                              "MixtureDataset's datasets are built)")
            slots = ALLOWED_TARGETS[target]
        for key, value in node.items():
            if _is_instruction(key):
                raise _refuse(where, f"{path}.{key}", "is a Hydra instruction, not an argument: a stored config may "
                              "only name worldmodel's classes and their arguments")
            if key == TARGET:
                continue
            if slots.get(key) == OBJECTS_BY_NAME and isinstance(value, Mapping):
                for name, member in value.items():
                    _check(member, f"{path}.{key}.{name}", True, where)
            else:
                _check(value, f"{path}.{key}", slots.get(key) == OBJECT, where)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            _check(value, f"{path}[{i}]", False, where)
    elif not isinstance(node, _PLAIN):
        raise _refuse(where, path, f"holds a {type(node).__name__}; a stored config holds only strings, numbers, "
                      "booleans, null, lists and mappings")


def check_stored_config(node: Any, key: str, source: str | Path | None = None) -> None:
    """Walk all of `node` (the config stored under `key`, e.g. "codec") and raise UnsafeConfigError naming the key
    path of the first thing outside the allow-list; nothing is imported or built."""
    _check(node, key, True, "" if source is None else f"{source}: ")


def _resolve(target: str) -> Any:
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def stored_class(node: Mapping[str, Any], key: str, source: str | Path | None = None) -> Any:
    """The class (or builder) `node[_target_]` names, once all of `node` has passed `check_stored_config`."""
    check_stored_config(node, key, source)
    if TARGET not in node:
        raise _refuse("" if source is None else f"{source}: ", key, "names no class to build (no _target_)")
    return _resolve(node[TARGET])


def _build(node: Any) -> Any:
    # Only ever called on a checked tree, so every `_target_` met here is on the allow-list and in its place.
    if isinstance(node, Mapping):
        arguments = {k: _build(v) for k, v in node.items() if k != TARGET}
        return _resolve(node[TARGET])(**arguments) if TARGET in node else arguments
    if isinstance(node, (list, tuple)):
        return [_build(v) for v in node]
    return node


def build_stored_config(node: Any, key: str, source: str | Path | None = None) -> Any:
    """What `node` describes, built bottom-up with plain dicts and lists as arguments (Hydra's `_convert_="all"`),
    after `check_stored_config` has passed all of it; UnsafeConfigError otherwise, before anything is built."""
    check_stored_config(node, key, source)
    return _build(node)
