"""What ``tlt-evaluate`` asks of DetectNet_v2 beyond the generic box-detector path: the evaluated batches
(validation fold or ``validation_data_source``; with ``--use_training_set`` the training records, then the
validation ones). The data checks with TLT's class-map warning are the shared loader's
(``libtlt.data.detection.check_evaluation_data``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

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
