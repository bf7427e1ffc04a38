"""The nuScenes reader: clips of key frames and sweeps at the target fps, with actions from ego poses and CAN bus."""
from worldmodel.data.nuscenes.canbus import CanBus, CanSignals
from worldmodel.data.nuscenes.reader import DEFAULT_SYNC_TOLERANCE_S, NuScenesClips
from worldmodel.data.nuscenes.scenes import CAMERAS, FRONT, resolve_cameras

__all__ = ["CAMERAS", "DEFAULT_SYNC_TOLERANCE_S", "FRONT", "CanBus", "CanSignals", "NuScenesClips", "resolve_cameras"]
