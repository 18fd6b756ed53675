"""tlt-int8-tensorfile command line: a parser plus one call into the tool's logic.

``tlt-int8-tensorfile ARCH [OPTIONS]`` for every architecture that serves the ``tensorfile`` verb
(``tlt-int8-tensorfile --list-archs``); the others exit with status 2 and "not implemented yet", as the
architecture registry says. This tool holds no list of architectures.
"""

from __future__ import annotations

import click

from libtlt.cli_options import architecture_tool, run_tool, spec_option, verbose_option
from libtlt.registry import TASKS
from tlt_int8_tensorfile import __version__


@click.command(name="tlt-int8-tensorfile", context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_obj
@spec_option(help="Path to the training experiment spec file.")
@click.option("-o", "--output_path", required=True, type=click.Path(dir_okay=False),
              help="Path of the tensorfile to create.")
@click.option("-m", "--max_batches", required=True, type=click.IntRange(min=1),
              help="Number of batches of input data to serialize.")
@click.option("--use_validation_set", is_flag=True, help="Use the validation set instead of the training set.")
@verbose_option
def tensorfile(arch: str, experiment_spec_file: str, output_path: str, max_batches: int, use_validation_set: bool,
               verbose: bool) -> None:
    """Write preprocessed training batches (no augmentation) to a calibration tensorfile."""

    def body() -> None:
        from tlt_int8_tensorfile.tensorfile import write_tensorfile

        write_tensorfile(arch, experiment_spec_file, output_path, max_batches, use_validation_set=use_validation_set)

    run_tool(body, verbose=verbose)


#: One command for every task type: the batches come from the architecture.
COMMANDS = dict.fromkeys(TASKS, tensorfile)


main = architecture_tool("tlt-int8-tensorfile", "tensorfile", __version__, summary="Write INT8 calibration batches to a tensorfile.",
                         commands=COMMANDS, example="tlt-int8-tensorfile detectnet_v2 -e SPEC -o FILE -m 10")
