"""tlt-dataset-convert command line: a parser plus one call into the tool's logic."""

from __future__ import annotations

import click

from libtlt.cli_options import run_tool, tool_command, verbose_option
from tlt_dataset_convert import __version__


@tool_command("tlt-dataset-convert", __version__)
@click.option("-d", "--dataset-export-spec", "--dataset_export_spec", "dataset_export_spec", required=True,
              type=click.Path(dir_okay=False),
              help="Path to the detection dataset spec containing config for exporting .tfrecords.")
@click.option("-o", "--output_filename", "--output-filename", "output_filename", required=True,
              help="Output file name (prefix of the TFRecord files).")
@click.option("-f", "--validation-fold", "--validation_fold", "validation_fold", type=click.IntRange(min=0),
              default=None, help="Indicate the validation fold in 0-based indexing. This is required when modifying "
              "the training set but otherwise optional.")
@verbose_option
def main(dataset_export_spec: str, output_filename: str, validation_fold: int | None, verbose: bool) -> None:
    """Convert a KITTI (or COCO) dataset to TFRecords."""

    def body() -> None:
        from tlt_dataset_convert.convert import convert

        convert(dataset_export_spec, output_filename, validation_fold)

    run_tool(body, verbose=verbose)
