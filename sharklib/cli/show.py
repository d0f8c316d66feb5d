"""``sharklib show FILE``: the lineage as a tree."""

from __future__ import annotations

import click
from rich.console import Console

from sharklib.views.tree import show_command


@click.command(name="show")
@click.argument("file", type=click.Path(dir_okay=False))
def command(file: str) -> None:
    """Show FILE's lineage: the step that made it, its inputs and their steps, downloads.

    Files whose content on disk differs from the record are marked STALE.
    """
    rc = show_command(file, Console(highlight=False))
    if rc:
        raise click.exceptions.Exit(rc)
