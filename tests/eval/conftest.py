"""Shared fixtures of the evaluation tests: real procedural-world frames, loaded once per session."""
import numpy as np
import pytest

from worldmodel.data.synthetic import SyntheticDriving


@pytest.fixture(scope="session")
def world_clips() -> np.ndarray:
    """uint8 (8, 10, 72, 128, 3): eight 10-frame front-camera clips of the procedural world."""
    ds = SyntheticDriving(num_clips=8, num_frames=10, size=(72, 128), split="val", seed=3)
    return np.stack([ds[i]["frames"][:, 0] for i in range(len(ds))])


@pytest.fixture(scope="session")
def tiny_eval_export(tmp_path_factory):
    """A randomly initialised front-camera tiny export: 32x64 frames, 8-frame chunks at 10 Hz, one sampler step."""
    from benchmarks.bench_rollout_memory import random_export

    return random_export(tmp_path_factory.mktemp("tiny_eval"), size=(32, 64), num_frames=8, num_steps=1)
