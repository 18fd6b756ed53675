"""Click options and the error boundary shared by every tlt tool.

A tool's ``cli.py`` is a parser plus one call into library code; it wraps that call in
``run_tool`` so that a ``TltError`` becomes exit status 2 and one line on stderr (a traceback only
with ``--verbose``), and Ctrl-C or SIGTERM becomes exit status 130 or 143 instead of a stack dump.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click

from libtlt import interrupts
from libtlt.errors import TltError, UnsupportedError
from libtlt.log import setup_logging

F = TypeVar("F", bound=Callable[..., Any])

USER_ERROR_EXIT = 2


def verbose_option(func: F) -> F:
    return click.option("-v", "--verbose", is_flag=True, help="Verbose logging; tracebacks on errors.")(func)


def framework_option(func: F) -> F:
    """``-f tlt|onnxruntime|tensorrt``: which runtime runs the model (``None``: chosen by the model file)."""
    return click.option("-f", "--framework", type=click.Choice(["tlt", "tensorrt", "onnxruntime"]), default=None,
                        help="tlt (Keras .tlt), onnxruntime (.etlt or onnxruntime engine) or tensorrt (TensorRT "
                             "engine or .etlt); default: by the model file.")(func)


def spec_option(required: bool = True, help: str = "Path to the experiment spec file.") -> Callable[[F], F]:
    return click.option("-e", "--experiment_spec_file", "experiment_spec_file", required=required,
                        type=click.Path(dir_okay=False), help=help)


#: Environment variable a tool reads the model key from when neither ``-k`` nor ``--key_file`` is given.
KEY_ENV = "TLT_KEY"
KEY_HELP = (f"The key used to encrypt and decrypt models. -k puts it on the command line (visible in ps); "
            f"--key_file FILE or the {KEY_ENV} environment variable keep it out of the process list.")


def read_key(key: str | None, key_file: str | None, *, required: bool = True) -> str | None:
    """The model key from ``-k``, else ``--key_file`` (first line), else ``$TLT_KEY``.

    Why three ways: a key given with ``-k`` shows in ``ps`` and shell history; a file (mode 600) or
    an environment variable does not. Errors never quote the key.
    """
    if key is not None and key_file is not None:
        raise click.UsageError("give the key once: -k/--key or --key_file, not both")
    if key is None and key_file is not None:
        try:
            with open(key_file, encoding="utf-8") as handle:
                key = handle.readline().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
            raise click.BadParameter(f"{key_file}: cannot read the key file ({reason})",
                                     param_hint="--key_file") from None
        if not key:
            raise click.BadParameter(f"{key_file}: the key file is empty", param_hint="--key_file")
    if key is None:
        key = os.environ.get(KEY_ENV) or None
    if key is None and required:
        raise click.UsageError(f"missing the model key: -k KEY, --key_file FILE or the {KEY_ENV} environment variable")
    return key


def key_option(required: bool = True, names: Sequence[str] = ("-k", "--key"),
               help: str = KEY_HELP) -> Callable[[F], F]:
    """``-k KEY`` (the manuals' flag) plus ``--key_file FILE`` and ``$TLT_KEY``; the command gets ``key``.

    The wrapped command receives one ``key`` argument, already resolved by :func:`read_key`
    (``None`` only when ``required`` is false and no key was given).
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, key: str | None = None, key_file: str | None = None, **kwargs: Any) -> Any:
            return func(*args, key=read_key(key, key_file, required=required), **kwargs)

        wrapper.__click_params__ = list(getattr(func, "__click_params__", []))  # type: ignore[attr-defined]
        with_file = click.option("--key_file", type=click.Path(dir_okay=False), default=None,
                                 help=f"Read the key from the first line of this file (or set {KEY_ENV}).")(wrapper)
        return click.option(*names, "key", default=None, help=help)(with_file)  # type: ignore[return-value]

    return decorate


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
    """Run a tool's body behind the user-error boundary and exit with the documented status.

    ``TltError`` and OS failures (a full disk, an unwritable or missing path: ``OSError``) exit 2 with
    one line naming the path and the reason; SIGINT, SIGTERM and SIGHUP exit ``128 + signal`` with one
    line (the body may add what was completed, ``Interrupted.detail``).
    """
    try:
        with interrupts.handlers_installed():
            setup_logging(verbose=verbose, log_file=log_file)
            return body()
    except TltError as err:
        if verbose:
            traceback.print_exc()
        click.echo(f"Error: {err.one_line()}", err=True)
        sys.exit(USER_ERROR_EXIT)
    except OSError as err:
        if verbose:
            traceback.print_exc()
        click.echo(f"Error: {os_error_line(err)}", err=True)
        sys.exit(USER_ERROR_EXIT)
    except KeyboardInterrupt as err:
        stopped = err if isinstance(err, interrupts.Interrupted) else interrupts.Interrupted(signal.SIGINT)
        click.echo(stopped.one_line(), err=True)
        interrupts.exit_after(stopped)


def os_error_line(err: OSError) -> str:
    """``path: reason`` for an OS failure (both paths of a failed rename), or just the reason."""
    reason = err.strerror or str(err)
    names = [str(n) for n in (err.filename, err.filename2) if n is not None]
    return f"{' -> '.join(names)}: {reason}" if names else reason


def dispatch_architecture(tool: str, verb: str, arch: str | None, *, list_archs: bool, args: Sequence[str],
                          verbose: bool, commands: Mapping[str, click.Command | Callable[[Any], click.Command]],
                          example: str) -> None:
    """The ``TOOL ARCH [OPTIONS]`` front of every tool that serves architectures, from the registry alone.

    ``--list-archs`` prints the architectures that serve ``verb``; an unknown name, or a registered one that does
    not serve ``verb`` yet ("not implemented yet", with what brings it), is one line and exit status 2; otherwise
    the command of the architecture's task type (``commands[task]``, or what ``commands[task](architecture)``
    builds, for commands with architecture-specific options) parses ``args``, with the architecture's name as
    the context object.
    """
    from libtlt.registry import architectures_for, resolve

    if list_archs:
        for name in architectures_for(verb):
            click.echo(name)
        return
    if arch is None:
        raise click.UsageError(f"missing the architecture (e.g. {example}; {tool} --list-archs lists them)")
    name = arch

    def find() -> click.Command:
        architecture = resolve(tool, verb, name)
        command = commands.get(architecture.task)
        if command is None:
            raise UnsupportedError(f"{tool} {name} is not implemented yet ({tool} serves no {architecture.task}).")
        return command if isinstance(command, click.Command) else command(architecture)

    command = run_tool(find, verbose=verbose)
    command.main(args=[*args, *(["--verbose"] if verbose else [])], prog_name=f"{tool} {name}", obj=name)


def architecture_tool(tool: str, verb: str, version: str, *, summary: str,
                      commands: Mapping[str, click.Command | Callable[[Any], click.Command]],
                      example: str) -> click.Command:
    """The whole ``TOOL ARCH [OPTIONS]`` command of a tool that serves architectures (``TOOL --list-archs`` too):
    :func:`dispatch_architecture` behind TLT's name, ``--version`` and ``--help`` (``summary`` heads the help)."""

    @tool_command(tool, version, ignore_unknown_options=True, allow_interspersed_args=False)
    @click.argument("arch", required=False)
    @click.option("--list-archs", is_flag=True, help="List the architectures this tool can handle.")
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    @verbose_option
    def main(arch: str | None, list_archs: bool, args: tuple[str, ...], verbose: bool) -> None:
        dispatch_architecture(tool, verb, arch, list_archs=list_archs, args=args, verbose=verbose,
                              commands=commands, example=example)

    main.help = (f"{summary}\n\nUsage: {tool} ARCH [OPTIONS] — the options depend on the architecture\n"
                 f"({tool} ARCH -h lists them).")
    return main


def tool_command(name: str, version: str, **context: Any) -> Callable[[F], click.Command]:
    """The click command decorator every tool uses: TLT's name, ``--help`` and ``--version``.

    ``context`` adds click context settings (a pending tool passes ``ignore_unknown_options``).
    """

    def wrap(func: F) -> click.Command:
        func = click.version_option(version, "--version", prog_name=name)(func)
        settings = {"help_option_names": ["-h", "--help"], **context}
        command = click.command(name=name, context_settings=settings)(func)
        parse_and_run = command.main

        def main(*args: Any, **kwargs: Any) -> Any:
            # A signal while click parses is recorded, not raised inside click (which would print
            # "Aborted!" and exit 1); run_tool raises it at once, as 130/143 and one line.
            with interrupts.recording():
                return parse_and_run(*args, **kwargs)

        command.main = main  # type: ignore[method-assign]
        return command

    return wrap
