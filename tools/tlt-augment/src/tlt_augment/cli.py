"""tlt-augment command line: a parser plus one call into the tool's logic."""

from __future__ import annotations

import click

from libtlt.cli_options import not_implemented, run_tool, tool_command, verbose_option
from tlt_augment import __version__


@tool_command("tlt-augment", __version__)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@verbose_option
def main(args: tuple[str, ...], verbose: bool) -> None:
    """Offline augmentation of KITTI detection datasets."""
    run_tool(not_implemented("tlt-augment", "issue 3"), verbose=verbose)
