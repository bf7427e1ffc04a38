"""Image layouts for videos: camera mosaics, labelled side-by-side panels, contact sheets."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = 0  # separators and label strips are black
TEXT_COLOUR = (255, 255, 255)
PADDING = 3  # pixels around label text

# nuScenes rig as the devkit renders it: front row left to right, back row below it.
NUSCENES_GRID = (("FRONT_LEFT", "FRONT", "FRONT_RIGHT"), ("BACK_LEFT", "BACK", "BACK_RIGHT"))
# Waymo's five cameras read left to right around the car's front.
WAYMO_ROW = ("SIDE_LEFT", "FRONT_LEFT", "FRONT", "FRONT_RIGHT", "SIDE_RIGHT")


# ----------------------------------------------------------------------
# Text strips
# ----------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def strip_height() -> int:
    """Height in pixels of one text strip with the default font."""
    left, top, right, bottom = _font().getbbox("Ag0")
    return int(bottom) + 2 * PADDING


def text_strip(text: str, width: int, align: str = "left") -> np.ndarray:
    """Render `text` (left, center or right) on a black strip -> uint8 (strip_height(), width, 3)."""
    image = Image.new("RGB", (max(int(width), 1), strip_height()), (BACKGROUND,) * 3)
    draw = ImageDraw.Draw(image)
    free = width - draw.textlength(text, font=_font())
    offsets = {"left": PADDING, "center": free / 2, "right": free - PADDING}
    if align not in offsets:
        raise ValueError(f"align must be one of {sorted(offsets)}, got {align!r}")
    x = max(PADDING, offsets[align])
    draw.text((x, PADDING), text, fill=TEXT_COLOUR, font=_font())
    return np.asarray(image, dtype=np.uint8)


def text_width(text: str) -> int:
    """Width in pixels of `text` in the default font, with padding on both sides."""
    return int(np.ceil(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(text, font=_font()))) + 2 * PADDING


# ----------------------------------------------------------------------
# Grids
# ----------------------------------------------------------------------
def _check_video(video: np.ndarray, name: str) -> np.ndarray:
    video = np.asarray(video)
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"{name} must be uint8 (t, h, w, 3), got {video.dtype} {video.shape}")
    return video


def _grid(cells: list[list[np.ndarray | None]], gap: int) -> np.ndarray:
    """Tile videos (t, h, w, 3) into a grid -> (t, R*h + (R-1)*gap, C*w + (C-1)*gap, 3).

    Every cell takes the largest h and w; smaller videos sit top-left, None leaves a blank cell.
    """
    videos = [c for row in cells for c in row if c is not None]
    t = videos[0].shape[0]
    if any(v.shape[0] != t for v in videos):
        raise ValueError(f"all videos in a layout need the same frame count, got {[v.shape[0] for v in videos]}")
    h = max(v.shape[1] for v in videos)
    w = max(v.shape[2] for v in videos)
    rows, cols = len(cells), max(len(row) for row in cells)
    out = np.full((t, rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), BACKGROUND, np.uint8)
    for r, row in enumerate(cells):
        for c, video in enumerate(row):
            if video is not None:
                y, x = r * (h + gap), c * (w + gap)
                out[:, y : y + video.shape[1], x : x + video.shape[2]] = video
    return out


def _camera_key(name: str) -> str:
    name = name.upper()
    return name[4:] if name.startswith("CAM_") else name


def camera_mosaic(
    frames: np.ndarray, cameras: Sequence[str], gap: int = 2, flip_back: bool = True
) -> np.ndarray:
    """Arrange multi-view frames (t, v, h, w, 3) into one video (t, H, W, 3).

    The six nuScenes cameras (names with or without `CAM_`) form the devkit's 2x3 rig grid:
    FRONT_LEFT FRONT FRONT_RIGHT over BACK_LEFT BACK BACK_RIGHT. The data order is FRONT_LEFT,
    FRONT, FRONT_RIGHT, BACK_RIGHT, BACK, BACK_LEFT, so the bottom row is the reverse of it; with
    `flip_back` the back images are mirrored left-right as the devkit does, so the bottom row reads
    like a rear-view mirror. One view returns the frames themselves; Waymo's five cameras form a
    row from SIDE_LEFT to SIDE_RIGHT; any other set is a single row in the given order.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 5 or frames.shape[-1] != 3:
        raise ValueError(f"camera_mosaic expects uint8 (t, v, h, w, 3), got {frames.dtype} {frames.shape}")
    if len(cameras) != frames.shape[1]:
        raise ValueError(f"{frames.shape[1]} views but {len(cameras)} camera names: {list(cameras)}")
    if frames.shape[1] == 1:
        return frames[:, 0]
    keys = [_camera_key(c) for c in cameras]
    view = {k: frames[:, i] for i, k in enumerate(keys)}
    if sorted(keys) == sorted(NUSCENES_GRID[0] + NUSCENES_GRID[1]):
        back = [view[k][:, :, ::-1] if flip_back else view[k] for k in NUSCENES_GRID[1]]
        return _grid([[view[k] for k in NUSCENES_GRID[0]], back], gap)
    if sorted(keys) == sorted(WAYMO_ROW):
        return _grid([[view[k] for k in WAYMO_ROW]], gap)
    return _grid([[frames[:, i] for i in range(frames.shape[1])]], gap)


def side_by_side(
    panels: Sequence[np.ndarray],
    labels: Sequence[str],
    gap: int = 4,
    counter: bool = False,
    fps: float | None = None,
) -> np.ndarray:
    """Place videos (t, h, w, 3) next to each other with a label strip above each -> (t, H, W, 3).

    With `counter`, a strip below shows "frame i/t" and, when `fps` is given, the time in seconds.
    """
    if len(panels) != len(labels) or not panels:
        raise ValueError(f"side_by_side needs one label per panel, got {len(panels)} panels, {len(labels)} labels")
    panels = [_check_video(p, f"panel {i}") for i, p in enumerate(panels)]
    body = _grid([list(panels)], gap)  # (t, h, W, 3)
    t, _, width, _ = body.shape
    # Labels do not change over time: render them once and broadcast over frames.
    widths = [p.shape[2] for p in panels]
    cell = max(widths)
    header = np.full((strip_height(), width, 3), BACKGROUND, np.uint8)
    for i, label in enumerate(labels):
        x = i * (cell + gap)
        header[:, x : x + widths[i]] = text_strip(label, widths[i])
    parts = [np.broadcast_to(header, (t, *header.shape)), body]
    if counter:
        footer = np.stack([text_strip(_stamp(i, t, fps), width) for i in range(t)])
        parts.append(footer)
    return np.concatenate(parts, axis=1)


def _stamp(index: int, total: int, fps: float | None) -> str:
    text = f"frame {index + 1}/{total}"
    return f"{text}  t={index / fps:.2f} s" if fps else text


def contact_sheet(
    rows: Sequence[np.ndarray],
    row_labels: Sequence[str],
    every: int = 1,
    max_columns: int = 12,
    gap: int = 4,
) -> np.ndarray:
    """Grid image, one row per video (t, h, w, 3), columns frames 0, every, 2*every, ... -> (H, W, 3).

    Frame indices head the columns and `row_labels` sit in a column on the left; shorter videos
    leave blank cells. At most `max_columns` columns are shown.
    """
    if len(rows) != len(row_labels) or not rows:
        raise ValueError(f"contact_sheet needs one label per row, got {len(rows)} rows, {len(row_labels)} labels")
    if every < 1 or max_columns < 1:
        raise ValueError(f"every and max_columns must be >= 1, got {every} and {max_columns}")
    rows = [_check_video(r, f"row {i}") for i, r in enumerate(rows)]
    indices = list(range(0, max(r.shape[0] for r in rows), every))[:max_columns]
    cells = [[r[i][None] if i < r.shape[0] else None for i in indices] for r in rows]
    grid = _grid(cells, gap)[0]  # (R*h + ..., C*w + ..., 3)
    h = max(r.shape[1] for r in rows)
    w = max(r.shape[2] for r in rows)
    label_w = max(text_width(label) for label in row_labels)
    sheet = np.full((strip_height() + gap + grid.shape[0], label_w + gap + grid.shape[1], 3), BACKGROUND, np.uint8)
    y0, x0 = strip_height() + gap, label_w + gap
    sheet[y0:, x0:] = grid
    for c, index in enumerate(indices):
        x = x0 + c * (w + gap)
        sheet[: strip_height(), x : x + w] = text_strip(str(index), w, align="center")
    for r, label in enumerate(row_labels):
        y = y0 + r * (h + gap) + max(0, (h - strip_height()) // 2)
        strip = text_strip(label, label_w)[: sheet.shape[0] - y]
        sheet[y : y + strip.shape[0], :label_w] = strip
    return sheet
