"""Typed values from spec fields, and the range checks shared by the detection validators.

Some fields hold lists inside strings, exactly as the manuals print them (SSD's
``aspect_ratios_global: "[1.0, 2.0, 0.5, 3.0, 1.0/3.0]"``, YOLOv3's
``big_anchor_shape: "[ (116,90), (156,198), (373,326) ]"``). :func:`parse_value` reads them with a
small grammar — numbers, ``+ - * /``, ``[...]`` lists and ``(...)`` tuples — and never evaluates code.

The ``check_*`` functions raise ``spec.error(field, message)`` (a ``SpecError`` naming
``file:line:column`` and the field) for the "Supported Values" of messages in common.proto, so each
architecture's ``validation.py`` only adds what is specific to it. Pure Python; no TensorFlow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

from libtlt.spec import backbones
from libtlt.spec.loader import LoadedSpec

Value: TypeAlias = "float | list[Value] | tuple[Value, ...]"

# ------------------------------------------------------------------------------------- list strings

_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<punct>[\[\](),*/+-]))"
)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if match is None:
                bad = text[pos:].lstrip()[0]
                raise ValueError(f"unexpected {bad!r} at character {len(text) - len(text[pos:].lstrip()) + 1}")
            kind = "number" if match.group("number") else "punct"
            self.tokens.append((kind, match.group(kind), match.start(kind) + 1))
            pos = match.end()
        self.index = 0

    def peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str, int]:
        if self.index >= len(self.tokens):
            raise ValueError(f"unexpected end of {self.text!r}" + (f", expected {expected!r}" if expected else ""))
        token = self.tokens[self.index]
        if expected is not None and token[1] != expected:
            raise ValueError(f"expected {expected!r} at character {token[2]}, got {token[1]!r}")
        self.index += 1
        return token

    def value(self) -> Value:
        if self.peek() in ("[", "("):
            return self.sequence()
        return self.product()

    def sequence(self) -> Value:
        opener = self.take()[1]
        closer = "]" if opener == "[" else ")"
        items: list[Value] = []
        trailing_comma = False
        while self.peek() != closer:
            items.append(self.value())
            trailing_comma = False
            if self.peek() == ",":
                self.take()
                trailing_comma = True
            elif self.peek() != closer:
                token = self.take()
                raise ValueError(f"expected ',' or {closer!r} at character {token[2]}, got {token[1]!r}")
        self.take(closer)
        if opener == "[":
            return items
        if len(items) == 1 and not trailing_comma:
            return items[0]  # "(2.0)" is a parenthesized number, as in Python
        return tuple(items)

    def product(self) -> float:
        result = self.signed()
        while self.peek() in ("*", "/"):
            operator = self.take()[1]
            operand = self.signed()
            if operator == "*":
                result *= operand
            elif operand == 0:
                raise ValueError(f"division by zero in {self.text!r}")
            else:
                result /= operand
        return result

    def signed(self) -> float:
        if self.peek() in ("+", "-"):
            sign = -1.0 if self.take()[1] == "-" else 1.0
            return sign * self.signed()
        if self.peek() == "(":
            grouped = self.sequence()
            if not isinstance(grouped, float):
                raise ValueError(f"expected a number, got {grouped!r}")
            return grouped
        kind, text, column = self.take()
        if kind != "number":
            raise ValueError(f"expected a number at character {column}, got {text!r}")
        return float(text)


def parse_value(text: str) -> Value:
    """Parse a list string: ``"[1.0, 2.0, 1.0/3.0]"`` → ``[1.0, 2.0, 0.333…]``; ``ValueError`` if malformed."""
    parser = _Parser(text)
    if not parser.tokens:
        raise ValueError("empty value")
    result = parser.value()
    if parser.peek() is not None:
        _, extra, column = parser.take()
        raise ValueError(f"unexpected {extra!r} at character {column}")
    return result


def _numbers(items: Iterable[Value], what: str) -> list[float]:
    out = []
    for item in items:
        if not isinstance(item, float):
            raise ValueError(f"{what} must hold numbers, got {_show(item)}")
        out.append(item)
    return out


def _show(value: Value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    inner = ", ".join(_show(v) for v in value)
    return f"[{inner}]" if isinstance(value, list) else f"({inner})"


def parse_float_list(text: str) -> list[float]:
    """A 1-d list of numbers, e.g. SSD ``scales`` or ``aspect_ratios_global``.

    The manuals' tables print some of these wrapped once more (``"[[1.0, 2.0, 0.5, 3.0, 0.33]]"``);
    a list holding exactly one list is read as that inner list.
    """
    value = parse_value(text)
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if not isinstance(value, list):
        raise ValueError(f"expected a list like [1.0, 2.0], got {_show(value)}")
    return _numbers(value, "the list")


def parse_float_lists(text: str) -> list[list[float]]:
    """A list of lists of numbers, e.g. SSD ``aspect_ratios`` (one inner list per prediction layer)."""
    value = parse_value(text)
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list) and value[0] \
            and all(isinstance(v, list) for v in value[0]):
        value = value[0]
    if not isinstance(value, list) or not all(isinstance(v, list) for v in value):
        raise ValueError(f"expected a list of lists like [[1.0, 2.0], [1.0, 0.5]], got {_show(value)}")
    return [_numbers(inner, "each inner list") for inner in value]  # type: ignore[arg-type]


def parse_pairs(text: str) -> list[tuple[float, float]]:
    """A list of (a, b) pairs, e.g. YOLOv3 ``big_anchor_shape: "[ (116,90), (156,198) ]"`` (width, height)."""
    value = parse_value(text)
    if not isinstance(value, list):
        raise ValueError(f"expected a list of (width, height) pairs, got {_show(value)}")
    pairs = []
    for item in value:
        if isinstance(item, float) or len(item) != 2:
            raise ValueError(f"expected (width, height) pairs, got {_show(item)}")
        a, b = _numbers(item, "each pair")
        pairs.append((a, b))
    return pairs


def parse_steps(text: str) -> list[tuple[float, float]]:
    """SSD ``steps``: one float or one [vertical, horizontal] pair per layer → (vertical, horizontal)."""
    value = parse_value(text)
    if not isinstance(value, list):
        raise ValueError(f"expected a list of steps, got {_show(value)}")
    steps = []
    for item in value:
        if isinstance(item, float):
            steps.append((item, item))
        elif len(item) == 2:
            vertical, horizontal = _numbers(item, "each step pair")
            steps.append((vertical, horizontal))
        else:
            raise ValueError(f"each step is a number or a [vertical, horizontal] pair, got {_show(item)}")
    return steps


# ------------------------------------------------------------------------------- proto dictionaries


def entries_to_dict(entries: Iterable[Any]) -> dict[str, Any]:
    """Repeated ``{key value}`` messages (the manuals' proto dictionaries) → dict in written order."""
    return {entry.key: entry.value for entry in entries}


def class_mapping(dataset_config: Any) -> dict[str, str]:
    """``dataset_config.target_class_mapping`` as {class in the tfrecords: class the network learns}."""
    return entries_to_dict(dataset_config.target_class_mapping)


def target_classes(dataset_config: Any) -> list[str]:
    """The classes the network learns: the distinct mapping values, in the order first written."""
    return list(dict.fromkeys(entry.value for entry in dataset_config.target_class_mapping))


# ------------------------------------------------------------------------------------- range checks


def check_range(spec: LoadedSpec[Any], field: str, value: float, low: float | None = None,
                high: float | None = None, *, low_open: bool = False, high_open: bool = False) -> None:
    """Raise a SpecError for ``field`` unless ``value`` lies in the (closed unless *_open) interval."""
    ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return
    if low is not None and high is not None:
        expected = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        expected = f"{'>' if low_open else '>='} {low:g}"
    else:
        expected = f"{'<' if high_open else '<='} {high:g}"
    raise spec.error(field, f"must be {expected}, got {value:g}")


def check_probability(spec: LoadedSpec[Any], field: str, value: float) -> None:
    check_range(spec, field, value, 0.0, 1.0)


def check_unique(spec: LoadedSpec[Any], field: str, names: Sequence[str], what: str = "key") -> None:
    """Raise for the second occurrence of a name in a repeated field (``field[i]`` locates it)."""
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise spec.error(f"{field}[{index}]", f"duplicate {what} {name!r}")
        seen.add(name)


def check_known_classes(spec: LoadedSpec[Any], field: str, keys: Sequence[str], classes: Sequence[str],
                        *, complete: bool, extra: Sequence[str] = ()) -> None:
    """Keys of a per-class dictionary must be target classes (and cover all of them when ``complete``)."""
    check_unique(spec, field, keys)
    known = list(classes)
    for index, key in enumerate(keys):
        if key not in known and key not in extra:
            raise spec.error(f"{field}[{index}].key",
                             f"{key!r} is not a target class of dataset_config.target_class_mapping "
                             f"({', '.join(known) or 'none'})")
    if complete:
        missing = [c for c in known if c not in keys]
        if missing:
            raise spec.error(field, f"no entry for target class(es) {', '.join(missing)}")


def check_training_config(spec: LoadedSpec[Any]) -> None:
    """000 §7.2.5 / §7.4.1: batch size, epochs, soft-start annealing schedule, regularizer, optimizer."""
    message = spec.message
    if not message.HasField("training_config"):
        raise spec.error("training_config", "training_config is required")
    config = message.training_config
    if config.batch_size_per_gpu < 1:
        raise spec.error("training_config.batch_size_per_gpu", f"must be > 0, got {config.batch_size_per_gpu}")
    if config.num_epochs < 1:
        raise spec.error("training_config.num_epochs", f"must be > 0, got {config.num_epochs}")
    if config.HasField("checkpoint_interval"):
        check_range(spec, "training_config.checkpoint_interval", config.checkpoint_interval, 0, config.num_epochs)
    if not config.learning_rate.HasField("soft_start_annealing_schedule"):
        raise spec.error("training_config.learning_rate",
                         "learning_rate needs a soft_start_annealing_schedule (the only supported schedule)")
    schedule = config.learning_rate.soft_start_annealing_schedule
    prefix = "training_config.learning_rate.soft_start_annealing_schedule"
    check_range(spec, f"{prefix}.min_learning_rate", schedule.min_learning_rate, 0.0, low_open=True)
    check_range(spec, f"{prefix}.max_learning_rate", schedule.max_learning_rate, 0.0, low_open=True)
    if schedule.min_learning_rate > schedule.max_learning_rate:
        raise spec.error(f"{prefix}.min_learning_rate",
                         f"must be <= max_learning_rate ({schedule.max_learning_rate:g}), "
                         f"got {schedule.min_learning_rate:g}")
    check_probability(spec, f"{prefix}.soft_start", schedule.soft_start)
    check_probability(spec, f"{prefix}.annealing", schedule.annealing)
    if schedule.soft_start >= schedule.annealing:
        raise spec.error(f"{prefix}.annealing",
                         f"must be greater than soft_start ({schedule.soft_start:g}), got {schedule.annealing:g}")
    check_range(spec, "training_config.regularizer.weight", config.regularizer.weight, 0.0)
    optimizer = config.optimizer
    kind = optimizer.WhichOneof("optimizer")
    if kind == "adam":
        check_range(spec, "training_config.optimizer.adam.epsilon", optimizer.adam.epsilon, 0.0, low_open=True)
        check_range(spec, "training_config.optimizer.adam.beta1", optimizer.adam.beta1, 0.0, 1.0, high_open=True)
        check_range(spec, "training_config.optimizer.adam.beta2", optimizer.adam.beta2, 0.0, 1.0, high_open=True)
    elif kind == "sgd":
        check_range(spec, "training_config.optimizer.sgd.momentum", optimizer.sgd.momentum, 0.0)
    elif kind == "rmsprop":
        check_range(spec, "training_config.optimizer.rmsprop.rho", optimizer.rmsprop.rho, 0.0, 1.0, high_open=True)
        check_range(spec, "training_config.optimizer.rmsprop.momentum", optimizer.rmsprop.momentum, 0.0)
        check_range(spec, "training_config.optimizer.rmsprop.epsilon", optimizer.rmsprop.epsilon, 0.0,
                    low_open=True)


def check_augmentation_config(spec: LoadedSpec[Any], *, min_width: int, min_height: int, multiple: int) -> None:
    """000 §7.2.6 preprocessing / spatial / colour ranges; input size rules from chapter 3."""
    message = spec.message
    pre = message.augmentation_config.preprocessing
    prefix = "augmentation_config.preprocessing"
    for name, minimum in (("output_image_width", min_width), ("output_image_height", min_height)):
        field = f"{prefix}.{name}"
        if not pre.HasField(name):
            raise spec.error(field, f"{name} is required (the network input size)")
        size = getattr(pre, name)
        if size < minimum:
            raise spec.error(field, f"must be >= {minimum}, got {size}")
        if size % multiple:
            raise spec.error(field, f"must be a multiple of {multiple}, got {size}")
    width, height = pre.output_image_width, pre.output_image_height
    if pre.output_image_channel not in (1, 3):
        raise spec.error(f"{prefix}.output_image_channel", f"must be 1 or 3, got {pre.output_image_channel}")
    check_range(spec, f"{prefix}.min_bbox_width", pre.min_bbox_width, 0.0, width)
    check_range(spec, f"{prefix}.min_bbox_height", pre.min_bbox_height, 0.0, height)
    for name in ("crop_left", "crop_right", "crop_top", "crop_bottom"):
        check_range(spec, f"{prefix}.{name}", getattr(pre, name), 0)
    if pre.crop_right and pre.crop_left >= pre.crop_right:
        raise spec.error(f"{prefix}.crop_right",
                         f"must be greater than crop_left ({pre.crop_left}), got {pre.crop_right}")
    if pre.crop_bottom and pre.crop_top >= pre.crop_bottom:
        raise spec.error(f"{prefix}.crop_bottom",
                         f"must be greater than crop_top ({pre.crop_top}), got {pre.crop_bottom}")
    for name in ("scale_height", "scale_width"):
        if pre.HasField(name):
            check_range(spec, f"{prefix}.{name}", getattr(pre, name), 0.0, low_open=True)

    spatial = message.augmentation_config.spatial_augmentation
    prefix = "augmentation_config.spatial_augmentation"
    check_probability(spec, f"{prefix}.hflip_probability", spatial.hflip_probability)
    check_probability(spec, f"{prefix}.vflip_probability", spatial.vflip_probability)
    check_range(spec, f"{prefix}.zoom_min", spatial.zoom_min, 0.0, low_open=True)
    check_range(spec, f"{prefix}.zoom_max", spatial.zoom_max, 0.0, low_open=True)
    if spatial.zoom_min > spatial.zoom_max:
        raise spec.error(f"{prefix}.zoom_max", f"must be >= zoom_min ({spatial.zoom_min:g}), got {spatial.zoom_max:g}")
    check_range(spec, f"{prefix}.translate_max_x", spatial.translate_max_x, 0.0, width)
    check_range(spec, f"{prefix}.translate_max_y", spatial.translate_max_y, 0.0, height)
    check_range(spec, f"{prefix}.rotate_rad_max", spatial.rotate_rad_max, 0.0)
    check_probability(spec, f"{prefix}.zoom_out_probability", spatial.zoom_out_probability)
    check_range(spec, f"{prefix}.zoom_out_max_scale", spatial.zoom_out_max_scale, 1.0)
    check_probability(spec, f"{prefix}.iou_crop_probability", spatial.iou_crop_probability)

    color = message.augmentation_config.color_augmentation
    prefix = "augmentation_config.color_augmentation"
    check_probability(spec, f"{prefix}.color_shift_stddev", color.color_shift_stddev)
    check_range(spec, f"{prefix}.hue_rotation_max", color.hue_rotation_max, 0.0, 360.0)
    check_probability(spec, f"{prefix}.saturation_shift_max", color.saturation_shift_max)
    check_probability(spec, f"{prefix}.contrast_scale_max", color.contrast_scale_max)
    check_probability(spec, f"{prefix}.contrast_center", color.contrast_center)


IMAGE_EXTENSIONS = ("jpg", "jpeg", "png")


def check_dataset_config(spec: LoadedSpec[Any]) -> list[str]:
    """000 §7.2.8: data sources, image extension, class mapping, validation split; returns the classes."""
    message = spec.message
    if not message.HasField("dataset_config"):
        raise spec.error("dataset_config", "dataset_config is required")
    config = message.dataset_config
    if not config.data_sources:
        raise spec.error("dataset_config.data_sources", "at least one data_sources entry is required")
    sources = [(f"dataset_config.data_sources[{i}]", s) for i, s in enumerate(config.data_sources)]
    if config.HasField("validation_data_source"):
        sources.append(("dataset_config.validation_data_source", config.validation_data_source))
    for field, source in sources:
        for name in ("tfrecords_path", "image_directory_path"):
            if not getattr(source, name).strip():
                raise spec.error(f"{field}.{name}", f"{name} is required")
    if config.image_extension.lower() not in IMAGE_EXTENSIONS:
        raise spec.error("dataset_config.image_extension",
                         f"must be one of {', '.join(IMAGE_EXTENSIONS)}, got {config.image_extension!r}")
    if not config.target_class_mapping:
        raise spec.error("dataset_config.target_class_mapping", "at least one target_class_mapping is required")
    for index, entry in enumerate(config.target_class_mapping):
        for name in ("key", "value"):
            if not getattr(entry, name).strip():
                raise spec.error(f"dataset_config.target_class_mapping[{index}].{name}", f"{name} must not be empty")
    check_unique(spec, "dataset_config.target_class_mapping", [e.key for e in config.target_class_mapping],
                 "source class")
    if config.HasField("validation_fold") and config.HasField("validation_data_source"):
        raise spec.error("dataset_config.validation_fold",
                         "use either validation_fold or validation_data_source, not both "
                         "(remove validation_fold when validating on a separate data source)")
    return target_classes(config)


def check_eval_config(spec: LoadedSpec[Any]) -> None:
    """000 §7.4.2 eval_config of SSD, DSSD, RetinaNet and YOLOv3."""
    config = spec.message.eval_config
    period = config.validation_period_during_training
    if not 1 <= period <= spec.message.training_config.num_epochs:
        raise spec.error("eval_config.validation_period_during_training",
                         f"must be in [1, num_epochs ({spec.message.training_config.num_epochs})], got {period}")
    if config.HasField("batch_size") and config.batch_size < 1:
        raise spec.error("eval_config.batch_size", f"must be > 0, got {config.batch_size}")
    check_range(spec, "eval_config.matching_iou_threshold", config.matching_iou_threshold, 0.0, 1.0, low_open=True)


def check_nms_config(spec: LoadedSpec[Any]) -> None:
    """000 §7.4.3 nms_config of SSD, DSSD, RetinaNet and YOLOv3."""
    config = spec.message.nms_config
    check_probability(spec, "nms_config.confidence_threshold", config.confidence_threshold)
    check_range(spec, "nms_config.clustering_iou_threshold", config.clustering_iou_threshold, 0.0, 1.0, low_open=True)
    if config.top_k < 1:
        raise spec.error("nms_config.top_k", f"must be > 0, got {config.top_k}")


def check_backbone(spec: LoadedSpec[Any], prefix: str, config: Any, supported: tuple[str, ...],
                   *, depth_field: str = "nlayers", strict_depth: bool = True) -> None:
    """``arch`` supported, depth valid for it, ``freeze_blocks`` IDs valid for it.

    ``strict_depth``: the SSD family's ``nlayers`` "should just be deleted" for archs without depths,
    and is required for those with; DetectNet_v2's ``num_layers`` has a default and is ignored there.
    """
    try:
        entry = backbones.backbone(config.arch, supported)
    except ValueError as err:
        raise spec.error(f"{prefix}.arch", str(err)) from None
    depth_written = config.HasField(depth_field)
    depth = getattr(config, depth_field)
    if entry.depths:
        if strict_depth and not depth_written:
            raise spec.error(f"{prefix}.{depth_field}",
                             f"{depth_field} is required for {entry.arch} ({', '.join(map(str, entry.depths))})")
        try:
            backbones.check_depth(entry.arch, depth)
        except ValueError as err:
            raise spec.error(f"{prefix}.{depth_field}", str(err)) from None
    elif strict_depth and depth_written:
        raise spec.error(f"{prefix}.{depth_field}", f"{entry.arch} has no {depth_field} setting; remove it")
    check_freeze_blocks(spec, f"{prefix}.freeze_blocks", entry.arch, config.freeze_blocks)


def check_freeze_blocks(spec: LoadedSpec[Any], field: str, arch: str, blocks: Iterable[float]) -> None:
    seen: set[float] = set()
    for index, block in enumerate(blocks):
        try:
            backbones.check_freeze_block(arch, block)
        except ValueError as err:
            raise spec.error(f"{field}[{index}]", str(err)) from None
        if block in seen:
            raise spec.error(f"{field}[{index}]", f"block {block:g} is listed twice")
        seen.add(block)


def check_anchor_config(spec: LoadedSpec[Any], prefix: str, config: Any, num_layers: int) -> None:
    """SSD / DSSD / RetinaNet anchors (000 §7.5.6): aspect ratios, scales, variances, steps, offsets, loss."""
    has_global, has_per_layer = config.HasField("aspect_ratios_global"), config.HasField("aspect_ratios")
    if has_global == has_per_layer:
        raise spec.error(f"{prefix}.aspect_ratios" if has_per_layer else prefix,
                         "exactly one of aspect_ratios_global and aspect_ratios is required")
    if has_global:
        ratios = parse_field(spec, f"{prefix}.aspect_ratios_global", config.aspect_ratios_global, parse_float_list)
        _check_positive_list(spec, f"{prefix}.aspect_ratios_global", ratios, "aspect ratios")
    else:
        layers = parse_field(spec, f"{prefix}.aspect_ratios", config.aspect_ratios, parse_float_lists)
        if len(layers) != num_layers:
            raise spec.error(f"{prefix}.aspect_ratios",
                             f"needs one list per prediction layer ({num_layers}), got {len(layers)}")
        for inner in layers:
            _check_positive_list(spec, f"{prefix}.aspect_ratios", inner, "aspect ratios")

    has_scales = config.HasField("scales")
    has_min, has_max = config.HasField("min_scale"), config.HasField("max_scale")
    if has_scales and (has_min or has_max):
        raise spec.error(f"{prefix}.min_scale" if has_min else f"{prefix}.max_scale",
                         "use either scales or min_scale and max_scale, not both")
    if has_scales:
        scales = parse_field(spec, f"{prefix}.scales", config.scales, parse_float_list)
        if len(scales) != num_layers + 1:
            raise spec.error(f"{prefix}.scales",
                             f"needs {num_layers + 1} values (one per prediction layer plus one), got {len(scales)}")
        _check_positive_list(spec, f"{prefix}.scales", scales, "scales")
    elif has_min and has_max:
        check_range(spec, f"{prefix}.min_scale", config.min_scale, 0.0, low_open=True)
        if config.max_scale <= config.min_scale:
            raise spec.error(f"{prefix}.max_scale",
                             f"must be greater than min_scale ({config.min_scale:g}), got {config.max_scale:g}")
    elif has_min:
        raise spec.error(f"{prefix}.min_scale", "min_scale needs max_scale (or give scales instead)")
    elif has_max:
        raise spec.error(f"{prefix}.max_scale", "max_scale needs min_scale (or give scales instead)")
    else:
        raise spec.error(f"{prefix}.scales", "scales, or both min_scale and max_scale, are required")

    if config.HasField("variances"):
        variances = parse_field(spec, f"{prefix}.variances", config.variances, parse_float_list)
        if len(variances) != 4:
            raise spec.error(f"{prefix}.variances", f"needs 4 values, got {len(variances)}")
        _check_positive_list(spec, f"{prefix}.variances", variances, "variances")
    if config.HasField("steps"):
        steps = parse_field(spec, f"{prefix}.steps", config.steps, parse_steps)
        if len(steps) != num_layers:
            raise spec.error(f"{prefix}.steps", f"needs one step per prediction layer ({num_layers}), got {len(steps)}")
        _check_positive_list(spec, f"{prefix}.steps", [v for pair in steps for v in pair], "steps")
    if config.HasField("offsets"):
        offsets = parse_field(spec, f"{prefix}.offsets", config.offsets, parse_float_list)
        if len(offsets) != num_layers:
            raise spec.error(f"{prefix}.offsets",
                             f"needs one offset per prediction layer ({num_layers}), got {len(offsets)}")
        for value in offsets:
            check_range(spec, f"{prefix}.offsets", value, 0.0, 1.0)
    check_range(spec, f"{prefix}.loss_loc_weight", config.loss_loc_weight, 0.0, low_open=True)
    check_probability(spec, f"{prefix}.focal_loss_alpha", config.focal_loss_alpha)
    check_range(spec, f"{prefix}.focal_loss_gamma", config.focal_loss_gamma, 0.0)


def parse_field(spec: LoadedSpec[Any], field: str, text: str, parser: Any) -> Any:
    """Run a list-string parser, turning its ValueError into a SpecError at ``field``."""
    try:
        return parser(text)
    except ValueError as err:
        raise spec.error(field, f"cannot read {text!r}: {err}") from None


def _check_positive_list(spec: LoadedSpec[Any], field: str, values: Iterable[float], what: str) -> None:
    for value in values:
        if not (math.isfinite(value) and value > 0):
            raise spec.error(field, f"{what} must be positive, got {value:g}")
