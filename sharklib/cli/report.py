"""``sharklib report``: the frugality ledger."""

from __future__ import annotations

import click

from sharklib.cli._query_options import query_options, remote_arg
from sharklib.views.queries import dump, open_source, parse_when, project_root
from sharklib.views.report import PERIODS, energy_model, print_report, report


@click.command(name="report")
@click.option("--since", metavar="WHEN", help="From this time (2026-12-01, 30d).")
@click.option("--until", metavar="WHEN", help="Before this time.")
@click.option("--period", type=click.Choice(PERIODS), default="month", show_default=True,
              help="Group time by day, week, month or year.")
@click.option("--core-watts", type=float, default=None,
              help="Power per busy core, W (default 12; env SHARKLIB_CORE_WATTS).")
@click.option("--pue", type=float, default=None,
              help="Power usage effectiveness (default 1.67; env SHARKLIB_PUE).")
@click.option("--grid-intensity", type=float, default=None,
              help="Grid carbon intensity, gCO2e/kWh (default 475; env SHARKLIB_GRID_INTENSITY).")
@click.option("--html", "html_out", metavar="FILE",
              help="Also write a self-contained HTML page with plots.")
@query_options
def command(since: str | None, until: str | None, period: str, core_watts: float | None,
            pue: float | None, grid_intensity: float | None, html_out: str | None, fmt: str,
            remote: str | None) -> None:
    """Runs recorded and reused, compute time saved (wall, CPU), energy and emissions saved and
    spent, per project, user and period, with the model stated."""
    import os

    model = energy_model(project_root(os.getcwd()), core_watts=core_watts, pue=pue,
                         grid_intensity=grid_intensity)
    source = open_source(remote_arg(remote))
    try:
        doc = report(source, since=parse_when(since) if since else None,
                     until=parse_when(until) if until else None, period=period, model=model)
    finally:
        source.close()
    if html_out:
        from sharklib.views.ledger_html import render
        from sharklib.views.output import write_output

        write_output(html_out, render(doc).encode("utf-8"))
    if fmt == "json":
        click.echo(dump(doc))
    else:
        print_report(doc, _console())
        if html_out:
            click.echo(f"wrote {html_out}")


def _console() -> object:
    from rich.console import Console  # only for a table: JSON output never loads rich

    return Console(highlight=False)
