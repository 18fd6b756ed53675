"""``tlt-int8-tensorfile detectnet_v2`` (000 §12): preprocessed training batches for INT8 calibration.

Batches come from DetectNet_v2's data loader without augmentation — the training records (or, with
``--use_validation_set``, the validation fold / ``validation_data_source``), preprocessed exactly as for
evaluation (crop, scale, pad; RGB / 255, NCHW float32) — with ``training_config.batch_size_per_gpu`` images each.
At most ``max_batches`` full batches are written, in record order (a last partial batch is left out, since
calibration runs at one batch size); fewer when the data runs out, with a warning. The file
(REFERENCE "Calibration files", ``libtlt.io.tensorfile``) appears only when complete.
"""

from __future__ import annotations

from pathlib import Path

from libtlt.errors import DataError
from libtlt.log import get_logger

logger = get_logger("tlt_int8_tensorfile.detectnet_v2")


def write_detectnet_v2_tensorfile(experiment_spec_file: str | Path, output_path: str | Path, max_batches: int, *,
                                  use_validation_set: bool = False) -> int:
    """Write up to ``max_batches`` batches to ``output_path``; returns the number written."""
    import tensorflow as tf

    from libtlt.archs.detectnet_v2 import architecture as arch
    from libtlt.io.tensorfile import TensorFileWriter
    from libtlt.log import progress
    from libtlt.spec.experiments import load_experiment

    spec = load_experiment("detectnet_v2", experiment_spec_file)
    batch_size = int(spec.message.training_config.batch_size_per_gpu)
    which = "validation" if use_validation_set else "training"
    batches = arch.eval_dataset(spec, use_training_set=not use_validation_set, batch_size=batch_size)
    output = Path(output_path)
    if output.parent != Path():
        output.parent.mkdir(parents=True, exist_ok=True)
    with TensorFileWriter(output) as writer, progress(total=max_batches, unit="batch", desc="Tensorfile",
                                                  leave=False) as bar:
        try:
            for images, _ in batches:
                if len(writer) >= max_batches:
                    break
                if len(images) < batch_size:
                    break  # the last, partial batch
                writer.append(images)
                bar.update(1)
        except tf.errors.OpError as err:
            from libtlt.data.image_check import image_error

            raise (image_error(err.message, what=f"an image of the {which} set")
                   or DataError(f"an image of the {which} set cannot be read ({err.message.splitlines()[0]})")) from None
        if len(writer) == 0:
            raise DataError(f"the {which} set holds fewer images than one batch "
                            f"(training_config.batch_size_per_gpu: {batch_size}): no tensorfile written",
                            location=spec.locate("training_config.batch_size_per_gpu"))
        written = len(writer)
    if written < max_batches:
        logger.warning("The %s set holds only %d full batch(es) of %d images; wrote %d of the %d requested",
                       which, written, batch_size, written, max_batches)
    logger.info("Wrote %d batch(es) of %d images (%s set) to %s", written, batch_size, which, output)
    return written
