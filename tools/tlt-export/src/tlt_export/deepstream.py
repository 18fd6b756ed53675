"""``--gen_ds_config``: a template ``nvinfer_config.txt`` and ``labels.txt`` beside the exported model (001).

The config is not a complete nvinfer file: its lines replace the same keys in DeepStream's sample
``config_infer_*.txt``. nvinfer computes ``net-scale-factor * (x - offsets)`` on the image in
``model-color-format`` order, which is how :class:`~tlt_export.calibrate.Preprocessing` is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from libtlt.errors import UnsupportedError
from libtlt.io.atomic import write_text
from tlt_export.calibrate import Preprocessing

CONFIG_NAME = "nvinfer_config.txt"
LABELS_NAME = "labels.txt"
NETWORK_TYPES = {"detector": 0, "classifier": 1, "segmentation": 3}
COLOR_FORMATS = {"rgb": 0, "bgr": 1, "gray": 2}
#: Written instead of the key (the manuals' own placeholder): a config file in plain text must not hold it.
KEY_PLACEHOLDER = "<Model export key>"


def _number(value: float) -> str:
    """103.939 → ``103.939``, 0.0 → ``0``: what a person would type."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def nvinfer_config(preprocessing: Preprocessing, *, key: str, network_type: int, num_classes: int,
                   output_names: Sequence[str], extra: Mapping[str, Any] | None = None) -> str:
    """The text of ``nvinfer_config.txt``; ``tlt-model-key`` is a placeholder (the key is never written
    in plain text: the user fills it in, or DeepStream's config is generated where the key is kept)."""
    scales = set(preprocessing.scale)
    if len(scales) != 1:
        raise UnsupportedError(f"--gen_ds_config: preprocess_mode '{preprocessing.mode}' scales each channel "
                               "differently, which nvinfer's single net-scale-factor cannot express")
    lines = [
        f"net-scale-factor={next(iter(scales))!r}",
        "offsets=" + ";".join(_number(v) for v in preprocessing.offsets),
        f"infer-dims={preprocessing.channels};{preprocessing.height};{preprocessing.width}",
        f"tlt-model-key={KEY_PLACEHOLDER}",
        f"network-type={network_type}",
        f"num-detected-classes={num_classes}",
        "output-blob-names=" + ";".join(output_names),
        f"model-color-format={COLOR_FORMATS[preprocessing.color_format]}",
    ]
    lines += [f"{name}={value}" for name, value in (extra or {}).items()]
    return "\n".join(lines) + "\n"


def write_deepstream_files(output_file: str | Path, preprocessing: Preprocessing, *, key: str, network_type: int,
                           classes: Sequence[str], output_names: Sequence[str],
                           settings: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``nvinfer_config.txt`` and ``labels.txt`` (one class per line, output order) beside ``output_file``.

    ``settings`` (an architecture's ``deepstream_settings``): ``labels`` replaces the label lines (SSD: background
    first), ``num-detected-classes`` the class count, every other key is an extra nvinfer line (the custom parser).
    """
    folder = Path(output_file).resolve().parent
    extra = dict(settings or {})
    labels = [str(v) for v in extra.pop("labels", classes)]
    count = int(extra.pop("num-detected-classes", len(classes)))
    config = nvinfer_config(preprocessing, key=key, network_type=network_type, num_classes=count,
                            output_names=output_names, extra=extra)
    config_path, labels_path = folder / CONFIG_NAME, folder / LABELS_NAME
    write_text(config_path, config)
    write_text(labels_path, "".join(f"{name}\n" for name in labels))
    return config_path, labels_path
