"""``sharklib pipeline from FILE``: the Markdown pipeline that rebuilds FILE.

Exposes ``from_command``, which the ``pipeline`` group registers as its
``from`` sub-command.
"""

from __future__ import annotations

import click


@click.command(name="from")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="Write the Markdown here instead of standard output.")
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Project root the commands run from (default: the code's git root).")
def from_command(file: str, out: str | None, root: str | None) -> None:
    """Write the literate Markdown pipeline (imports pinned, one block per step) for FILE."""
    # imported here: the lineage views (and YAML) would otherwise load with every
    # `sharklib pipeline run`, costing more than a whole no-op re-run of a small pipeline
    from sharklib.views.pipeline_md import pipeline_from

    text = pipeline_from(file, out, root)
    if not out:
        click.echo(text, nl=False)
