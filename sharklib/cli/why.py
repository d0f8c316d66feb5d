"""``sharklib why FILE``: what a file depends on."""

from __future__ import annotations

import click
from rich.console import Console

from sharklib.views.why import why_command


@click.command(name="why")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--depth", type=click.IntRange(min=1), default=None,
              help="Follow at most N steps upstream (1: what FILE's own step read).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a tree.")
def command(file: str, depth: int | None, as_json: bool) -> None:
    """Transitive inputs, code (with git commit), environment and downloads of FILE."""
    why_command(file, depth, as_json, Console(highlight=False))
