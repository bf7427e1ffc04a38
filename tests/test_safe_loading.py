"""Nothing in a checkpoint, export, protocol or state file runs code: crafted files are refused before they act.

Every crafted payload here is shown to be live (it creates its canary file when loaded the old way: Hydra's
`instantiate`, `torch.load(weights_only=False)`), so a guard that let it through would fail the test.
"""
from __future__ import annotations

import copy
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from worldmodel.checkpoint import CheckpointError, LoadedWorldModel, load_world_model
from worldmodel.config import CONF_DIR, compose_config
from worldmodel.errors import UserInputError
from worldmodel.rollout.run import held_out_dataset
from worldmodel.safe_build import ALLOWED_TARGETS, UnsafeConfigError, build_stored_config, check_stored_config

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------- payloads
class _TouchOnUnpickle:
    """Pickles to a call of `Path.touch(canary)`: unpickling it with a full unpickler creates the canary."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (pathlib.Path.touch, (pathlib.Path(self.canary),))


def touch_chain(canary: Path) -> dict[str, Any]:
    """A `_target_` chain that Hydra runs as `pathlib.Path.touch(pathlib.Path(canary))`."""
    return {"_target_": "pathlib.Path.touch", "_args_": [{"_target_": "pathlib.Path", "_args_": [str(canary)]}]}


def torch_load_chain(canary: Path, folder: Path) -> dict[str, Any]:
    """A `_target_` that Hydra runs as `torch.load(<pickle beside the export>, weights_only=False)`."""
    payload = folder / "payload.pt"
    torch.save({"weights": _TouchOnUnpickle(canary)}, payload)
    return {"_target_": "torch.load", "f": str(payload), "weights_only": False}


def assert_live(node: dict[str, Any], canary: Path) -> None:
    """The payload does what it is crafted to do when Hydra builds it (so the refusal is what kept it inert)."""
    assert not canary.exists()
    instantiate(node)
    assert canary.exists(), "the crafted payload is inert: this test would prove nothing"
    canary.unlink()


# ---------------------------------------------------------------------------------------------- exports
@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory) -> Path:
    """A randomly initialised conf/model/tiny.yaml network written by `save_export` (nothing trained)."""
    from benchmarks.bench_rollout_memory import random_export

    return random_export(tmp_path_factory.mktemp("safe_export"), size=(32, 64), num_frames=8, num_steps=1)


def crafted_export(tiny_export: Path, folder: Path, key: str, node: dict[str, Any]) -> Path:
    """A copy of the real export whose worldmodel.json has `node` under the dotted `key` (e.g. "data.val")."""
    export = folder / "export"
    shutil.copytree(tiny_export, export)
    info = json.loads((export / "worldmodel.json").read_text())
    *parents, last = key.split(".")
    section = info["config"]
    for name in parents:
        section = section[name]
    section[last] = node
    (export / "worldmodel.json").write_text(json.dumps(info))
    return export


def test_the_real_export_and_its_held_out_reader_still_load(tiny_export: Path) -> None:
    loaded = load_world_model(tiny_export)
    assert type(loaded.model).__name__ == "MaskGWM" and loaded.sampler.num_steps == 1
    dataset = held_out_dataset(loaded, "val", num_frames=4, needed=3)
    assert len(dataset) == 3 and np.asarray(dataset[0]["frames"]).shape[0] == 4


@pytest.mark.parametrize("section", ["codec", "sampler"])
@pytest.mark.parametrize("payload", ["touch", "torch_load"])
def test_a_crafted_codec_or_sampler_in_an_export_is_refused(tiny_export: Path, tmp_path: Path, section: str,
                                                            payload: str) -> None:
    canary = tmp_path / "CANARY"
    node = touch_chain(canary) if payload == "touch" else torch_load_chain(canary, tmp_path)
    export = crafted_export(tiny_export, tmp_path, section, node)
    with pytest.raises(UnsafeConfigError) as caught:
        load_world_model(export)
    message = str(caught.value)
    assert f"{section}._target_ names '{node['_target_']}'" in message
    assert str(export) in message and "only worldmodel's own classes" in message and "\n" not in message
    assert isinstance(caught.value, UserInputError) and isinstance(caught.value, ValueError)
    assert not canary.exists()
    assert_live(node, canary)


def test_a_crafted_held_out_reader_is_refused(tiny_export: Path, tmp_path: Path) -> None:
    canary = tmp_path / "CANARY"
    export = crafted_export(tiny_export, tmp_path, "data.val", touch_chain(canary))
    loaded = load_world_model(export)  # scenario rollouts never build data.val
    with pytest.raises(UnsafeConfigError, match=r"data\.val\._target_ names 'pathlib\.Path\.touch'"):
        held_out_dataset(loaded, "val", num_frames=4, needed=2)
    assert not canary.exists()
    assert_live(touch_chain(canary), canary)


def test_a_payload_nested_in_an_allowed_reader_is_refused_before_the_reader_is_built(tiny_export: Path,
                                                                                     tmp_path: Path) -> None:
    canary = tmp_path / "CANARY"
    pool = {"_target_": "worldmodel.data.pool.ClipPool", "num_clips": 2, "dataset": touch_chain(canary)}
    loaded = load_world_model(crafted_export(tiny_export, tmp_path, "data.val", pool))
    with pytest.raises(UnsafeConfigError, match=r"data\.val\.dataset\._target_ names 'pathlib\.Path\.touch'"):
        held_out_dataset(loaded, "val", num_frames=4)
    assert not canary.exists()


def test_the_rollout_command_refuses_a_crafted_export(tiny_export: Path, tmp_path: Path) -> None:
    canary = tmp_path / "CANARY"
    export = crafted_export(tiny_export, tmp_path, "codec", touch_chain(canary))
    command = [str(Path(sys.executable).with_name("worldmodel-rollout")), f"checkpoint={export}",
               f"run_dir={tmp_path / 'out'}", "device=cpu", "progress=false"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode != 0
    assert "codec._target_ names 'pathlib.Path.touch'" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr, "a refused export is a user error: one line, no traceback"
    assert not canary.exists()


# ---------------------------------------------------------------------------------------------- .ckpt files
def _lightning_file(path: Path, config: dict[str, Any], state: dict[str, torch.Tensor]) -> Path:
    """What worldmodel-train's checkpoints hold for loading: the run config and the module's weights."""
    from worldmodel.training.module import CHECKPOINT_FORMAT, CHECKPOINT_KEY

    torch.save({CHECKPOINT_KEY: {"format": CHECKPOINT_FORMAT, "config": config}, "state_dict": state,
                "global_step": 5}, path)
    return path


def test_a_real_ckpt_layout_still_loads(tiny_export: Path, tmp_path: Path) -> None:
    loaded = load_world_model(tiny_export)
    state = {f"model.{k}": v for k, v in loaded.model.state_dict().items()}
    again = load_world_model(_lightning_file(tmp_path / "last.ckpt", loaded.config, state))
    assert again.step == 5
    for name, value in loaded.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[name], value)


@pytest.mark.parametrize("section", ["model", "codec", "sampler"])
def test_a_crafted_ckpt_is_refused(tiny_export: Path, tmp_path: Path, section: str) -> None:
    canary = tmp_path / "CANARY"
    config = copy.deepcopy(load_world_model(tiny_export).config)
    config[section] = torch_load_chain(canary, tmp_path)
    path = _lightning_file(tmp_path / "crafted.ckpt", config, {})
    with pytest.raises(UnsafeConfigError, match=rf"crafted\.ckpt: {section}\._target_ names 'torch\.load'"):
        load_world_model(path)
    assert not canary.exists()
    assert_live(config[section], canary)


# ---------------------------------------------------------------------------------------------- the allow-list
def _shipped_targets(groups: tuple[str, ...]) -> set[str]:
    found = set()
    for group in groups:
        for path in (CONF_DIR / group).glob("*.yaml"):
            found |= set(re.findall(r"_target_:\s*([\w.]+)", path.read_text()))
    return found


def test_every_shipped_target_of_the_built_sections_is_allowed() -> None:
    shipped = _shipped_targets(("model", "codec", "sampler", "data", "protocol"))
    assert len(shipped) >= 10  # the scan found the files
    assert shipped <= set(ALLOWED_TARGETS), f"not on the allow-list: {sorted(shipped - set(ALLOWED_TARGETS))}"


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def test_every_composed_shipped_config_passes_whole() -> None:
    """Placement too: the trees a real run stores (experiments, every option of every group) are accepted."""
    runs = [[f"experiment={e}"] for e in _options("experiment")]
    runs += [[f"{g}={o}"] for g in ("model", "codec", "data") for o in _options(g)]
    for overrides in runs:
        cfg = OmegaConf.to_container(compose_config("train", overrides), resolve=True)
        for section in ("model", "codec", "sampler", "data"):
            check_stored_config(cfg[section], section)
    for protocol in _options("protocol"):
        cfg = OmegaConf.to_container(compose_config("eval", [f"protocol={protocol}", "checkpoint=x"]), resolve=True)
        if cfg["protocol"]["dataset"] is not None:
            check_stored_config(cfg["protocol"]["dataset"], "protocol.dataset")


@pytest.mark.parametrize("target", ["lightning.pytorch.Trainer", "torch.load", "builtins.eval", "os.system",
                                    "worldmodel.codecs.dct.DCTCodec", "worldmodel.codecs.DCTCodec.__init__"])
def test_a_target_off_the_list_is_refused(target: str) -> None:
    with pytest.raises(UnsafeConfigError, match=rf"codec\._target_ names '{re.escape(target)}'"):
        check_stored_config({"_target_": target}, "codec")


@pytest.mark.parametrize("node, where", [
    ({"_target_": "worldmodel.codecs.DCTCodec", "_partial_": True}, r"codec\._partial_ is a Hydra instruction"),
    ({"_target_": "worldmodel.codecs.DCTCodec", "_call_": "x"}, r"codec\._call_ is a Hydra instruction"),
    ({"_target_": "worldmodel.codecs.DCTCodec", "_args_": [4]}, r"codec\._args_ is a Hydra instruction"),
    ({"_target_": "worldmodel.codecs.DCTCodec", "config": {"_recursive_": False}},
     r"codec\.config\._recursive_ is a Hydra instruction"),
    ({"_target_": "worldmodel.codecs.DCTCodec", "scale": {"_target_": "worldmodel.codecs.PixelCodec"}},
     r"codec\.scale\._target_ names 'worldmodel\.codecs\.PixelCodec' where worldmodel builds no object"),
    ({"_target_": "worldmodel.codecs.DCTCodec", "luma": [{"_target_": "worldmodel.codecs.PixelCodec"}]},
     r"codec\.luma\[0\]\._target_ names .* where worldmodel builds no object"),
    ({"_target_": ["worldmodel.codecs.DCTCodec"]}, r"codec\._target_ names \['worldmodel"),
    ({"_target_": "worldmodel.codecs.DCTCodec", "block": b"4"}, r"codec\.block holds a bytes"),
])
def test_hydra_instructions_and_misplaced_targets_are_refused(node: dict[str, Any], where: str) -> None:
    with pytest.raises(UnsafeConfigError, match=where):
        build_stored_config(node, "codec")


def test_checked_configs_are_built_with_their_nested_readers() -> None:
    pool = build_stored_config({
        "_target_": "worldmodel.data.pool.ClipPool", "num_clips": 2, "workers": 0, "progress": False,
        "dataset": {"_target_": "worldmodel.data.synthetic.SyntheticDriving", "num_clips": 3, "num_frames": 2,
                    "size": [16, 32], "split": "val"}}, "data.val")
    assert type(pool).__name__ == "ClipPool" and type(pool.dataset).__name__ == "SyntheticDriving"
    # Strings reach the class as stored: no `${...}` is resolved after the check.
    sampler = build_stored_config({"_target_": "worldmodel.diffusion.FlowEulerSampler", "num_steps": 2}, "sampler")
    assert sampler.num_steps == 2
    # Nested plain mappings arrive as dicts (the tiny VAE's diffusers config), as Hydra's _convert_="all" gave them.
    vae = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "codec" / "tiny_vae.yaml"))
    assert build_stored_config(vae, "codec").latent_channels == 4


# ---------------------------------------------------------------------------------------------- export files
def test_an_export_of_another_model_class_is_refused(tiny_export: Path, tmp_path: Path) -> None:
    from diffusers import AutoencoderKL

    export = tmp_path / "export"
    shutil.copytree(tiny_export, export)
    shutil.rmtree(export / "model")
    vae = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "codec" / "tiny_vae.yaml").config)
    AutoencoderKL(**vae).save_pretrained(export / "model")
    with pytest.raises(CheckpointError) as caught:
        load_world_model(export)
    message = str(caught.value)
    assert message.startswith(f"{export / 'model' / 'config.json'} has _class_name 'AutoencoderKL', not 'MaskGWM'")
    assert "\n" not in message and isinstance(caught.value, UserInputError)


@pytest.mark.parametrize("keep", [0.5, 20])
def test_truncated_export_weights_are_refused_in_one_line(tiny_export: Path, tmp_path: Path, keep: float) -> None:
    export = tmp_path / "export"
    shutil.copytree(tiny_export, export)
    weights = export / "model" / "diffusion_pytorch_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:int(len(data) * keep)] if keep < 1 else data[:int(keep)])
    with pytest.raises(CheckpointError) as caught:
        load_world_model(export)
    message = str(caught.value)
    assert message.startswith(f"{weights} is missing or damaged (") and "re-export" in message
    assert "\n" not in message


# ---------------------------------------------------------------------------------------------- eval state
def test_a_crafted_eval_state_is_refused_without_running(tmp_path: Path) -> None:
    from worldmodel.eval.accumulate import EvalAccumulator
    from worldmodel.eval.state import EvalState, EvalStateError

    canary, path = tmp_path / "CANARY", tmp_path / "eval_state.pt"
    torch.save({"fingerprint": "f", "accumulator": {"done": [_TouchOnUnpickle(canary)]}}, path)
    accumulator = EvalAccumulator(["psnr"], [], [("all", 1, 3)], 1, 10.0)
    with pytest.raises(EvalStateError) as caught:
        EvalState(path, "f").restore(accumulator)
    message = str(caught.value)
    assert message.startswith(f"{path} is not a state written by worldmodel-eval") and "GLOBAL" in message
    assert message.endswith("delete it or pick a new run_dir") and "\n" not in message
    assert isinstance(caught.value, UserInputError) and not canary.exists()
    torch.load(path, weights_only=False)  # the old way: the payload runs
    assert canary.exists()


def test_a_real_eval_state_round_trips(tmp_path: Path) -> None:
    from worldmodel.data.synthetic import SyntheticDriving
    from worldmodel.eval.accumulate import EvalAccumulator
    from worldmodel.eval.features import InceptionFeatures
    from worldmodel.eval.state import EvalState

    world = SyntheticDriving(num_clips=4, num_frames=4, size=(32, 64), split="val", seed=3)
    clips = [np.asarray(world[i]["frames"]) for i in range(4)]  # (4, 1, 32, 64, 3) each
    inception = InceptionFeatures()

    def new() -> EvalAccumulator:
        return EvalAccumulator(["fid", "psnr", "ssim"], ["copy_last_frame"], [("all", 2, 4)], 2, 10.0,
                               inception=inception)

    saved = new()
    for i in range(2):
        saved.add_video(i, f"clip{i}", clips[i + 2], clips[i])
    saved.videos[0]["extra"] = np.float64(1.5)  # a numpy value in a record is stored as a number
    state = EvalState(tmp_path / "eval_state.pt", "f")
    state.save(saved)
    restored = new()
    assert state.restore(restored) == 2
    assert restored.done == {0, 1} and restored.videos == saved.videos
    for name, stats in saved.fid.items():
        assert torch.equal(restored.fid[name].total, stats.total) and restored.fid[name].count == stats.count


# ---------------------------------------------------------------------------------------------- training resume
def test_the_resume_loader_is_weights_only_whatever_it_is_asked(tmp_path: Path) -> None:
    from worldmodel.training.checkpoint_io import AtomicCheckpointIO

    canary, path = tmp_path / "CANARY", tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}, "global_step": 3}, path)
    assert io.load_checkpoint(path)["global_step"] == 3
    torch.save({"state_dict": {}, "global_step": 3, "callbacks": _TouchOnUnpickle(canary)}, path)
    with pytest.raises(Exception, match="GLOBAL"):
        io.load_checkpoint(path, weights_only=False)
    assert not canary.exists()


# ---------------------------------------------------------------------------------------------- TorchScript
class _SmallNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_a_users_torchscript_is_named_as_code_when_refused(tmp_path: Path) -> None:
    from worldmodel.eval.features import is_torchscript, load_inception
    from worldmodel.eval.weights import INCEPTION_WEIGHTS, WeightsError, resolve_weights

    torch.jit.script(_SmallNet()).save(str(tmp_path / "mine.pt"))
    with pytest.raises(WeightsError, match=r"mine\.pt: tensor net\.layers\.conv\.weight is missing.*"
                                           r"TorchScript is code, not just weights: it is loaded only because "
                                           r"you named it with inception_weights="):
        load_inception(tmp_path / "mine.pt")
    # A state dict is never handed to torch.jit.load; the packaged default is TorchScript.
    torch.save({"w": torch.zeros(1)}, tmp_path / "state.pth")
    assert not is_torchscript(tmp_path / "state.pth") and is_torchscript(tmp_path / "mine.pt")
    assert is_torchscript(resolve_weights(None, INCEPTION_WEIGHTS))
