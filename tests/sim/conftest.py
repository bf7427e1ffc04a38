"""A randomly initialised tiny export (32x64, 8-frame chunks at 10 Hz, one sampler step) and envs on it."""
from __future__ import annotations

import pytest

from benchmarks.bench_rollout_memory import random_export


@pytest.fixture(scope="session")
def sim_export(tmp_path_factory):
    return random_export(tmp_path_factory.mktemp("sim_tiny"), size=(32, 64), num_frames=8, num_steps=1)


@pytest.fixture(scope="session")
def loaded(sim_export):
    from worldmodel.checkpoint import load_world_model

    return load_world_model(sim_export, device="cpu")


@pytest.fixture
def make_env(loaded):
    from worldmodel.sim import WorldModelEnv

    def make(**kwargs):
        return WorldModelEnv(loaded, **{"horizon_s": 2.0, **kwargs})

    return make
