"""tlt-dataset-convert command line: a parser plus one call into the tool's logic."""

from __future__ import annotations

import click

from libtlt.cli_options import not_implemented, run_tool, tool_command, verbose_option
from tlt_dataset_convert import __version__


@tool_command("tlt-dataset-convert", __version__)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@verbose_option
def main(args: tuple[str, ...], verbose: bool) -> None:
    """Convert KITTI or COCO datasets to TFRecords."""
    run_tool(not_implemented("tlt-dataset-convert", "issue 4"), verbose=verbose)
