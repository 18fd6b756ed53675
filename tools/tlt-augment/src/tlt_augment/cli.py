"""tlt-augment command line (000 §5.2): a parser plus one call into ``tlt_augment.augment.run``."""

from __future__ import annotations

import click

from libtlt.cli_options import run_tool, tool_command
from tlt_augment import __version__


@tool_command("tlt-augment", __version__)
@click.option("-d", "--dataset-folder", "dataset_folder", required=True, type=click.Path(),
              help="Path to the detection dataset.")
@click.option("-a", "--augmentation-proto", "augmentation_proto", required=True, type=click.Path(),
              help="Path to augmentation spec file.")
@click.option("-o", "--output-dataset", "output_dataset", required=True, type=click.Path(),
              help="Path to the augmented output dataset.")
@click.option("-j", "--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: all available cores). Outputs are identical for any value.")
@click.option("-v", "--verbose", is_flag=True,
              help="Detailed logs; also write images with the boxes drawn under OUTPUT/images/annotated.")
def main(dataset_folder: str, augmentation_proto: str, output_dataset: str, workers: int | None,
         verbose: bool) -> None:
    """Offline augmentation of KITTI detection datasets.

    Writes OUTPUT/images and OUTPUT/labels with the same file names as the input.
    """

    def body() -> None:
        from tlt_augment.augment import run

        run(dataset_folder=dataset_folder, augmentation_proto=augmentation_proto,
            output_dataset=output_dataset, verbose=verbose, workers=workers)

    run_tool(body, verbose=verbose)
