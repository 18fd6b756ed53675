"""tlt-int8-tensorfile command line: a parser plus one call into the tool's logic.

``tlt-int8-tensorfile ARCH [OPTIONS]``: everything after ARCH is parsed by that architecture's command
(``tlt-int8-tensorfile detectnet_v2 -h`` shows its options). Architectures whose issue has not landed exit
with status 2 and "not implemented yet".
"""

from __future__ import annotations

import click

from libtlt.cli_options import not_implemented, run_tool, spec_option, tool_command, verbose_option
from tlt_int8_tensorfile import __version__

#: The manual's architectures (000 §12: classification, detectnet_v2, ssd, dssd) still pending.
PENDING_ISSUES: dict[str, str] = {}
LATER = "a later issue"
KNOWN_ARCHS = ("classification", "detectnet_v2", "ssd", "dssd")


@click.command(name="tlt-int8-tensorfile detectnet_v2", context_settings={"help_option_names": ["-h", "--help"]})
@spec_option(help="Path to the training experiment spec file.")
@click.option("-o", "--output_path", required=True, type=click.Path(dir_okay=False),
              help="Path of the tensorfile to create.")
@click.option("-m", "--max_batches", required=True, type=click.IntRange(min=1),
              help="Number of batches of input data to serialize.")
@click.option("--use_validation_set", is_flag=True, help="Use the validation set instead of the training set.")
@verbose_option
def detectnet_v2(experiment_spec_file: str, output_path: str, max_batches: int, use_validation_set: bool,
                 verbose: bool) -> None:
    """Write preprocessed DetectNet_v2 training batches (no augmentation) to a calibration tensorfile."""

    def body() -> None:
        from tlt_int8_tensorfile.detectnet_v2 import write_detectnet_v2_tensorfile

        write_detectnet_v2_tensorfile(experiment_spec_file, output_path, max_batches,
                                      use_validation_set=use_validation_set)

    run_tool(body, verbose=verbose)


COMMANDS = {"detectnet_v2": detectnet_v2}


@tool_command("tlt-int8-tensorfile", __version__, ignore_unknown_options=True, allow_interspersed_args=False)
@click.argument("arch", required=False)
@click.option("--list-archs", is_flag=True, help="List the architectures this tool can handle.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@verbose_option
def main(arch: str | None, list_archs: bool, args: tuple[str, ...], verbose: bool) -> None:
    """Write INT8 calibration batches to a tensorfile.

    Usage: tlt-int8-tensorfile ARCH [OPTIONS] — the options depend on the architecture
    (tlt-int8-tensorfile ARCH -h lists them).
    """
    if list_archs:
        from libtlt.registry import architecture_names

        for name in architecture_names():
            click.echo(name)
        return
    if arch is None:
        raise click.UsageError("missing the architecture (e.g. tlt-int8-tensorfile detectnet_v2 -e SPEC -o FILE -m 10)")
    command = COMMANDS.get(arch)
    if command is not None:
        command.main(args=[*args, *(["--verbose"] if verbose else [])], prog_name=f"tlt-int8-tensorfile {arch}")
        return
    from libtlt.registry import architecture_names

    if arch not in KNOWN_ARCHS and arch not in architecture_names():
        raise click.UsageError(f"unknown architecture '{arch}' (one of: {', '.join(KNOWN_ARCHS)})")
    run_tool(not_implemented(f"tlt-int8-tensorfile {arch}", PENDING_ISSUES.get(arch, LATER)), verbose=verbose)
