"""Randomly initialised tiny exports (single view and six cameras) for end-to-end rollout tests."""
from __future__ import annotations

import pytest

from benchmarks.bench_rollout_memory import random_export


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """A front-camera tiny model export: 32x64 frames, 8-frame chunks at 10 Hz, one sampler step."""
    return random_export(tmp_path_factory.mktemp("tiny"), size=(32, 64), num_frames=8, num_steps=1)


@pytest.fixture(scope="session")
def mview_export(tmp_path_factory):
    """A six-camera tiny model export (conf/model/tiny_mview.yaml) on the procedural rig6 cameras."""
    return random_export(tmp_path_factory.mktemp("mview"), model="tiny_mview", views="rig6", size=(32, 64),
                         num_frames=4, num_steps=1)
