"""Visualisation: video files, tensor/uint8 conversion, camera mosaics and comparison layouts."""

from worldmodel.viz.layout import camera_mosaic, contact_sheet, side_by_side
from worldmodel.viz.tensors import from_uint8, to_uint8
from worldmodel.viz.video import read_video, save_png, write_video

__all__ = [
    "camera_mosaic",
    "contact_sheet",
    "from_uint8",
    "read_video",
    "save_png",
    "side_by_side",
    "to_uint8",
    "write_video",
]
