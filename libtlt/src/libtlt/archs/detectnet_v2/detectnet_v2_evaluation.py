"""What ``tlt-evaluate`` asks of DetectNet_v2 beyond the generic box-detector path: the evaluated batches
(validation fold or ``validation_data_source``; with ``--use_training_set`` the training records, then the
validation ones) and the data checks with TLT's class-map warning.
"""

from __future__ import annotations

import glob
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from libtlt.errors import DataError
from libtlt.log import get_logger

logger = get_logger("libtlt.archs.detectnet_v2")


def evaluation_batches(spec: Any, *, use_training_set: bool, batch_size: int) -> Iterator[tuple[np.ndarray, list[Any]]]:
    """The validation batches, or the training batches followed by the validation ones."""
    from libtlt.archs.detectnet_v2.architecture import class_names, eval_dataset
    from libtlt.archs.detectnet_v2.detectnet_v2_data import split_frames

    if not use_training_set:
        yield from eval_dataset(spec, batch_size=batch_size)
        return
    yield from eval_dataset(spec, use_training_set=True, batch_size=batch_size)
    if split_frames(spec, class_names(spec))[1]:
        yield from eval_dataset(spec, batch_size=batch_size)


def record_class_counts(spec: Any) -> Counter[str]:
    """Objects per class name (lower case, before target_class_mapping) in every record of dataset_config."""
    from libtlt.io.example import decode_example
    from libtlt.io.tfrecord import read_records

    config = spec.message.dataset_config
    sources = [*config.data_sources, *([config.validation_data_source] if config.HasField("validation_data_source")
                                       else [])]
    counts: Counter[str] = Counter()
    for source in sources:
        for path in sorted(glob.glob(source.tfrecords_path)):
            if not Path(path).is_file() or path.endswith(".json"):
                continue
            for data in read_records(path):
                names = decode_example(data, source=path).get("target/object_class", [])
                counts.update(n.decode("utf-8").lower() if isinstance(n, bytes) else str(n).lower() for n in names)
    return counts


def check_evaluation_data(spec: Any, classes: Sequence[str], use_training_set: bool) -> None:
    """Warn, with the class map, about target_class_mapping classes that no record holds and about target classes
    without objects in the evaluated frames; no object of any target class there is an error."""
    from libtlt.archs.detectnet_v2.detectnet_v2_data import split_frames
    from libtlt.spec import values

    train, val = split_frames(spec, classes)  # raises DataError for patterns that match no file
    mapping = values.class_mapping(spec.message.dataset_config)
    class_map = ", ".join(f"{k}: {v}" for k, v in mapping.items())
    found = record_class_counts(spec)
    absent = [k for k in mapping if found[k.lower()] == 0]
    if absent:
        logger.warning("target_class_mapping names class(es) %s that no record holds (classes in the records: %s). "
                       "Class map (Label in GT: Label in tfrecords file): %s", ", ".join(absent),
                       ", ".join(sorted(found)) or "none", class_map)
    frames = [*train, *val] if use_training_set else val
    counts = np.zeros(len(classes), dtype=np.int64)
    for frame in frames:
        counts += np.bincount(np.asarray(frame.classes, dtype=np.int64), minlength=len(classes))[:len(classes)]
    where = "training and validation" if use_training_set else "validation"
    if frames and not counts.any():
        raise DataError(f"the {where} records hold no object of any target class ({', '.join(classes)}); "
                        f"check target_class_mapping (Label in GT: Label in tfrecords file: {class_map})",
                        location=spec.locate("dataset_config.target_class_mapping"))
    missing = [c for c, n in zip(classes, counts, strict=True) if n == 0]
    if missing:
        logger.warning("Target class(es) %s have no object in the %s records: their AP is undefined and left out "
                       "of mAP", ", ".join(missing), where)
