"""``tlt-int8-tensorfile ARCH`` (000 §12): preprocessed batches for INT8 calibration, for every architecture.

The architecture (``libtlt.registry``, verb ``tensorfile``) supplies the batches (``calibration_batches``):
its training records (or, with ``--use_validation_set``, the validation ones) without augmentation, preprocessed
exactly as for evaluation — DetectNet_v2: crop, scale, pad, RGB / 255, NCHW float32, with
``training_config.batch_size_per_gpu`` images each. At most ``max_batches`` full batches are written, in record
order (a last partial batch is left out, since calibration runs at one batch size); fewer when the data runs out,
with a warning. The file (REFERENCE "Calibration files", ``libtlt.io.tensorfile``) appears only when complete.
"""

from __future__ import annotations

from pathlib import Path

from libtlt.errors import DataError
from libtlt.log import get_logger

logger = get_logger("tlt_int8_tensorfile")


def write_tensorfile(arch_name: str, experiment_spec_file: str | Path, output_path: str | Path, max_batches: int, *,
                     use_validation_set: bool = False) -> int:
    """Write up to ``max_batches`` batches to ``output_path``; returns the number written."""
    import tensorflow as tf

    from libtlt.io.tensorfile import TensorFileWriter
    from libtlt.log import progress
    from libtlt.registry import get_architecture
    from libtlt.spec import load_spec

    arch = get_architecture(arch_name)
    spec = load_spec(experiment_spec_file, arch.spec_message())
    arch.validate(spec)
    data = arch.calibration_batches(spec, use_validation_set=use_validation_set)
    which = "validation" if use_validation_set else "training"
    output = Path(output_path)
    if output.parent != Path():
        output.parent.mkdir(parents=True, exist_ok=True)
    with TensorFileWriter(output) as writer, progress(total=max_batches, unit="batch", desc="Tensorfile",
                                                  leave=False) as bar:
        try:
            for images in data.batches:
                if len(writer) >= max_batches:
                    break
                if len(images) < data.batch_size:
                    break  # the last, partial batch
                writer.append(images)
                bar.update(1)
        except tf.errors.OpError as err:
            from libtlt.data.image_check import image_error

            raise (image_error(err.message, what=f"an image of the {which} set")
                   or DataError(f"an image of the {which} set cannot be read ({err.message.splitlines()[0]})")) from None
        if len(writer) == 0:
            raise DataError(f"the {which} set holds fewer images than one batch ({data.batch_size_field}: "
                            f"{data.batch_size}): no tensorfile written", location=data.batch_size_location)
        written = len(writer)
    if written < max_batches:
        logger.warning("The %s set holds only %d full batch(es) of %d images; wrote %d of the %d requested",
                       which, written, data.batch_size, written, max_batches)
    logger.info("Wrote %d batch(es) of %d images (%s set) to %s", written, data.batch_size, which, output)
    return written
