"""KITTI layout → sharded TFRecords, one ``tf.train.Example`` per frame (000 §6.3).

Two passes. The first reads every label file and image header, checks them and encodes each frame's
record (a failure here has written nothing). The second partitions, optionally rebalances the
training folds, and writes the shards through ``StagedOutputs`` (published together at the end).
Images are never decoded: the frame size comes from the image header.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from libtlt.errors import DataError, SpecError, location
from libtlt.io.example import ExampleEncoder, Kind
from libtlt.io.images import complete_image_size
from libtlt.io.kitti import FIELD_NAMES, NUM_FIELDS, Frame, SkippedBoxes, box_problem, pair_frames, read_sequence_map
from libtlt.log import get_logger
from libtlt.spec import LoadedSpec
from libtlt.spec.protos import dataset_export_pb2
from tlt_dataset_convert import jsonpos, partition
from tlt_dataset_convert.output import ConversionResult, StagedOutputs, count_classes, log_class_map, log_counts
from tlt_dataset_convert.progress import progress_bar
from tlt_dataset_convert.sample_modifier import ModifierRules, modify_training_folds

LOGGER = get_logger("tlt_dataset_convert.kitti_converter")
WRITER_LOGGER = get_logger("tlt_dataset_convert.dataset_converter")

#: Feature name → kind, in the order each record holds them (docs/formats.md).
FEATURES: dict[str, Kind] = {
    "frame/id": Kind.BYTES,
    "frame/height": Kind.INT64,
    "frame/width": Kind.INT64,
    "target/object_class": Kind.BYTES,
    "target/truncation": Kind.FLOAT,
    "target/occlusion": Kind.INT64,
    "target/observation_angle": Kind.FLOAT,
    "target/coordinates_x1": Kind.FLOAT,
    "target/coordinates_y1": Kind.FLOAT,
    "target/coordinates_x2": Kind.FLOAT,
    "target/coordinates_y2": Kind.FLOAT,
    "target/world_bbox_h": Kind.FLOAT,
    "target/world_bbox_w": Kind.FLOAT,
    "target/world_bbox_l": Kind.FLOAT,
    "target/world_bbox_x": Kind.FLOAT,
    "target/world_bbox_y": Kind.FLOAT,
    "target/world_bbox_z": Kind.FLOAT,
    "target/world_bbox_rot_y": Kind.FLOAT,
}

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
PARTITION_MODES = ("random", "sequence")


@dataclass(frozen=True)
class KittiSettings:
    """A validated ``kitti_config`` with its paths resolved."""

    image_dir: Path
    label_dir: Path
    image_dir_name: str
    image_extension: str
    partition_mode: str
    num_partitions: int
    val_split: float
    sequence_file: Path | None
    num_shards: int


def resolve_settings(spec: LoadedSpec[dataset_export_pb2.DatasetExportConfig]) -> KittiSettings:
    """Check ``kitti_config`` (errors point at the spec field) and resolve its paths."""
    config = spec.message.kitti_config
    prefix = "kitti_config."
    for name in ("root_directory_path", "image_dir_name", "label_dir_name"):
        if not getattr(config, name):
            raise spec.error(prefix + name, "is required")
    root = Path(config.root_directory_path)
    if not root.is_dir():
        raise spec.error(prefix + "root_directory_path", f"directory not found: {root}")
    extension = "." + config.image_extension.lstrip(".").lower()
    if extension not in IMAGE_EXTENSIONS:
        raise spec.error(prefix + "image_extension",
                         f"unsupported extension {config.image_extension!r} (supported: {', '.join(IMAGE_EXTENSIONS)})")
    mode = config.partition_mode
    if mode not in PARTITION_MODES:
        got = f"{mode!r}" if config.HasField("partition_mode") else "nothing"
        raise spec.error(prefix + "partition_mode", f"expected \"random\" or \"sequence\", got {got}")
    if config.num_shards < 1:
        raise spec.error(prefix + "num_shards", "must be at least 1")
    val_split = float(config.val_split)
    sequence_file = None
    if mode == "random":
        if config.num_partitions != 2:
            raise spec.error(prefix + "num_partitions",
                             f"random partitioning makes exactly 2 partitions (val, train), got {config.num_partitions}")
        if not 0 <= val_split <= 100 or math.isnan(val_split):
            raise spec.error(prefix + "val_split", f"must be a percentage in 0-100, got {val_split:g}")
    else:
        if config.num_partitions < 1:
            raise spec.error(prefix + "num_partitions", "must be at least 1")
        if not config.kitti_sequence_to_frames_file:
            raise spec.error(prefix + "kitti_sequence_to_frames_file", "is required in sequence mode")
        sequence_file = root / config.kitti_sequence_to_frames_file
        if not sequence_file.is_file():
            raise spec.error(prefix + "kitti_sequence_to_frames_file", f"sequence map file not found: {sequence_file}")
    return KittiSettings(
        image_dir=root / config.image_dir_name,
        label_dir=root / config.label_dir_name,
        image_dir_name=config.image_dir_name.rstrip("/"),
        image_extension=extension,
        partition_mode=mode,
        num_partitions=int(config.num_partitions),
        val_split=val_split,
        sequence_file=sequence_file,
        num_shards=int(config.num_shards),
    )


# ------------------------------------------------------------------------------------- first pass


@dataclass
class EncodedFrame:
    frame_id: str
    record: bytes
    classes: tuple[str, ...]  # lower-cased class of every object written


@dataclass
class ReadReport:
    skipped: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    class_map: dict[str, str] = field(default_factory=dict)

    @property
    def num_skipped(self) -> int:
        return sum(len(boxes) for boxes in self.skipped.values())


def _bad_number(tokens: Sequence[str], path: Path, lineno: int) -> DataError:
    for index, token in enumerate(tokens[1:], start=1):
        try:
            value = float(token)
        except ValueError:
            return DataError(f"not a number: {token!r}", location=location(path, lineno), field=FIELD_NAMES[index])
        if not math.isfinite(value):
            return DataError(f"not a finite number: {token!r}", location=location(path, lineno),
                             field=FIELD_NAMES[index])
    return DataError("malformed label line", location=location(path, lineno))


def read_frame(frame: Frame, id_prefix: str, encoder: ExampleEncoder, report: ReadReport,
               size_of: Callable[[Path], tuple[int, int]] = complete_image_size,
               warn: SkippedBoxes | None = None) -> EncodedFrame:
    """Parse one frame's labels, check its image (header and end marker) and encode its Example.

    Boxes ``libtlt.io.kitti.box_problem`` rejects (inverted, outside the image) are skipped with a
    warning naming ``file:line``, as tlt-augment does; like boxes that truncate to zero size they
    are listed in the warning json.
    """
    path = frame.label_path
    width, height = size_of(frame.image_path)
    warn = warn or SkippedBoxes(LOGGER)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise DataError("label file not found", location=path) from None
    except UnicodeDecodeError:
        raise DataError("label file is not UTF-8 text", location=path) from None
    classes: list[str] = []
    rows: list[list[float]] = []
    class_map = report.class_map
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != NUM_FIELDS:
            extra = " (a 16th field is a confidence: predicted labels are not ground truth)" if len(tokens) == 16 else ""
            raise DataError(f"expected {NUM_FIELDS} fields, found {len(tokens)}{extra}: {line.strip()!r}",
                            location=location(path, lineno))
        try:
            values = [float(t) for t in tokens[1:]]
        except ValueError:
            raise _bad_number(tokens, path, lineno) from None
        total = sum(values)
        if total - total != 0 and not all(math.isfinite(v) for v in values):
            raise _bad_number(tokens, path, lineno)
        x1, y1, x2, y2 = values[3:7]
        gt_name = tokens[0]
        name = class_map.get(gt_name)
        if name is None:
            name = class_map[gt_name] = gt_name.lower()
        problem = box_problem((x1, y1, x2, y2), width, height)
        if problem is not None:
            warn.warn(problem, path, lineno)
        if problem is None and int(x1) < int(x2) and int(y1) < int(y2):
            classes.append(name)
            rows.append(values)
        else:
            report.skipped.setdefault(frame.frame_id, []).append(
                {"label_file": str(path), "line": lineno, "class": name, "bbox": [x1, y1, x2, y2],
                 "reason": problem or "zero size"})
    columns: list[Sequence[float]] = list(zip(*rows, strict=True)) if rows else [()] * (NUM_FIELDS - 1)
    occlusion = [int(v) for v in columns[1]]
    record = encoder.encode_ordered((
        [f"{id_prefix}/{frame.frame_id}".encode()], [height], [width],
        [c.encode() for c in classes], columns[0], occlusion, *columns[2:],
    ))
    return EncodedFrame(frame.frame_id, record, tuple(classes))


def read_frames(frames: Sequence[Frame], id_prefix: str, report: ReadReport) -> dict[str, EncodedFrame]:
    encoder = ExampleEncoder(FEATURES)
    out: dict[str, EncodedFrame] = {}
    warn = SkippedBoxes(LOGGER)
    with progress_bar(len(frames), "Reading labels") as bar:
        for frame in frames:
            out[frame.frame_id] = read_frame(frame, id_prefix, encoder, report, warn=warn)
            bar.update(1)
    warn.log_summary()
    return out


# ------------------------------------------------------------------------------------- partitions


def sequence_folds(sequence_file: Path, frame_ids: Sequence[str], num_partitions: int,
                   spec: LoadedSpec[dataset_export_pb2.DatasetExportConfig]) -> list[list[str]]:
    """Folds of ``sequence`` mode, after checking the map against the frames on disk."""
    sequences = read_sequence_map(sequence_file)
    known = set(frame_ids)
    seen: dict[str, str] = {}
    text: str | None = None

    def where(path: list[str | int]) -> str:
        nonlocal text
        if text is None:
            text = sequence_file.read_text(encoding="utf-8")
        return location(sequence_file, *jsonpos.locate(text, path))

    for name, frames in sequences.items():
        for index, frame_id in enumerate(frames):
            if frame_id not in known:
                raise DataError(f"frame {frame_id!r} has no image and label in the dataset",
                                location=where([name, index]), field=jsonpos.path_name([name, index]))
            if frame_id in seen:
                raise DataError(f"frame {frame_id!r} is also in sequence {seen[frame_id]!r}",
                                location=where([name, index]), field=jsonpos.path_name([name, index]))
            seen[frame_id] = name
    missing = [f for f in frame_ids if f not in seen]
    if missing:
        raise DataError(f"{len(missing)} frame(s) are in no sequence, e.g. {missing[0]!r}; every frame must belong "
                        "to one sequence in sequence mode", location=sequence_file)
    if len(sequences) < num_partitions:
        raise spec.error("kitti_config.num_partitions",
                         f"{num_partitions} partitions need at least as many sequences; {sequence_file} has "
                         f"{len(sequences)}")
    return partition.sequence_partitions(sequences, num_partitions)


# ------------------------------------------------------------------------------------- conversion


def convert_kitti(spec: LoadedSpec[dataset_export_pb2.DatasetExportConfig], output: str,
                  validation_fold: int | None = None, *, fsync: bool = True) -> ConversionResult:
    """Convert the KITTI dataset of ``spec`` into ``<output>-fold-*-shard-*`` files."""
    settings = resolve_settings(spec)
    num_partitions = settings.num_partitions
    if validation_fold is not None and not 0 <= validation_fold < num_partitions:
        raise SpecError(f"validation fold {validation_fold} does not exist; folds are 0-{num_partitions - 1}",
                        field="-f/--validation-fold")
    rules = ModifierRules()
    if spec.message.HasField("sample_modifier_config"):
        rules = ModifierRules.from_proto(spec.message.sample_modifier_config)
        if rules.active and validation_fold is None:
            raise spec.error("sample_modifier_config",
                             "modifies the training folds, so the validation fold must be given with -f")

    frames = pair_frames(settings.image_dir, settings.label_dir, settings.image_extension)
    frame_ids = [f.frame_id for f in frames]
    if settings.partition_mode == "random":
        folds = partition.random_partitions(frame_ids, settings.val_split)
        LOGGER.info("Num images in\nTrain: %d\tVal: %d", len(folds[1]), len(folds[0]))
        LOGGER.info("Validation data in partition 0. Hence, while choosing the validation set during training "
                    "choose validation_fold 0.")
    else:
        if settings.sequence_file is None:  # resolve_settings requires it in sequence mode
            raise spec.error("kitti_config.kitti_sequence_to_frames_file", "is required in sequence mode")
        folds = sequence_folds(settings.sequence_file, frame_ids, num_partitions, spec)
        LOGGER.info("Num images in\n%s", "\t".join(f"Partition {p}: {len(fold)}" for p, fold in enumerate(folds)))

    report = ReadReport()
    encoded = read_frames(frames, settings.image_dir_name, report)

    if rules.active and validation_fold is not None:
        classes_of = {fid: enc.classes for fid, enc in encoded.items()}
        folds, change = modify_training_folds(folds, classes_of, validation_fold, rules)
        LOGGER.info("Sample modifier: %d training frames -> %d (filtered %d, duplicated %d frame(s) %d time(s) "
                    "for %s%s)", change.training_frames_before, change.training_frames_after, change.filtered,
                    change.duplicated_frames, rules.num_duplicates, ", ".join(change.rare_classes) or "no class",
                    f", capped to {change.capped_to}" if change.capped_to is not None else "")

    out_path = Path(output)
    warning_file = Path(f"{output}_warning.json")
    counts: list[Counter[str]] = []
    with StagedOutputs(out_path.parent if str(out_path.parent) else Path("."), fsync=fsync,
                       replaces=partition.kitti_shard_pattern(output)) as staged, \
            progress_bar(sum(len(f) for f in folds), "Writing tfrecords") as bar:
        for p, fold in enumerate(folds):
            for s, shard in enumerate(partition.shard_items(fold, settings.num_shards)):
                WRITER_LOGGER.info("Writing partition %d, shard %d", p, s)
                name = partition.kitti_shard_name(output, p, num_partitions, s, settings.num_shards)
                with staged.tfrecord_writer(name) as writer:
                    for frame_id in shard:
                        writer.write(encoded[frame_id].record)
                bar.update(len(shard))
            counts.append(count_classes(encoded[f].classes for f in fold))
            log_counts(WRITER_LOGGER, counts[-1])
        staged.write_text(warning_file, _warning_json(report))
    files = [Path(partition.kitti_shard_name(output, p, num_partitions, s, settings.num_shards))
             for p in range(num_partitions) for s in range(settings.num_shards)]

    WRITER_LOGGER.info("Cumulative object statistics")
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    log_counts(WRITER_LOGGER, total)
    if report.num_skipped:
        WRITER_LOGGER.warning("Skipped %d box(es) (zero size, inverted or outside the image); see %s", report.num_skipped,
                              warning_file)
    log_class_map(WRITER_LOGGER, report.class_map)
    WRITER_LOGGER.info("Tfrecords generation complete.")
    return ConversionResult(files, folds, counts, warning_file, report.num_skipped)


def _warning_json(report: ReadReport) -> str:
    """``<output>_warning.json``: every skipped box, by frame id (docs/formats.md)."""
    body = {"skipped_boxes": report.num_skipped,
            "frames": {frame_id: report.skipped[frame_id] for frame_id in sorted(report.skipped)}}
    return json.dumps(body, indent=2) + "\n"
