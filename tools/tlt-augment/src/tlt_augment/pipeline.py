"""Per-frame work (read, one warp, colour, blur, encode, write) and its spread over worker processes.

Every frame is a pure function of its input files and the spec, so the outputs are identical for
any number of workers. Workers write their own outputs (atomically) and send back only counts.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from libtlt.errors import DataError
from libtlt.io.atomic import write_bytes
from libtlt.io.kitti import LABEL_EXTENSION, KittiObject, write_label_file
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
        name = task.image_path.name
        write_bytes(self.image_dir / name, image_ops.encode_image(image, extension), fsync=False)
        write_label_file(self.label_dir / f"{task.frame_id}{LABEL_EXTENSION}", kept_objects)
        if self.annotate:
            annotated = image_ops.draw_boxes(image, boxes)
            write_bytes(self.annotated_dir / name, image_ops.encode_image(annotated, extension), fsync=False)
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


def run_frames(augmentor: Augmentor, tasks: Iterable[FrameTask], workers: int) -> Iterator[FrameResult]:
    """Process ``tasks`` with ``workers`` processes, yielding results as frames finish.

    On the first error, frames not yet started are cancelled, frames in progress finish (so every
    file written is complete), and the error is raised.
    """
    if workers <= 1:
        tune_process()
        for task in tasks:
            yield augmentor.process(task)
        return
    # fork: a worker starts in milliseconds with everything already imported (forkserver or spawn
    # cost ~0.3 s per run, a quarter of a 50-frame job) and the main module is never re-imported.
    # OpenCV's thread pool is stopped first so no child inherits a half-copied pool.
    cv2.setNumThreads(1)
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    queue = iter(tasks)
    window = 4 * workers
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(augmentor,)) as pool:
        pending: set[Future[FrameResult]] = set()

        def fill() -> None:
            while len(pending) < window:
                task = next(queue, None)
                if task is None:
                    return
                pending.add(pool.submit(_work, task))

        try:
            fill()
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                fill()
        except BaseException:
            for future in pending:
                future.cancel()
            raise
