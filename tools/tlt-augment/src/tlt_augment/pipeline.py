"""Per-frame work (read, one warp, colour, blur, encode, write) and its spread over worker processes.

Every frame is a pure function of its input files and the spec, so the outputs are identical for
any number of workers. Workers write their own outputs (image and label together, atomically) and
send back only counts; ``libtlt.workers.WorkerPool`` owns them (no worker outlives the tool).
"""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from libtlt import interrupts
from libtlt.errors import DataError
from libtlt.io.atomic import write_files
from libtlt.io.kitti import LABEL_EXTENSION, KittiObject, format_labels
from libtlt.workers import WorkerPool
from tlt_augment import image_ops
from tlt_augment.spec import AugmentSpec
from tlt_augment.transforms import frame_matrix, is_identity, to_pixel_affine, transform_boxes

ANNOTATED_DIR = "annotated"


@dataclass(frozen=True)
class FrameTask:
    """One input frame: its image, its label file and the objects already parsed from it."""

    frame_id: str
    image_path: Path
    label_path: Path
    objects: tuple[KittiObject, ...]


@dataclass(frozen=True)
class FrameResult:
    frame_id: str
    kept: int
    dropped: int


class Augmentor:
    """Applies one spec to frames; picklable, so each worker process gets a copy once."""

    def __init__(self, spec: AugmentSpec, output_dir: str | Path, annotate: bool = False):
        self.spec = spec
        self.image_dir = Path(output_dir) / "images"
        self.label_dir = Path(output_dir) / "labels"
        self.annotated_dir = self.image_dir / ANNOTATED_DIR
        self.annotate = annotate
        self.size = (spec.output_width, spec.output_height)
        self.tone = image_ops.tone_coefficients(spec.brightness, spec.contrast)
        self.lut = image_ops.tone_lut(*self.tone) if self.tone != (1.0, 0.0) else None
        hs = spec.hue_saturation
        self.hue_saturation = hs if hs is not None and (hs[0] % 360.0 != 0.0 or hs[1] != 1.0) else None
        self._workspace: image_ops.Workspace | None = None

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_workspace"] = None  # buffers stay in the process that made them
        return state

    @property
    def workspace(self) -> image_ops.Workspace:
        if self._workspace is None:
            self._workspace = image_ops.Workspace()
        return self._workspace

    def matrix_for(self, in_width: int, in_height: int) -> np.ndarray:
        """The 3×3 matrix (continuous coordinates) from an input of this size to the output."""
        return frame_matrix(self.spec, in_width, in_height)

    def transform(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The transform chain on a decoded BGR image: the output image and the frame's matrix.

        The output lives in this augmentor's reused buffers: it is valid until the next call.
        """
        height, width = image.shape[:2]
        matrix = self.matrix_for(width, height)
        shape = (self.size[1], self.size[0], 3)
        ws = self.workspace
        if not is_identity(matrix):
            image = image_ops.warp(image, to_pixel_affine(matrix), *self.size, out=ws.get("warp", shape))
        if self.hue_saturation is not None:
            image = image_ops.color_transform(image, *self.hue_saturation, *self.tone, workspace=ws)
        elif self.lut is not None:
            image = image_ops.apply_lut(image, self.lut, out=ws.get("tone", shape))
        if self.spec.blur is not None:
            image = image_ops.gaussian_blur(image, *self.spec.blur, out=ws.get("blur", shape))
        return image_ops.to_channels(image, self.spec.output_channels), matrix

    def augment_image(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Like ``transform`` but the returned image is a new array the caller owns."""
        out, matrix = self.transform(image)
        return (out.copy() if out is not image else out), matrix

    def image_path(self, task: FrameTask) -> Path:
        return self.image_dir / task.image_path.name

    def label_path(self, task: FrameTask) -> Path:
        return self.label_dir / f"{task.frame_id}{LABEL_EXTENSION}"

    def remove_outputs(self, task: FrameTask) -> None:
        """Remove a frame's outputs and temporary files (a frame whose worker was killed mid-write)."""
        for path in (self.image_path(task), self.label_path(task), self.annotated_dir / task.image_path.name):
            path.unlink(missing_ok=True)
            for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
                tmp.unlink(missing_ok=True)

    def process(self, task: FrameTask) -> FrameResult:
        """Augment one frame and write its image and label file (and the annotated image)."""
        try:
            data = task.image_path.read_bytes()
        except OSError as err:
            raise DataError(f"cannot read image: {err.strerror}", location=task.image_path) from None
        image, matrix = self.transform(image_ops.decode_image(data, task.image_path))
        kept_objects: list[KittiObject] = []
        boxes = np.zeros((0, 4))
        if task.objects:
            new_boxes, keep = transform_boxes(np.array([obj.bbox for obj in task.objects]), matrix, *self.size)
            boxes = new_boxes[keep]
            kept_objects = [obj.with_bbox(*box) for obj, box, k in zip(task.objects, new_boxes, keep, strict=True)
                            if k]
        extension = self.spec.image_extension
        outputs = {self.image_path(task): image_ops.encode_image(image, extension),
                   self.label_path(task): format_labels(kept_objects).encode("utf-8")}
        if self.annotate:
            annotated = image_ops.draw_boxes(image, boxes)
            outputs[self.annotated_dir / task.image_path.name] = image_ops.encode_image(annotated, extension)
        write_files(outputs, fsync=False)  # the pair appears whole or not at all
        return FrameResult(task.frame_id, len(kept_objects), len(task.objects) - len(kept_objects))


# ------------------------------------------------------------------------------------------- workers

_worker_augmentor: Augmentor | None = None


def tune_process() -> None:
    """One OpenCV thread per process: the workers are the parallelism, more threads would only compete."""
    cv2.setNumThreads(1)


def _init_worker(augmentor: Augmentor) -> None:
    global _worker_augmentor
    tune_process()
    _worker_augmentor = augmentor


def _work(task: FrameTask) -> FrameResult:
    if _worker_augmentor is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker process not initialized")
    return _worker_augmentor.process(task)


def run_frames(augmentor: Augmentor, tasks: Sequence[FrameTask], workers: int) -> Iterator[FrameResult]:
    """Process ``tasks`` with ``workers`` processes, yielding results as frames finish.

    On the first error, frames not yet started are skipped, frames in progress finish (so every
    output pair is whole) and the error is raised. On SIGINT/SIGTERM the same, within
    ``WorkerPool.grace`` seconds; the outputs of a frame whose worker had to be killed are removed.
    """
    if workers <= 1:
        tune_process()
        with interrupts.deferred():  # a signal stops the run between frames, never inside one
            for task in tasks:
                if interrupts.pending() is not None:
                    break
                yield augmentor.process(task)
        return
    # OpenCV's thread pool is stopped before the fork so no child inherits a half-copied pool.
    cv2.setNumThreads(1)
    pool: WorkerPool[FrameTask, FrameResult] = WorkerPool(_work, workers, initializer=_init_worker,
                                                          initargs=(augmentor,))
    try:
        yield from pool.imap_unordered(tasks)
    finally:
        for task in pool.abandoned:
            augmentor.remove_outputs(task)
