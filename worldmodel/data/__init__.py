"""Clip readers (synthetic, nuScenes, Waymo, OpenDV, video folders), clip sampling, actions and the latent cache."""
from worldmodel.data.registry import MixtureDataset, open_dataset

__all__ = ["MixtureDataset", "open_dataset"]
