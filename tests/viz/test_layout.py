"""Tests for worldmodel.viz.layout: mosaic cells, side-by-side and contact-sheet placement."""

import numpy as np
import pytest

from worldmodel.viz import camera_mosaic, contact_sheet, side_by_side
from worldmodel.viz.layout import strip_height

NUSCENES = ["CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK", "CAM_BACK_LEFT"]


def constant_views(t: int, v: int, h: int, w: int) -> np.ndarray:
    """View i is filled with the value 20 * (i + 1)."""
    values = (20 * (np.arange(v) + 1)).astype(np.uint8)
    return np.broadcast_to(values[None, :, None, None, None], (t, v, h, w, 3)).copy()


@pytest.mark.parametrize("prefix", ["CAM_", ""])
def test_nuscenes_mosaic_rig_layout(prefix):
    h, w, gap = 6, 8, 2
    frames = constant_views(3, 6, h, w)
    cameras = [name.replace("CAM_", prefix) for name in NUSCENES]
    mosaic = camera_mosaic(frames, cameras, gap=gap)
    assert mosaic.shape == (3, 2 * h + gap, 3 * w + 2 * gap, 3)
    expected = [["CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT"], ["CAM_BACK_LEFT", "CAM_BACK", "CAM_BACK_RIGHT"]]
    for r, row in enumerate(expected):
        for c, name in enumerate(row):
            cell = mosaic[:, r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w]
            assert (cell == 20 * (NUSCENES.index(name) + 1)).all(), name
    assert (mosaic[:, h : h + gap] == 0).all()  # separator row


def test_back_row_is_mirrored():
    frames = np.zeros((1, 6, 4, 6, 3), np.uint8)
    frames[:, 4, :, 0] = 255  # left column of CAM_BACK
    mosaic = camera_mosaic(frames, NUSCENES, gap=0)
    assert (mosaic[0, 4:, 6 + 5] == 255).all() and (mosaic[0, 4:, 6] == 0).all()
    plain = camera_mosaic(frames, NUSCENES, gap=0, flip_back=False)
    assert (plain[0, 4:, 6] == 255).all()


def test_single_view_and_row():
    frames = constant_views(2, 1, 5, 7)
    assert np.array_equal(camera_mosaic(frames, ["FRONT"]), frames[:, 0])
    row = camera_mosaic(constant_views(2, 3, 5, 7), ["a", "b", "c"], gap=1)
    assert row.shape == (2, 5, 23, 3)
    assert (row[:, :, 8:15] == 40).all() and (row[:, :, 7] == 0).all()
    with pytest.raises(ValueError, match="camera names"):
        camera_mosaic(frames, ["FRONT", "BACK"])


def test_side_by_side_places_panels_under_labels():
    t, h, w, gap = 4, 10, 48, 2
    a = np.full((t, h, w, 3), 100, np.uint8)
    b = np.full((t, h, w, 3), 200, np.uint8)
    out = side_by_side([a, b], ["generated", "ground truth"], gap=gap)
    s = strip_height()
    assert out.shape == (t, s + h, 2 * w + gap, 3)
    assert (out[:, s:, :w] == 100).all() and (out[:, s:, w + gap :] == 200).all()
    assert out[:, :s].max() > 128  # label text drawn in white
    assert np.array_equal(out[0, :s], out[-1, :s])  # labels constant over time

    stamped = side_by_side([a, b], ["g", "t"], gap=gap, counter=True, fps=10)
    assert stamped.shape == (t, 2 * s + h, 2 * w + gap, 3)
    assert (stamped[:, s : s + h, :w] == 100).all()
    assert not np.array_equal(stamped[0, s + h :], stamped[1, s + h :])  # counter changes


def test_contact_sheet_cells():
    h, w, gap = 8, 10, 2
    t = 7
    generated = np.broadcast_to((np.arange(t, dtype=np.uint8) * 10 + 50)[:, None, None, None], (t, h, w, 3))
    truth = np.full((t, h, w, 3), 250, np.uint8)
    sheet = contact_sheet([generated, truth], ["generated", "truth"], every=2, max_columns=3, gap=gap)
    assert sheet.dtype == np.uint8 and sheet.ndim == 3
    columns = [0, 2, 4]  # every 2nd frame, capped at 3 columns
    height, width = sheet.shape[:2]
    assert height == strip_height() + gap + 2 * h + gap
    for r, video in enumerate([generated, truth]):
        y = height - (2 - r) * h - (1 - r) * gap
        for c, index in enumerate(columns):
            x = width - (3 - c) * w - (2 - c) * gap
            assert (sheet[y : y + h, x : x + w] == video[index]).all(), (r, c)
    assert sheet[: strip_height()].max() > 128  # column headers drawn
    with pytest.raises(ValueError, match="one label per row"):
        contact_sheet([truth], ["a", "b"])
