"""tlt-prune command line: a parser plus one call into the tool's logic."""

from __future__ import annotations

import click

from libtlt.cli_options import not_implemented, run_tool, tool_command, verbose_option
from tlt_prune import __version__


@tool_command("tlt-prune", __version__, ignore_unknown_options=True)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@verbose_option
def main(args: tuple[str, ...], verbose: bool) -> None:
    """Prune a trained model's filters."""
    run_tool(not_implemented("tlt-prune", "issue 7"), verbose=verbose)
