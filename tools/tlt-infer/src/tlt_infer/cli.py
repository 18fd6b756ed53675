"""tlt-infer command line: a parser plus one call into the tool's logic."""

from __future__ import annotations

import click

from libtlt.cli_options import not_implemented, run_tool, tool_command, verbose_option
from tlt_infer import __version__


@tool_command("tlt-infer", __version__, ignore_unknown_options=True)
@click.argument("arch", required=False)
@click.option("--list-archs", is_flag=True, help="List the architectures this tool can handle.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@verbose_option
def main(arch: str | None, list_archs: bool, args: tuple[str, ...], verbose: bool) -> None:
    """Run inference with a trained model.

    Usage: tlt-infer ARCH [OPTIONS] — the options depend on the architecture.
    """
    if list_archs:
        from libtlt.registry import architecture_names

        for name in architecture_names():
            click.echo(name)
        return
    run_tool(not_implemented("tlt-infer", "issue 5"), verbose=verbose)
