"""tlt-kmeans command line (000 §7.7, the YOLOv3 anchors): a parser plus one call into ``tlt_kmeans.kmeans.run``."""

from __future__ import annotations

import click

from libtlt.cli_options import run_tool, tool_command, verbose_option
from tlt_kmeans import __version__


@tool_command("tlt-kmeans", __version__)
@click.option("-l", "--label_folders", "label_folders", multiple=True, required=True, type=click.Path(),
              help="A folder of KITTI label files (*.txt); repeat -l for several folders.")
@click.option("-n", "--num_clusters", "num_clusters", type=int, default=9, show_default=True,
              help="Number of anchor shapes (YOLOv3 uses 9: three small, three mid, three big).")
@click.option("-x", "--image_width", "image_width", type=int, required=True,
              help="Network input width in pixels; the labels must be for images of this size.")
@click.option("-y", "--image_height", "image_height", type=int, required=True,
              help="Network input height in pixels; the labels must be for images of this size.")
@click.option("--max_steps", type=int, default=10000, show_default=True,
              help="Most k-means iterations per restart (each stops earlier once no box changes cluster).")
@click.option("--min_x", type=float, default=0.0, show_default=True,
              help="Ignore boxes narrower than this many pixels.")
@click.option("--min_y", type=float, default=0.0, show_default=True,
              help="Ignore boxes lower than this many pixels.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; the same seed gives the same anchors.")
@click.option("--restarts", type=int, default=10, show_default=True,
              help="Independent k-means runs; the one with the highest mean IoU is kept.")
@click.option("-o", "--output", "output", type=click.Path(), default=None,
              help="Also write the anchor lines to this file (atomically).")
@verbose_option
def main(label_folders: tuple[str, ...], num_clusters: int, image_width: int, image_height: int, max_steps: int,
         min_x: float, min_y: float, seed: int, restarts: int, output: str | None, verbose: bool) -> None:
    """Pick YOLOv3 anchor shapes from KITTI labels by IoU-distance k-means.

    Box sizes are taken in pixels as written in the labels, which TLT 2.0 requires to be for images
    already at the network input size (-x, -y): a box larger than that is an error, and -x/-y only
    scale the shapes to [0, 1] while clustering (which changes no IoU). Prints the
    small/mid/big_anchor_shape lines to paste into yolo_config, sorted by area; the mean IoU of the
    boxes with their anchors goes to the log (stderr).
    """

    def body() -> None:
        from tlt_kmeans.kmeans import run

        lines = run(label_folders, num_clusters, image_width, image_height, max_steps=max_steps, min_x=min_x,
                    min_y=min_y, seed=seed, restarts=restarts, output=output)
        for line in lines:
            click.echo(line)

    run_tool(body, verbose=verbose)
