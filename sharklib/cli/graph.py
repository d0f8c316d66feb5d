"""``sharklib graph FILE --format dot|mermaid|json|html``."""

from __future__ import annotations

import click

from sharklib.views.graph import FORMATS, graph_command


@click.command(name="graph")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="dot", show_default=True)
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="Write here instead of standard output.")
def command(file: str, fmt: str, out: str | None) -> None:
    """FILE's lineage DAG; html is one self-contained page (pan, zoom, click for details)."""
    text = graph_command(file, fmt, out)
    if text:
        click.echo(text, nl=False)
