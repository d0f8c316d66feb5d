"""``sharklib impact PATH``: what depends on this, and what redoing it costs."""

from __future__ import annotations

import click

from sharklib.cli._query_options import query_options, remote_arg
from sharklib.errors import SharkError
from sharklib.views.queries import dump, impact, open_source, print_impact


@click.command(name="impact")
@click.argument("paths", nargs=-1)
@click.option("--changed", is_flag=True,
              help="Start from the recorded inputs that differ on disk now.")
@click.option("--since", "since_rev", metavar="REV",
              help="Start from the files git says changed since REV (and uncommitted ones).")
@click.option("--digest", metavar="SHA256", help="Only this version of PATH.")
@query_options
def command(paths: tuple[str, ...], changed: bool, since_rev: str | None, digest: str | None,
            fmt: str, remote: str | None) -> None:
    """Recorded outputs whose lineage includes PATH, grouped by step, with the compute time to
    redo them."""
    if not paths and not changed and since_rev is None:
        raise SharkError("impact needs a PATH, --changed or --since REV")
    source = open_source(remote_arg(remote))
    try:
        doc = impact(source, list(paths), changed=changed, since_rev=since_rev, digest=digest)
    finally:
        source.close()
    if fmt == "json":
        click.echo(dump(doc))
    else:
        print_impact(doc, _console())


def _console() -> object:
    from rich.console import Console  # only for a table: JSON output never loads rich

    return Console(highlight=False)
