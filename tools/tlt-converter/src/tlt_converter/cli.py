"""tlt-converter command line: a parser plus one call into the tool's logic."""

from __future__ import annotations

import click

from libtlt.cli_options import not_implemented, run_tool, tool_command, verbose_option
from tlt_converter import __version__


@tool_command("tlt-converter", __version__, ignore_unknown_options=True)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@verbose_option
def main(args: tuple[str, ...], verbose: bool) -> None:
    """Build a TensorRT engine (or an onnxruntime model) from an .etlt."""
    run_tool(not_implemented("tlt-converter", "issue 8"), verbose=verbose)
