"""``sharklib uses PATH``: who read this, and what came of it."""

from __future__ import annotations

import click

from sharklib.cli._query_options import query_options, remote_arg
from sharklib.views.queries import dump, open_source, print_uses, uses


@click.command(name="uses")
@click.argument("path")
@click.option("--digest", metavar="SHA256", help="Only this version (a sha256 or its prefix).")
@click.option("--depth", type=click.IntRange(min=0), default=None,
              help="Follow at most N steps downstream (0: only the steps that read PATH).")
@query_options
def command(path: str, digest: str | None, depth: int | None, fmt: str,
            remote: str | None) -> None:
    """Every step that read PATH (a file, a directory, a URL, a module) and every result
    downstream of them."""
    source = open_source(remote_arg(remote))
    try:
        doc = uses(source, path, digest=digest, depth=depth)
    finally:
        source.close()
    if fmt == "json":
        click.echo(dump(doc))
    else:
        print_uses(doc, _console())


def _console() -> object:
    from rich.console import Console  # only for a table: JSON output never loads rich

    return Console(highlight=False)
