"""COCO instance annotations → the TFRecords MaskRCNN reads (``training_file_pattern`` /
``validation_file_pattern``), one ``tf.train.Example`` per image with the encoded image embedded.

Each annotation file is one partition, written as ``<tag>-SSSSS-of-NNNNN.tfrecord`` shards (see
``shard_path``). Pass one loads and checks every json and every image header (errors name
``file:line:column`` and the json field); pass two writes through ``StagedOutputs``. Masks are
rasterized from polygons or RLE with pycocotools (imported only when masks are written) and stored
as one PNG per instance with pixel values 0/1.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libtlt.errors import DataError, UnsupportedError, location
from libtlt.io.example import ExampleEncoder, Kind
from libtlt.io.images import complete_image_size
from libtlt.log import get_logger
from libtlt.spec import LoadedSpec
from libtlt.spec.protos import dataset_export_pb2
from tlt_dataset_convert import jsonpos, partition
from tlt_dataset_convert.output import ConversionResult, StagedOutputs, log_counts
from tlt_dataset_convert.progress import progress_bar

LOGGER = get_logger("tlt_dataset_convert.coco_converter")

DEFAULT_NUM_SHARDS = 10

#: Feature name → kind, in record order (docs/formats.md). ``image/object/mask`` only with masks.
FEATURES: dict[str, Kind] = {
    "image/height": Kind.INT64,
    "image/width": Kind.INT64,
    "image/filename": Kind.BYTES,
    "image/source_id": Kind.BYTES,
    "image/key/sha256": Kind.BYTES,
    "image/encoded": Kind.BYTES,
    "image/format": Kind.BYTES,
    "image/object/bbox/xmin": Kind.FLOAT,
    "image/object/bbox/ymin": Kind.FLOAT,
    "image/object/bbox/xmax": Kind.FLOAT,
    "image/object/bbox/ymax": Kind.FLOAT,
    "image/object/class/text": Kind.BYTES,
    "image/object/class/label": Kind.INT64,
    "image/object/is_crowd": Kind.INT64,
    "image/object/area": Kind.FLOAT,
    "image/object/mask": Kind.BYTES,
}


@dataclass(frozen=True)
class CocoPartition:
    tag: str
    image_dir: Path
    annotation_file: Path
    num_shards: int


def resolve_partitions(spec: LoadedSpec[dataset_export_pb2.DatasetExportConfig]) -> list[CocoPartition]:
    """Check ``coco_config`` (errors point at the spec field) and list its partitions."""
    config = spec.message.coco_config
    p = "coco_config."
    if not config.root_directory_path:
        raise spec.error(p + "root_directory_path", "is required")
    root = Path(config.root_directory_path)
    if not root.is_dir():
        raise spec.error(p + "root_directory_path", f"directory not found: {root}")
    count = len(config.annotation_files)
    if count == 0:
        raise spec.error(p + "annotation_files", "at least one annotation file is required")
    if len(config.img_dir_names) != count:
        raise spec.error(p + "img_dir_names", f"needs one image directory per annotation file ({count}), "
                                              f"got {len(config.img_dir_names)}")
    if config.HasField("num_partitions") and config.num_partitions != count:
        raise spec.error(p + "num_partitions", f"is {config.num_partitions} but there are {count} annotation files "
                                               "(one partition each)")
    shards = list(config.num_shards) or [DEFAULT_NUM_SHARDS]
    if len(shards) not in (1, count):
        raise spec.error(p + "num_shards", f"give one value, or one per annotation file ({count})")
    if len(shards) == 1:
        shards *= count
    if any(n < 1 for n in shards):
        raise spec.error(p + "num_shards", "must be at least 1")
    tags = list(config.tags) or [Path(name.rstrip("/")).name for name in config.img_dir_names]
    if len(tags) != count:
        raise spec.error(p + "tags", f"give one tag per annotation file ({count}), got {len(tags)}")
    for tag in tags:
        if not tag or "/" in tag or tag.startswith("."):
            raise spec.error(p + "tags", f"{tag!r} cannot be used in a file name")
    if len(set(tags)) != count:
        raise spec.error(p + "tags", f"partition names must differ, got {tags}; set coco_config.tags")
    partitions = []
    for index, (tag, image_dir_name, annotation_name, num_shards) in enumerate(
            zip(tags, config.img_dir_names, config.annotation_files, shards, strict=True)):
        image_dir = root / image_dir_name
        annotation_file = root / annotation_name
        if not image_dir.is_dir():
            raise spec.error(f"{p}img_dir_names[{index}]", f"directory not found: {image_dir}")
        if not annotation_file.is_file():
            raise spec.error(f"{p}annotation_files[{index}]", f"annotation file not found: {annotation_file}")
        partitions.append(CocoPartition(tag, image_dir, annotation_file, num_shards))
    return partitions


# ------------------------------------------------------------------------------------- loading


@dataclass
class CocoImage:
    image_id: int
    file_name: str
    width: int
    height: int
    path: Path
    annotations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CocoDataset:
    path: Path
    images: list[CocoImage]
    categories: dict[int, str]
    num_annotations: int


class _Checker:
    """Raises ``DataError`` at ``file:line:column`` of a json path; positions computed only on error."""

    def __init__(self, path: Path, text: str):
        self.path = path
        self.text = text

    def fail(self, json_path: list[str | int], message: str) -> DataError:
        line, column = jsonpos.locate(self.text, json_path)
        return DataError(message, location=location(self.path, line, column),
                         field=jsonpos.path_name(json_path) or None)

    def mapping(self, value: Any, json_path: list[str | int], what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(json_path, f"expected {what} (a json object), got {type(value).__name__}")
        return value

    def integer(self, obj: dict[str, Any], key: str, json_path: list[str | int], *, positive: bool = False,
                default: int | None = None) -> int:
        if key not in obj:
            if default is not None:
                return default
            raise self.fail(json_path, f"missing required field '{key}'")
        value = obj[key]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or (positive and value <= 0):
            kind = "a positive integer" if positive else "an integer"
            raise self.fail(json_path + [key], f"expected {kind}, got {value!r}")
        return value

    def number(self, value: Any, json_path: list[str | int]) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(json_path, f"expected a finite number, got {value!r}")
        return float(value)


def load_coco(path: Path, image_dir: Path, *, include_masks: bool) -> CocoDataset:
    """Read and check a COCO instances json and the headers of its images."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError("annotation file is not UTF-8 text", location=path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"invalid JSON: {err.msg}", location=location(path, err.lineno, err.colno)) from None
    check = _Checker(path, text)
    if not isinstance(data, dict):
        raise check.fail([], "not a COCO instances file: expected a json object with images, annotations and "
                             "categories")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise check.fail([], f"not a COCO instances file: no '{key}' list")
        if not isinstance(data[key], list):
            raise check.fail([key], f"expected a list, got {type(data[key]).__name__}")

    categories: dict[int, str] = {}
    for index, raw in enumerate(data["categories"]):
        where: list[str | int] = ["categories", index]
        cat = check.mapping(raw, where, "a category")
        cat_id = check.integer(cat, "id", where)
        name = cat.get("name")
        if not isinstance(name, str) or not name:
            raise check.fail(where + (["name"] if "name" in cat else []), "expected a category name")
        if cat_id in categories:
            raise check.fail(where + ["id"], f"duplicate category id {cat_id}")
        categories[cat_id] = name

    images: dict[int, CocoImage] = {}
    for index, raw in enumerate(data["images"]):
        where = ["images", index]
        img = check.mapping(raw, where, "an image")
        image_id = check.integer(img, "id", where)
        file_name = img.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            raise check.fail(where + (["file_name"] if "file_name" in img else []), "expected a file_name")
        width = check.integer(img, "width", where, positive=True)
        height = check.integer(img, "height", where, positive=True)
        if image_id in images:
            raise check.fail(where + ["id"], f"duplicate image id {image_id}")
        images[image_id] = CocoImage(image_id, file_name, width, height, image_dir / file_name)

    for index, raw in enumerate(data["annotations"]):
        where = ["annotations", index]
        ann = check.mapping(raw, where, "an annotation")
        image_id = check.integer(ann, "image_id", where)
        if image_id not in images:
            raise check.fail(where + ["image_id"], f"no image with id {image_id}")
        category_id = check.integer(ann, "category_id", where)
        if category_id not in categories:
            raise check.fail(where + ["category_id"], f"no category with id {category_id}")
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise check.fail(where + (["bbox"] if "bbox" in ann else []), "expected bbox [x, y, width, height]")
        box = [check.number(v, where + ["bbox", i]) for i, v in enumerate(bbox)]
        crowd = check.integer(ann, "iscrowd", where, default=0)
        if crowd not in (0, 1):
            raise check.fail(where + ["iscrowd"], f"expected 0 or 1, got {crowd}")
        area = check.number(ann["area"], where + ["area"]) if "area" in ann else box[2] * box[3]
        image = images[image_id]
        segmentation = ann.get("segmentation")
        if include_masks:
            _check_segmentation(check, segmentation, where + ["segmentation"], image)
        image.annotations.append({"index": index, "bbox": box, "category_id": category_id, "iscrowd": crowd,
                                  "area": area, "segmentation": segmentation})

    for index, image in enumerate(images.values()):
        if not image.path.is_file():
            raise check.fail(["images", index, "file_name"], f"image not found: {image.path}")
        width, height = complete_image_size(image.path)
        if (width, height) != (image.width, image.height):
            raise check.fail(["images", index],
                             f"{image.path} is {width}x{height} but the annotation says {image.width}x{image.height}")
    return CocoDataset(path, list(images.values()), categories, len(data["annotations"]))


def _check_segmentation(check: _Checker, segmentation: Any, where: list[str | int], image: CocoImage) -> None:
    if segmentation is None:
        raise check.fail(where[:-1], "no segmentation (set coco_config.include_masks: false for boxes only)")
    if isinstance(segmentation, list):
        if not segmentation:
            raise check.fail(where, "empty polygon list")
        for i, polygon in enumerate(segmentation):
            if (not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in polygon)):
                raise check.fail(where + [i], "expected a polygon [x1, y1, x2, y2, ...] with at least 3 points")
            for j, value in enumerate(polygon):  # json allows NaN and Infinity; pycocotools crashes on them
                check.number(value, where + [i, j])
        return
    if isinstance(segmentation, dict):
        size = segmentation.get("size")
        counts = segmentation.get("counts")
        if size != [image.height, image.width]:
            raise check.fail(where + (["size"] if "size" in segmentation else []),
                             f"RLE size must be [height, width] = [{image.height}, {image.width}], got {size!r}")
        if isinstance(counts, list):
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
                raise check.fail(where + ["counts"], "RLE counts must be non-negative integers")
            if sum(counts) != image.height * image.width:
                raise check.fail(where + ["counts"], f"RLE counts sum to {sum(counts)}, not height*width = "
                                                     f"{image.height * image.width}")
            return
        if isinstance(counts, str) and counts:
            runs = compressed_rle_counts(counts)
            if runs is None or any(r < 0 for r in runs):
                raise check.fail(where + ["counts"], "not a valid compressed RLE string")
            if sum(runs) != image.height * image.width:
                raise check.fail(where + ["counts"], f"RLE counts sum to {sum(runs)}, not height*width = "
                                                     f"{image.height * image.width}")
            return
        raise check.fail(where + (["counts"] if "counts" in segmentation else []),
                         "expected RLE counts (a list of run lengths or a compressed string)")
    raise check.fail(where, "expected polygons or an RLE object")


def compressed_rle_counts(text: str) -> list[int] | None:
    """The run lengths of COCO's compressed RLE string (``None`` when it is not one), so that a damaged string is an
    error at its json field: pycocotools decodes any bytes without complaint. Each run is a little-endian sequence of
    5-bit groups in characters ``chr(48 + group)``, bit 0x20 meaning "more groups follow" and bit 0x10 of the last
    group the sign; from the third run on, a value is the difference to the run two before."""
    runs: list[int] = []
    value = shift = 0
    for char in text:
        group = ord(char) - 48
        if not 0 <= group < 64:
            return None
        value |= (group & 0x1F) << shift
        shift += 5
        if group & 0x20:
            continue
        if group & 0x10:
            value -= 1 << shift
        runs.append(value + (runs[-2] if len(runs) > 2 else 0))
        value = shift = 0
    return runs if shift == 0 else None


# ------------------------------------------------------------------------------------- encoding


def _mask_api() -> Any:
    try:
        from pycocotools import mask as mask_api
    except ImportError:
        raise UnsupportedError("writing COCO masks needs pycocotools (pip install pycocotools), or set "
                               "coco_config.include_masks: false") from None
    return mask_api


def instance_mask(segmentation: Any, height: int, width: int) -> Any:
    """Binary HxW uint8 mask (0/1) of a polygon list or an RLE object."""
    mask_api = _mask_api()
    if isinstance(segmentation, list):
        rle = mask_api.merge(mask_api.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_api.frPyObjects(segmentation, height, width)
    else:
        rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}
    with warnings.catch_warnings():  # pycocotools' numpy-2 "copy keyword" notice, harmless
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_api.decode(rle)


def encode_png_mask(mask: Any) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(mask.astype("uint8"), mode="L").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _image_format(path: Path, data: bytes) -> bytes:
    if data[:3] == b"\xff\xd8\xff":
        return b"jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"png"
    return path.suffix.lstrip(".").lower().encode()


@dataclass
class EncodedImage:
    record: bytes
    classes: list[str]
    skipped: list[dict[str, Any]]


def encode_image_record(image: CocoImage, categories: dict[int, str], encoder: ExampleEncoder,
                        include_masks: bool) -> EncodedImage:
    try:
        data = image.path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read the image: {err.strerror}", location=image.path) from None
    w, h = float(image.width), float(image.height)
    xmin: list[float] = []
    ymin: list[float] = []
    xmax: list[float] = []
    ymax: list[float] = []
    texts: list[bytes] = []
    labels: list[int] = []
    crowd: list[int] = []
    areas: list[float] = []
    masks: list[bytes] = []
    classes: list[str] = []
    skipped: list[dict[str, Any]] = []
    for ann in image.annotations:
        x, y, bw, bh = ann["bbox"]
        name = categories[ann["category_id"]]
        if bw <= 0 or bh <= 0:
            skipped.append({"annotation": ann["index"], "image_id": image.image_id, "class": name,
                            "bbox": [x, y, bw, bh]})
            continue
        xmin.append(min(max(x / w, 0.0), 1.0))
        ymin.append(min(max(y / h, 0.0), 1.0))
        xmax.append(min(max((x + bw) / w, 0.0), 1.0))
        ymax.append(min(max((y + bh) / h, 0.0), 1.0))
        texts.append(name.encode("utf-8"))
        labels.append(ann["category_id"])
        crowd.append(ann["iscrowd"])
        areas.append(ann["area"])
        classes.append(name)
        if include_masks:
            masks.append(encode_png_mask(instance_mask(ann["segmentation"], image.height, image.width)))
    values: list[Any] = [
        [image.height], [image.width], [image.file_name.encode("utf-8")], [str(image.image_id).encode()],
        [hashlib.sha256(data).hexdigest().encode()], [data], [_image_format(image.path, data)],
        xmin, ymin, xmax, ymax, texts, labels, crowd, areas,
    ]
    if include_masks:
        values.append(masks)
    return EncodedImage(encoder.encode_ordered(values), classes, skipped)


# ------------------------------------------------------------------------------------- conversion


def shard_path(output: str, tag: str, shard: int, num_shards: int) -> Path:
    """``<output>-<tag>-00000-of-00010.tfrecord``; inside ``output`` when it is a directory (or ends in ``/``)."""
    name = f"{tag}-{shard:05d}-of-{num_shards:05d}.tfrecord"
    if output.endswith("/") or Path(output).is_dir():
        return Path(output) / name
    return Path(f"{output}-{name}")


def warning_path(output: str) -> Path:
    if output.endswith("/") or Path(output).is_dir():
        return Path(output) / "warning.json"
    return Path(f"{output}_warning.json")


def convert_coco(spec: LoadedSpec[dataset_export_pb2.DatasetExportConfig], output: str, *,
                 fsync: bool = True) -> ConversionResult:
    partitions = resolve_partitions(spec)
    include_masks = spec.message.coco_config.include_masks
    if include_masks:
        _mask_api()  # fail before reading anything when pycocotools is missing
    datasets = []
    for part in partitions:
        dataset = load_coco(part.annotation_file, part.image_dir, include_masks=include_masks)
        LOGGER.info("Num images in %s: %d (%d annotations, %d categories)", part.tag, len(dataset.images),
                    dataset.num_annotations, len(dataset.categories))
        datasets.append(dataset)

    names = [n for n in FEATURES if include_masks or n != "image/object/mask"]
    encoder = ExampleEncoder({n: FEATURES[n] for n in names})
    warning_file = warning_path(output)
    files: list[Path] = []
    counts: list[Counter[str]] = []
    skipped: dict[str, list[dict[str, Any]]] = {}
    earlier = re.compile("|".join(re.escape(shard_path(output, part.tag, 0, 1).name).replace("00000-of-00001", r"\d{5}-of-\d{5}")
                                  for part in partitions))
    with StagedOutputs(warning_file.parent, fsync=fsync, replaces=earlier) as staged, \
            progress_bar(sum(len(d.images) for d in datasets), "Writing tfrecords") as bar:
        for p, (part, dataset) in enumerate(zip(partitions, datasets, strict=True)):
            counter: Counter[str] = Counter()
            for s, shard in enumerate(partition.shard_items(dataset.images, part.num_shards)):
                LOGGER.info("Writing partition %d (%s), shard %d", p, part.tag, s)
                path = shard_path(output, part.tag, s, part.num_shards)
                files.append(path)
                with staged.tfrecord_writer(path) as writer:
                    for image in shard:
                        encoded = encode_image_record(image, dataset.categories, encoder, include_masks)
                        writer.write(encoded.record)
                        counter.update(encoded.classes)
                        if encoded.skipped:
                            skipped.setdefault(str(part.annotation_file), []).extend(encoded.skipped)
                        bar.update(1)
            counts.append(counter)
            log_counts(LOGGER, counter)
        num_skipped = sum(len(v) for v in skipped.values())
        staged.write_text(warning_file, json.dumps({"skipped_boxes": num_skipped, "annotation_files": skipped},
                                                   indent=2) + "\n")
    LOGGER.info("Cumulative object statistics")
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    log_counts(LOGGER, total)
    if num_skipped:
        LOGGER.warning("Skipped %d annotation(s) with an empty box; see %s", num_skipped, warning_file)
    max_id = max((max(d.categories, default=0) for d in datasets), default=0)
    LOGGER.info("For MaskRCNN's data_config use num_classes: %d (largest category id + 1 for the background) and "
                "training_file_pattern / validation_file_pattern matching %s", max_id + 1,
                ", ".join(str(shard_path(output, part.tag, 0, 1)).replace("-00000-of-00001", "*")
                          for part in partitions))
    LOGGER.info("Tfrecords generation complete.")
    folds = [[str(image.image_id) for image in dataset.images] for dataset in datasets]
    return ConversionResult(files, folds, counts, warning_file, num_skipped)
