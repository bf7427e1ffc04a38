"""Shared fixtures of the evaluation tests: real procedural-world frames, loaded once per session."""
import numpy as np
import pytest

from worldmodel.data.synthetic import SyntheticDriving


@pytest.fixture(scope="session")
def world_clips() -> np.ndarray:
    """uint8 (8, 10, 72, 128, 3): eight 10-frame front-camera clips of the procedural world."""
    ds = SyntheticDriving(num_clips=8, num_frames=10, size=(72, 128), split="val", seed=3)
    return np.stack([ds[i]["frames"][:, 0] for i in range(len(ds))])
