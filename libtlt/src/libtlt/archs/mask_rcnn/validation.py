"""Semantic checks of a MaskRCNN spec (000 §7.9, 004) and the typed values of its string lists.

MaskRCNN writes lists as strings (``learning_rate_steps: "[10000, 15000]"``, ``image_size:
"(832, 1344)"``, ``aspect_ratios: "[(1.0, 1.0), (1.4, 0.7)]"``). :func:`parse_literal` reads such a
string with a small tokenizer (numbers, brackets, parentheses and commas only; never ``eval``), and
the accessors below (:func:`image_size`, :func:`learning_rate_steps`, ...) return typed values or
raise ``ValueError``. :func:`validate` checks the manuals' constraints and raises ``SpecError`` at
the field's ``file:line:column``.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from libtlt.spec import LoadedSpec
from libtlt.spec.protos import mask_rcnn_pb2 as pb

ARCHS = ("resnet",)
N_LAYERS = (10, 18, 34, 50, 101)  # "Currently, MaskRCNN only supports ResNet10/18/34/50/101"
FREEZE_BLOCKS = range(0, 4)  # ResNet: "any subset of [0, 1, 2, 3]"
MIN_IMAGE_SIZE = 128  # 004 "Input Requirement": W >= 128, H >= 128
SIZE_MULTIPLE = 32  # 000 chapter 3: multiples of 32; 004: multiples of 2^max_level
MIN_LEVEL = 2  # the ResNet backbone's first feature level (stride 4)

_TOKEN = re.compile(r"\s*(?:(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<punct>[()\[\],]))")


# ------------------------------------------------------------------------------------ typed values


def parse_literal(text: str) -> Any:
    """A number or a (nested) list of numbers written with ``[]``/``()`` and commas.

    ``"(832, 1344)"`` → ``[832, 1344]``; ``"[(1.0, 1.0), (1.4, 0.7)]"`` → ``[[1.0, 1.0], [1.4, 0.7]]``.
    Integers stay ``int``. Anything else raises ``ValueError``.
    """
    tokens: list[str] = []
    position = 0
    stripped = text.strip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None or match.end() == position:
            raise ValueError(f"unexpected {stripped[position:position + 10]!r} in {text!r}")
        tokens.append(match.group("number") or match.group("punct"))
        position = match.end()
    if not tokens:
        raise ValueError("the value is empty")
    value, used = _parse_value(tokens, 0, text)
    if used != len(tokens):
        raise ValueError(f"unexpected {tokens[used]!r} after the value in {text!r}")
    return value


def _parse_value(tokens: list[str], index: int, text: str) -> tuple[Any, int]:
    if index >= len(tokens):
        raise ValueError(f"{text!r} ends too early")
    token = tokens[index]
    if token in "([":
        closing = ")" if token == "(" else "]"
        items: list[Any] = []
        index += 1
        while index < len(tokens) and tokens[index] != closing:
            item, index = _parse_value(tokens, index, text)
            items.append(item)
            if index < len(tokens) and tokens[index] == ",":
                index += 1
            elif index < len(tokens) and tokens[index] != closing:
                raise ValueError(f"expected ',' or {closing!r}, got {tokens[index]!r} in {text!r}")
        if index >= len(tokens):
            raise ValueError(f"missing {closing!r} in {text!r}")
        return items, index + 1
    if token in ")],":
        raise ValueError(f"unexpected {token!r} in {text!r}")
    number: int | float = int(token) if re.fullmatch(r"[-+]?\d+", token) else float(token)
    return number, index + 1


def _number_list(text: str, kind: type, what: str) -> list[Any]:
    value = parse_literal(text)
    if not isinstance(value, list) or any(isinstance(v, list) for v in value):
        raise ValueError(f"expected a list of {what} like \"[1, 2]\", got {text!r}")
    if kind is int and any(not isinstance(v, int) for v in value):
        raise ValueError(f"expected integers, got {text!r}")
    return [kind(v) for v in value]


def learning_rate_steps(experiment: pb.Experiment) -> list[int]:
    """``"[60000, 80000, 100000]"`` → ``[60000, 80000, 100000]``; ``[]`` when unset."""
    return _number_list(experiment.learning_rate_steps, int, "steps") if experiment.learning_rate_steps else []


def learning_rate_decay_levels(experiment: pb.Experiment) -> list[float]:
    """``"[0.1, 0.02, 0.002]"`` → floats; ``[]`` when unset."""
    text = experiment.learning_rate_decay_levels
    return _number_list(text, float, "decay factors") if text else []


def image_size(data: pb.DataConfig) -> tuple[int, int]:
    """``"(832, 1344)"`` → ``(height, width)``."""
    values = _number_list(data.image_size, int, "integers")
    if len(values) != 2:
        raise ValueError(f"expected \"(height, width)\", got {data.image_size!r}")
    return values[0], values[1]


def freeze_blocks(config: pb.MaskRCNNConfig) -> list[int]:
    """``"[0,1]"`` → ``[0, 1]``; ``[]`` when unset."""
    return _number_list(config.freeze_blocks, int, "block IDs") if config.freeze_blocks else []


def bbox_reg_weights(config: pb.MaskRCNNConfig) -> tuple[float, float, float, float]:
    """``"(10., 10., 5., 5.)"`` → four floats (y, x, h, w weights)."""
    values = _number_list(config.bbox_reg_weights, float, "numbers")
    if len(values) != 4:
        raise ValueError(f"expected four numbers, got {config.bbox_reg_weights!r}")
    return values[0], values[1], values[2], values[3]


def aspect_ratios(config: pb.MaskRCNNConfig) -> list[tuple[float, float]]:
    """``"[(1.0, 1.0), (1.4, 0.7)]"`` → ``[(1.0, 1.0), (1.4, 0.7)]``."""
    value = parse_literal(config.aspect_ratios)
    if not isinstance(value, list) or not all(isinstance(v, list) and len(v) == 2 for v in value):
        raise ValueError(f"expected a list of (x, y) pairs like \"[(1.0, 1.0)]\", got {config.aspect_ratios!r}")
    if any(isinstance(x, list) for pair in value for x in pair):
        raise ValueError(f"expected numbers in each pair, got {config.aspect_ratios!r}")
    return [(float(a), float(b)) for a, b in value]


# -------------------------------------------------------------------------------------- validation


def validate(spec: LoadedSpec[pb.Experiment]) -> None:
    """Raise ``SpecError`` at the first setting outside the manuals' supported values."""
    exp = spec.message
    config = exp.maskrcnn_config
    _validate_model(spec, config)
    _validate_schedule(spec, exp)
    if exp.HasField("data_config"):
        _validate_data(spec, exp.data_config, config)
    if exp.HasField("skip_checkpoint_variables"):
        try:
            re.compile(exp.skip_checkpoint_variables)
        except re.error as err:
            raise spec.error("skip_checkpoint_variables", f"not a valid regular expression: {err}") from None


def _parsed(spec: LoadedSpec[pb.Experiment], path: str, parse: Any, *args: Any) -> Any:
    try:
        return parse(*args)
    except ValueError as err:
        raise spec.error(path, str(err)) from None


def _validate_model(spec: LoadedSpec[pb.Experiment], config: pb.MaskRCNNConfig) -> None:
    p = "maskrcnn_config"
    if config.arch not in ARCHS:
        raise spec.error(f"{p}.arch", f"MaskRCNN supports only the ResNet backbone (arch: \"resnet\"), "
                                      f"got {config.arch!r}")
    if config.nlayers not in N_LAYERS:
        raise spec.error(f"{p}.nlayers", f"must be one of {', '.join(map(str, N_LAYERS))}, got {config.nlayers}")
    for block in _parsed(spec, f"{p}.freeze_blocks", freeze_blocks, config):
        if block not in FREEZE_BLOCKS:
            raise spec.error(f"{p}.freeze_blocks", f"ResNet block IDs valid for freezing are 0-3, got {block}")
    for field in ("gt_mask_size", "rpn_batch_size_per_im", "batch_size_per_im", "fast_rcnn_mlp_head_dim",
                  "mrcnn_resolution", "train_rpn_pre_nms_topn", "train_rpn_post_nms_topn",
                  "test_detections_per_image", "test_rpn_pre_nms_topn", "test_rpn_post_nms_topn", "num_scales",
                  "anchor_scale"):
        if getattr(config, field) <= 0:
            raise spec.error(f"{p}.{field}", f"must be > 0, got {getattr(config, field)}")
    for field in ("rpn_positive_overlap", "rpn_negative_overlap", "fg_thresh", "bg_thresh_hi", "bg_thresh_lo"):
        value = getattr(config, field)
        if not 0.0 <= value <= 1.0:
            raise spec.error(f"{p}.{field}", f"must be in [0, 1], got {value:g}")
    if config.rpn_negative_overlap > config.rpn_positive_overlap:
        raise spec.error(f"{p}.rpn_negative_overlap", f"must not exceed rpn_positive_overlap "
                                                      f"({config.rpn_positive_overlap:g}), "
                                                      f"got {config.rpn_negative_overlap:g}")
    if config.bg_thresh_lo > config.bg_thresh_hi:
        raise spec.error(f"{p}.bg_thresh_lo", f"must not exceed bg_thresh_hi ({config.bg_thresh_hi:g}), "
                                              f"got {config.bg_thresh_lo:g}")
    for field in ("rpn_fg_fraction", "fg_fraction"):
        value = getattr(config, field)
        if not 0.0 < value <= 1.0:
            raise spec.error(f"{p}.{field}", f"must be in (0, 1], got {value:g}")
    for field in ("train_rpn_nms_threshold", "test_nms", "test_rpn_nms_thresh"):
        value = getattr(config, field)
        if not 0.0 < value < 1.0:
            raise spec.error(f"{p}.{field}", f"must be in (0, 1), got {value:g}")
    for field in ("rpn_min_size", "rpn_box_loss_weight", "fast_rcnn_box_loss_weight", "mrcnn_weight_loss_mask"):
        if getattr(config, field) < 0:
            raise spec.error(f"{p}.{field}", f"must be >= 0, got {getattr(config, field):g}")
    if not config.include_mask:
        raise spec.error(f"{p}.include_mask", "only include_mask: True is supported")
    weights = _parsed(spec, f"{p}.bbox_reg_weights", bbox_reg_weights, config)
    if any(w <= 0 for w in weights):
        raise spec.error(f"{p}.bbox_reg_weights", f"weights must be > 0, got {config.bbox_reg_weights!r}")
    if config.min_level < MIN_LEVEL:
        raise spec.error(f"{p}.min_level", f"the ResNet feature pyramid starts at level {MIN_LEVEL}, "
                                           f"got {config.min_level}")
    if config.max_level <= config.min_level:
        raise spec.error(f"{p}.max_level", f"must be greater than min_level ({config.min_level}), "
                                           f"got {config.max_level}")
    ratios = _parsed(spec, f"{p}.aspect_ratios", aspect_ratios, config)
    if not ratios or any(a <= 0 or b <= 0 for a, b in ratios):
        raise spec.error(f"{p}.aspect_ratios", f"needs at least one pair of positive numbers, "
                                               f"got {config.aspect_ratios!r}")


def _validate_schedule(spec: LoadedSpec[pb.Experiment], exp: pb.Experiment) -> None:
    for field in ("train_batch_size", "eval_batch_size", "total_steps", "num_steps_per_eval"):
        if exp.HasField(field) and getattr(exp, field) <= 0:
            raise spec.error(field, f"must be > 0, got {getattr(exp, field)}")
    if exp.HasField("total_steps") and exp.warmup_steps > exp.total_steps:
        raise spec.error("warmup_steps", f"must not exceed total_steps ({exp.total_steps}), got {exp.warmup_steps}")
    if not 0.0 <= exp.momentum < 1.0:
        raise spec.error("momentum", f"must be in [0, 1), got {exp.momentum:g}")
    for field in ("l1_weight_decay", "l2_weight_decay", "warmup_learning_rate", "global_gradient_clip_ratio"):
        if getattr(exp, field) < 0:
            raise spec.error(field, f"must be >= 0, got {getattr(exp, field):g}")
    if exp.HasField("init_learning_rate") and exp.init_learning_rate <= 0:
        raise spec.error("init_learning_rate", f"must be > 0, got {exp.init_learning_rate:g}")
    steps = _parsed(spec, "learning_rate_steps", learning_rate_steps, exp)
    levels = _parsed(spec, "learning_rate_decay_levels", learning_rate_decay_levels, exp)
    if any(s <= 0 for s in steps) or any(b <= a for a, b in itertools.pairwise(steps)):
        raise spec.error("learning_rate_steps", f"steps must be positive and increasing, got {steps}")
    if exp.HasField("total_steps") and steps and steps[-1] > exp.total_steps:
        raise spec.error("learning_rate_steps", f"step {steps[-1]} is after total_steps ({exp.total_steps})")
    if any(level <= 0 for level in levels):
        raise spec.error("learning_rate_decay_levels", f"decay factors must be > 0, got {levels}")
    if len(levels) != len(steps):
        raise spec.error("learning_rate_decay_levels", f"needs one decay factor per learning_rate_steps entry "
                                                       f"({len(steps)}), got {len(levels)}")


def _validate_data(spec: LoadedSpec[pb.Experiment], data: pb.DataConfig, config: pb.MaskRCNNConfig) -> None:
    p = "data_config"
    if not data.image_size:
        raise spec.error(f"{p}.image_size", 'image_size is required, e.g. "(832, 1344)"')
    height, width = _parsed(spec, f"{p}.image_size", image_size, data)
    if height < MIN_IMAGE_SIZE or width < MIN_IMAGE_SIZE:
        raise spec.error(f"{p}.image_size", f"height and width must be >= {MIN_IMAGE_SIZE}, got {height}x{width}")
    multiple = max(SIZE_MULTIPLE, 2 ** config.max_level)
    if height % multiple or width % multiple:
        raise spec.error(f"{p}.image_size", f"height and width must be multiples of {multiple} "
                                            f"(2^max_level with max_level {config.max_level}, and of 32), "
                                            f"got {height}x{width}")
    if data.num_classes < 2:
        raise spec.error(f"{p}.num_classes", f"must be the number of categories + 1 (background), "
                                             f"so at least 2, got {data.num_classes}")
    for field in ("shuffle_buffer_size", "n_workers", "max_num_instances"):
        if getattr(data, field) <= 0:
            raise spec.error(f"{p}.{field}", f"must be > 0, got {getattr(data, field)}")
    for field in ("eval_samples", "prefetch_buffer_size"):
        if data.HasField(field) and getattr(data, field) <= 0:
            raise spec.error(f"{p}.{field}", f"must be > 0, got {getattr(data, field)}")
