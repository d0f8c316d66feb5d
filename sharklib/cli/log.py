"""``sharklib log [PATH...]``: recorded runs and reuses, newest first."""

from __future__ import annotations

import click

from sharklib.cli._query_options import query_options, remote_arg
from sharklib.views.queries import STATUSES, dump, log, open_source, parse_when, print_log


@click.command(name="log")
@click.argument("paths", nargs=-1)
@click.option("--command", "command", metavar="GLOB", help="Only commands matching GLOB.")
@click.option("--since", metavar="WHEN", help="From this time (2026-12-01, 7d, 12h).")
@click.option("--until", metavar="WHEN", help="Before this time.")
@click.option("--status", type=click.Choice(STATUSES), help="Only runs that ran, were reused, or failed.")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=None,
              help="At most N events (default: 50 in a table, all in JSON).")
@query_options
def command(paths: tuple[str, ...], command: str | None, since: str | None, until: str | None,
            status: str | None, limit: int | None, fmt: str, remote: str | None) -> None:
    """Recorded runs, newest first: when, who, which key, command, duration, outputs, reuse."""
    source = open_source(remote_arg(remote))
    try:
        doc = log(source, list(paths), command=command,
                  since=parse_when(since) if since else None,
                  until=parse_when(until) if until else None, status=status,
                  limit=limit if limit is not None or fmt == "json" else 50)
    finally:
        source.close()
    if fmt == "json":
        click.echo(dump(doc))
    else:
        print_log(doc, _console())


def _console() -> object:
    from rich.console import Console  # only for a table: JSON output never loads rich

    return Console(highlight=False)
