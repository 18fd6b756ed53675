"""tlt-prune command line (000 chapter 11): a parser plus one call into ``tlt_prune.prune``."""

from __future__ import annotations

from typing import Any

import click

from libtlt.cli_options import key_option, run_tool, verbose_option
from tlt_prune import __version__

#: Options that take a list the manual's way (``-el a b c``); the values run up to the next option.
_LIST_OPTIONS = ("-el", "--excluded_layers")


class _PruneCommand(click.Command):
    """Accepts ``-el a b c`` (the manual's form) as well as ``-el a -el b`` and ``-el a,b``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _expand_lists(args))


def _expand_lists(args: list[str]) -> list[str]:
    result: list[str] = []
    option = None
    for arg in args:
        if arg == "--":
            option = None
        elif arg in _LIST_OPTIONS:
            option = arg
        elif option is not None and not arg.startswith("-"):
            if result and result[-1] != option:
                result.append(option)
            result.append(arg)
            continue
        else:
            option = None
        result.append(arg)
    return result


def _split_names(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name for value in values for name in value.split(",") if name)


@click.command(name="tlt-prune", cls=_PruneCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="tlt-prune")
@click.option("-pm", "-m", "--pretrained_model", "pretrained_model", required=True, type=click.Path(dir_okay=False),
              help="Path to pretrained model (.tlt).")
@click.option("-o", "--output_file", required=True, type=click.Path(dir_okay=False),
              help="Path to the pruned model (.tlt); a JSON report is written beside it.")
@key_option()
@click.option("-n", "--normalizer", type=click.Choice(["max", "L2"], case_sensitive=False), default="max",
              show_default=True, help="`max` divides each norm by the layer's largest; `L2` by the L2 norm of "
              "all the layer's norms (times their count).")
@click.option("-eq", "--equalization_criterion",
              type=click.Choice(["union", "intersection", "arithmetic_mean", "geometric_mean"]), default="union",
              show_default=True, help="How to merge the stats of layers tied by an element-wise op or a "
              "depthwise convolution.")
@click.option("-pg", "--pruning_granularity", type=click.IntRange(min=1), default=8, show_default=True,
              help="Number of filters to remove at a time.")
@click.option("-pth", "--pruning_threshold", type=float, default=None,
              help="Threshold to compare the normalized norm against.  [default: 0.1]")
@click.option("--keep_ratio", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=None,
              help="Instead of -pth: keep about this fraction of the parameters (the -pth that does so is found by "
                   "bisection and printed; NVIDIA's advice is to keep 10-30 %).")
@click.option("-nf", "--min_num_filters", type=click.IntRange(min=0), default=16, show_default=True,
              help="Minimum number of filters to keep per layer.")
@click.option("-el", "--excluded_layers", multiple=True, callback=_split_names,
              help="Layers whose filters are all kept: -el item1 item2 (default: none).")
@verbose_option
def main(verbose: bool, **options: Any) -> None:
    """Prune a trained model's filters."""
    from tlt_prune.prune import format_report, prune_file

    def body() -> None:
        keep_ratio = options.pop("keep_ratio")
        if keep_ratio is not None and options["pruning_threshold"] is not None:
            raise click.UsageError("give -pth or --keep_ratio, not both")
        if options["pruning_threshold"] is None:
            options.pop("pruning_threshold")
        report = prune_file(options.pop("pretrained_model"), options.pop("output_file"), options.pop("key"),
                            keep_ratio=keep_ratio, **options)
        click.echo(format_report(report))

    run_tool(body, verbose=verbose)
