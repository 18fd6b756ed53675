"""tlt-converter command line (000 §13.2, 001 tao-converter): a parser plus one call into the tool's logic."""

from __future__ import annotations

import click

from libtlt.cli_options import key_option, run_tool, tool_command, verbose_option
from tlt_converter import __version__


@tool_command("tlt-converter", __version__)
@click.argument("input_file", type=click.Path(dir_okay=False))
@key_option(required=False, help="The key the .etlt was exported with (not needed for a plain .onnx); "
            "or --key_file FILE, or the TLT_KEY environment variable.")
@click.option("-d", "input_dims", required=True,
              help="Comma-separated input dimensions C,H,W (C for -i nc), as used for tlt-export.")
@click.option("-o", "output_nodes", required=True,
              help="Comma-separated output names, e.g. output_cov/Sigmoid,output_bbox/BiasAdd.")
@click.option("-c", "cal_cache_file", default="./cal.bin", show_default=True,
              help="Calibration cache (INT8 mode only).")
@click.option("-e", "engine_file", default="./saved.engine", show_default=True, help="Path to save the engine to.")
@click.option("-b", "batch_size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Batch size used for INT8 calibration during tlt-export (recorded).")
@click.option("-m", "max_batch_size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Maximum batch size of the engine.")
@click.option("-t", "data_type", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True,
              help="Engine data type.")
@click.option("-w", "max_workspace_size", type=click.IntRange(min=1), default=1 << 30, show_default=True,
              help="Maximum workspace size of the TensorRT engine in bytes.")
@click.option("-i", "input_order", type=click.Choice(["nchw", "nhwc", "nc"]), default="nchw", show_default=True,
              help="Input dimension ordering.")
@click.option("-p", "profiles", multiple=True,
              help="Optimization profile <input_name>,<min>,<opt>,<max>, shapes as <n>x<c>x<h>x<w>; repeatable.")
@click.option("-s", "strict_type_constraints", is_flag=True, help="Apply strict type constraints.")
@click.option("-u", "dla_core", type=click.IntRange(min=0), default=None, help="DLA core to use (Jetson).")
@click.option("--backend", type=click.Choice(["tensorrt", "onnxruntime"]), default="tensorrt", show_default=True,
              help="Build a TensorRT engine, or an onnxruntime model where TensorRT is not installed.")
@verbose_option
def main(input_file: str, key: str | None, input_dims: str, output_nodes: str, cal_cache_file: str, engine_file: str,
         batch_size: int, max_batch_size: int, data_type: str, max_workspace_size: int, input_order: str,
         profiles: tuple[str, ...], strict_type_constraints: bool, dla_core: int | None, backend: str,
         verbose: bool) -> None:
    """Build a TensorRT engine (or an onnxruntime model) from an .etlt."""

    def body() -> None:
        from libtlt.runtime.engine import parse_dims, parse_profile
        from tlt_converter.convert import convert

        convert(input_file, key=key, input_dims=parse_dims(input_dims), output_names=output_nodes.split(","),
                engine_file=engine_file, data_type=data_type, cal_cache_file=cal_cache_file, batch_size=batch_size,
                max_batch_size=max_batch_size, max_workspace_size=max_workspace_size, input_order=input_order,
                profiles=[parse_profile(p) for p in profiles], strict_type_constraints=strict_type_constraints,
                dla_core=dla_core, backend=backend, verbose=verbose)

    run_tool(body, verbose=verbose)
