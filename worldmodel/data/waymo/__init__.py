"""Waymo Open Dataset reader (v1 TFRecord segments and v2 parquet components), no TensorFlow needed."""
from worldmodel.data.waymo.reader import WaymoClips

__all__ = ["WaymoClips"]
