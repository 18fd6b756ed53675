"""Load a dataset export spec and run the converter it names (KITTI or COCO)."""

from __future__ import annotations

from pathlib import Path

from libtlt.errors import SpecError
from libtlt.interrupts import Interrupted
from libtlt.log import get_logger
from libtlt.spec import LoadedSpec, load_spec
from libtlt.spec.protos import dataset_export_pb2
from tlt_dataset_convert.output import ConversionResult

LOGGER = get_logger("tlt_dataset_convert.build_converter")

Spec = LoadedSpec[dataset_export_pb2.DatasetExportConfig]


def load_export_spec(path: str | Path) -> Spec:
    return load_spec(path, dataset_export_pb2.DatasetExportConfig)


def convert(dataset_export_spec: str | Path, output_filename: str,
            validation_fold: int | None = None) -> ConversionResult:
    """Convert the dataset described by ``dataset_export_spec``; returns the converter's result."""
    try:
        return _convert(dataset_export_spec, output_filename, validation_fold)
    except Interrupted as stop:  # outputs are published all at once, at the very end
        stop.detail = stop.detail or "nothing written (earlier outputs are unchanged)"
        raise


def _convert(dataset_export_spec: str | Path, output_filename: str, validation_fold: int | None) -> ConversionResult:
    spec = load_export_spec(dataset_export_spec)
    if not output_filename:
        raise SpecError("the output file name (-o) is empty", field="-o/--output_filename")
    kind = spec.message.WhichOneof("convert_config_type")
    if kind == "kitti_config":
        from tlt_dataset_convert.kitti_converter import convert_kitti

        LOGGER.info("Instantiating a kitti converter")
        return convert_kitti(spec, output_filename, validation_fold)
    if kind == "coco_config":
        from tlt_dataset_convert.coco_converter import convert_coco

        LOGGER.info("Instantiating a coco converter")
        if spec.message.HasField("sample_modifier_config"):
            raise spec.error("sample_modifier_config", "applies to kitti_config only")
        if validation_fold is not None:
            LOGGER.warning("-f/--validation-fold is ignored with coco_config (partitions are the annotation files)")
        return convert_coco(spec, output_filename)
    raise SpecError("the spec has neither kitti_config nor coco_config", location=spec.path, field="kitti_config")
