"""tlt-augment's logic (000 chapter 5): check everything, then augment every frame.

Every input problem that can be found without decoding pixels — spec, folders, pairing, label
lines, image headers — is reported before the first output file is written.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

from libtlt.errors import DataError, TltError
from libtlt.interrupts import Interrupted
from libtlt.io.images import check_complete
from libtlt.io.kitti import SkippedBoxes, pair_frames, read_label_lines
from libtlt.log import get_logger
from libtlt.log import progress as progress_bar
from tlt_augment.spec import AugmentSpec, load_augment_spec

if TYPE_CHECKING:
    from tlt_augment.pipeline import FrameTask

logger = get_logger("tlt_augment.augment")

#: Formats an image file may hold (checked from its header before anything is written).
IMAGE_FORMATS = ("PNG", "JPEG")


@dataclass(frozen=True)
class Summary:
    images: int
    boxes_kept: int
    boxes_dropped: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run(*, dataset_folder: str | Path, augmentation_proto: str | Path, output_dataset: str | Path,
        verbose: bool = False, workers: int | None = None) -> Summary:
    """Augment the KITTI dataset under ``dataset_folder`` into ``output_dataset``/images and /labels."""
    try:
        return _run(dataset_folder, augmentation_proto, output_dataset, verbose, workers)
    except Interrupted as stop:  # before the first frame (the frame loop says how many it completed)
        stop.detail = stop.detail or "0 frames completed"
        raise


def _run(dataset_folder: str | Path, augmentation_proto: str | Path, output_dataset: str | Path, verbose: bool,
         workers: int | None) -> Summary:
    from tlt_augment.pipeline import Augmentor, run_frames  # OpenCV: imported only when needed

    start = time.perf_counter()
    logging.getLogger("PIL").setLevel(logging.INFO)  # its DEBUG lines list every PNG chunk
    spec = load_augment_spec(augmentation_proto)
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise TltError(f"--workers must be at least 1, got {workers}", field="workers")
    root = Path(dataset_folder)
    if not root.is_dir():
        raise DataError("dataset folder not found", location=root)
    output = Path(output_dataset)
    tasks = collect_frames(root, spec)
    _check_output(output, root / spec.image_path, root / spec.label_path)
    logger.info("Input dataset: %s", root)
    logger.info("Output dataset: %s", output)

    augmentor = Augmentor(spec, output, annotate=verbose)
    kept = dropped = done = 0
    workers = min(workers, len(tasks))
    try:
        for folder in (augmentor.image_dir, augmentor.label_dir) + ((augmentor.annotated_dir,) if verbose else ()):
            folder.mkdir(parents=True, exist_ok=True)
        with progress_bar(total=len(tasks), desc="Augmenting", unit="frame") as progress:
            for result in run_frames(augmentor, tasks, workers):
                kept += result.kept
                dropped += result.dropped
                done += 1
                progress.update(1)
    except Interrupted as stop:
        stop.detail = f"{done} of {len(tasks)} frames completed (each written with its label file)"
        raise
    summary = Summary(done, kept, dropped, time.perf_counter() - start)
    logger.info("Wrote %d images and label files to %s (%d workers)", summary.images, output, workers)
    logger.info("Boxes kept: %d, dropped (zero area after the transform): %d", kept, dropped)
    logger.info("Time: %.2f s, %.2f images/s", summary.seconds, summary.images_per_second)
    return summary


def collect_frames(root: Path, spec: AugmentSpec) -> list[FrameTask]:
    """Pair images with labels, parse every label file and check every image (header and end).

    Boxes that ``libtlt.io.kitti.box_problem`` rejects (inverted, or entirely outside the image) are
    left out of the frame with a warning naming ``file:line``, as tlt-dataset-convert does.
    """
    from tlt_augment.pipeline import FrameTask

    image_dir, label_dir = root / spec.image_path, root / spec.label_path
    frames = pair_frames(image_dir, label_dir, spec.image_extension)
    skipped = SkippedBoxes(logger)
    tasks = []
    for frame in frames:
        lines = read_label_lines(frame.label_path)
        width, height = check_image_header(frame.image_path)
        objects = tuple(obj for lineno, obj in lines
                        if skipped.check(obj.bbox, width, height, frame.label_path, lineno))
        tasks.append(FrameTask(frame.frame_id, frame.image_path, frame.label_path, objects))
    skipped.log_summary()
    return tasks


def check_image_header(path: Path) -> tuple[int, int]:
    """``(width, height)``, or a ``DataError`` naming ``path`` unless it is a whole PNG or JPEG file.

    Reads the header (format and size) and the file's end (``libtlt.io.images.check_complete``),
    which catches the usual damage, a truncated copy, without decoding any pixels.
    """
    try:
        with Image.open(path) as image:
            kind = image.format
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError) as err:
        reason = "not a PNG or JPEG image" if isinstance(err, UnidentifiedImageError) else str(err)
        raise DataError(f"unreadable image: {reason}", location=path) from None
    if kind not in IMAGE_FORMATS:
        raise DataError(f"unsupported image format {kind} (PNG or JPEG expected)", location=path)
    if width < 1 or height < 1:
        raise DataError(f"empty image ({width}x{height})", location=path)
    check_complete(path, kind)
    return int(width), int(height)


def _check_output(output: Path, image_dir: Path, label_dir: Path) -> None:
    """Refuse to write over the input folders."""
    if output.exists() and not output.is_dir():
        raise DataError("output dataset path exists and is not a folder", location=output)
    for target, source in ((output / "images", image_dir), (output / "labels", label_dir)):
        if target.resolve() == source.resolve():
            raise DataError(f"output folder {target} is the input folder; choose another -o", location=output)
