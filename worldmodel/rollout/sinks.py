"""Where a rollout's frames go as they are decoded: mp4 writers, contact-sheet frames and PSNR.

Each video file is written by `write_video` in its own thread, fed through a small bounded
queue, so several files fill at once from one pass over the frames and no video is held whole.
"""
from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from worldmodel.eval.psnr import psnr
from worldmodel.viz import camera_mosaic, contact_sheet, save_png, side_by_side, write_video

_END = object()
SHEET_COLUMNS = 12


class VideoSink:
    """An mp4 file that frames are pushed into; `write_video` drains them in a background thread."""

    def __init__(self, path: Path, fps: float, buffer: int = 8) -> None:
        self.path = path
        self._queue: queue.Queue = queue.Queue(maxsize=buffer)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fps,), name=f"video:{path.name}", daemon=True)
        self._thread.start()

    def _frames(self) -> Iterator[np.ndarray]:
        while (item := self._queue.get()) is not _END:
            yield item

    def _run(self, fps: float) -> None:
        try:
            write_video(self.path, self._frames(), fps=fps)
        except BaseException as err:  # handed to the pushing thread in push / close
            self._error = err

    def push(self, frame: np.ndarray) -> None:
        """Queue one frame (h, w, 3); raises the writer's error if it has failed."""
        while True:
            if self._error is not None:
                raise RuntimeError(f"writing {self.path} failed: {self._error}") from self._error
            try:
                self._queue.put(frame, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self, failed: bool = False) -> None:
        """Finish the file (or, with `failed`, abandon it: write_video then leaves no partial file)."""
        if failed:
            self._queue_error()
        else:
            self.push(_END)  # type: ignore[arg-type]
        self._thread.join()
        if self._error is not None and not failed:
            raise RuntimeError(f"writing {self.path} failed: {self._error}") from self._error

    def _queue_error(self) -> None:
        # A frame of the wrong type makes write_video raise, which discards its temporary file.
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.5)
                self._queue.put(_END, timeout=0.5)
                return
            except queue.Full:
                continue


@dataclass
class RunFiles:
    """Paths a run folder got, and the per-frame PSNR of the predicted frames when there is ground truth."""

    cameras: dict[str, Path]
    mosaic: Path
    side_by_side: Path | None
    contact_sheet: Path
    psnr_model: list[float] = field(default_factory=list)
    psnr_copy_last_frame: list[float] = field(default_factory=list)
    front_generated: np.ndarray | None = None  # (T, h, w, 3) the kept camera's frames, when one was asked for
    front_truth: np.ndarray | None = None


class RunWriter:
    """One rollout's outputs, filled frame by frame: per-camera mp4s, mosaic, side-by-side, sheet, PSNR."""

    def __init__(self, folder: Path, cameras: list[str], fps: float, num_frames: int, num_reference: int,
                 with_truth: bool, keep_camera: int | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.cameras, self.num_reference = folder, cameras, num_reference
        self.camera_sinks = {c: VideoSink(folder / f"{c}.mp4", fps) for c in cameras}
        self.mosaic = VideoSink(folder / "generated.mp4", fps)
        self.side = VideoSink(folder / "side_by_side.mp4", fps) if with_truth else None
        self.sheet_stride = max(1, math.ceil(num_frames / SHEET_COLUMNS))
        self.sheet_indices = set(range(0, num_frames, self.sheet_stride))
        self.sheet_generated: list[np.ndarray] = []
        self.sheet_truth: list[np.ndarray] = []
        self.last_reference: np.ndarray | None = None
        self.psnr_model: list[float] = []
        self.psnr_copy: list[float] = []
        # One camera's whole video is kept in memory (the front one, for the motion it shows).
        self.keep_camera = keep_camera
        self.kept_generated: list[np.ndarray] = []
        self.kept_truth: list[np.ndarray] = []
        self.index = 0

    def _all_sinks(self) -> list[VideoSink]:
        return [*self.camera_sinks.values(), self.mosaic, *([self.side] if self.side else [])]

    def push(self, generated: np.ndarray, truth: np.ndarray | None = None) -> None:
        """One frame: generated (v, h, w, 3) and, for runs with ground truth, the true frame."""
        i = self.index
        for c, sink in zip(self.cameras, self.camera_sinks.values()):
            sink.push(generated[self.cameras.index(c)])
        gen_mosaic = camera_mosaic(generated[None], self.cameras)[0]
        self.mosaic.push(gen_mosaic)
        true_mosaic = None
        if self.side is not None:
            if truth is None:
                raise ValueError(f"{self.folder}: frame {i} has no ground truth but the run writes a side-by-side")
            true_mosaic = camera_mosaic(truth[None], self.cameras)[0]
            self.side.push(side_by_side([true_mosaic[None], gen_mosaic[None]], ["ground truth", "generated"])[0])
            if i == self.num_reference - 1:
                self.last_reference = truth
            if i >= self.num_reference:
                self.psnr_model.append(float(psnr(generated, truth).mean()))
                # The baseline every world model must beat: hold the last reference frame still.
                self.psnr_copy.append(float(psnr(self.last_reference, truth).mean()))
        if self.keep_camera is not None:
            self.kept_generated.append(generated[self.keep_camera])
            if truth is not None:
                self.kept_truth.append(truth[self.keep_camera])
        if i in self.sheet_indices:
            self.sheet_generated.append(gen_mosaic)
            if true_mosaic is not None:
                self.sheet_truth.append(true_mosaic)
        self.index += 1

    def close(self, failed: bool = False) -> RunFiles | None:
        """Finish every file; with `failed`, abandon the videos (no partial files) and return None."""
        errors = []
        for sink in self._all_sinks():
            try:
                sink.close(failed)
            except RuntimeError as err:
                errors.append(err)
        if failed:
            return None
        if errors:
            raise errors[0]
        # Column headers count kept frames; the row labels say which frames those are.
        stride = self.sheet_stride
        suffix = f" (every {stride})" if stride > 1 else ""
        rows, labels = [np.stack(self.sheet_generated)], [f"generated{suffix}"]
        if self.sheet_truth:
            rows, labels = [np.stack(self.sheet_truth), rows[0]], [f"ground truth{suffix}", labels[0]]
        save_png(self.folder / "contact_sheet.png", contact_sheet(rows, labels, max_columns=SHEET_COLUMNS))
        return RunFiles(cameras={c: s.path for c, s in self.camera_sinks.items()}, mosaic=self.mosaic.path,
                        side_by_side=self.side.path if self.side else None,
                        contact_sheet=self.folder / "contact_sheet.png", psnr_model=self.psnr_model,
                        psnr_copy_last_frame=self.psnr_copy,
                        front_generated=np.stack(self.kept_generated) if self.kept_generated else None,
                        front_truth=np.stack(self.kept_truth) if self.kept_truth else None)
