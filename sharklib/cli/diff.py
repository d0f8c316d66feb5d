"""``sharklib diff A B``: why two results differ."""

from __future__ import annotations

import click
from rich.console import Console

from sharklib.views.diff import diff_command


@click.command(name="diff")
@click.argument("a", type=click.Path(dir_okay=False))
@click.argument("b", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a report.")
def command(a: str, b: str, as_json: bool) -> None:
    """The first points where A's and B's lineages diverge (exit 1 when they differ)."""
    rc = diff_command(a, b, as_json, Console(highlight=False))
    if rc:
        raise click.exceptions.Exit(rc)
