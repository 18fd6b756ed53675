"""Click options and the error boundary shared by every tlt tool.

A tool's ``cli.py`` is a parser plus one call into library code; it wraps that call in
``run_tool`` so that a ``TltError`` becomes exit status 2 and one line on stderr (a traceback only
with ``--verbose``), and Ctrl-C becomes exit status 130 instead of a stack dump.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import click

from libtlt.errors import TltError, UnsupportedError
from libtlt.log import setup_logging

F = TypeVar("F", bound=Callable[..., Any])

USER_ERROR_EXIT = 2


def verbose_option(func: F) -> F:
    return click.option("-v", "--verbose", is_flag=True, help="Verbose logging; tracebacks on errors.")(func)


def spec_option(required: bool = True, help: str = "Path to the experiment spec file.") -> Callable[[F], F]:
    return click.option("-e", "--experiment_spec_file", "experiment_spec_file", required=required,
                        type=click.Path(dir_okay=False), help=help)


def key_option(required: bool = True) -> Callable[[F], F]:
    return click.option("-k", "--key", required=required, help="The key used to encrypt and decrypt models.")


def results_dir_option(func: F) -> F:
    return click.option("-r", "--results_dir", required=True, type=click.Path(file_okay=False),
                        help="Directory where results, checkpoints and logs are written.")(func)


def gpus_option(func: F) -> F:
    func = click.option("--gpus", type=int, default=1, show_default=True, help="Number of GPUs to use.")(func)
    return click.option("--gpu_index", type=int, multiple=True, help="Indices of the GPUs to use.")(func)


def log_file_option(func: F) -> F:
    return click.option("--log_file", type=click.Path(dir_okay=False), default=None,
                        help="Also write the log to this file.")(func)


def run_tool(body: Callable[[], Any], *, verbose: bool = False, log_file: str | None = None) -> Any:
    """Run a tool's body behind the user-error boundary and exit with the documented status."""
    setup_logging(verbose=verbose, log_file=log_file)
    try:
        return body()
    except TltError as err:
        if verbose:
            traceback.print_exc()
        click.echo(f"Error: {err.one_line()}", err=True)
        sys.exit(USER_ERROR_EXIT)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


def not_implemented(tool: str, issue: str) -> Callable[[], None]:
    """Body for a tool whose issue has not landed yet: a clear message and exit status 2."""

    def body() -> None:
        raise UnsupportedError(f"{tool} is not implemented yet ({issue}).")

    return body


def tool_command(name: str, version: str, **context: Any) -> Callable[[F], click.Command]:
    """The click command decorator every tool uses: TLT's name, ``--help`` and ``--version``.

    ``context`` adds click context settings (a pending tool passes ``ignore_unknown_options``).
    """

    def wrap(func: F) -> click.Command:
        func = click.version_option(version, "--version", prog_name=name)(func)
        settings = {"help_option_names": ["-h", "--help"], **context}
        return click.command(name=name, context_settings=settings)(func)

    return wrap
