"""``sharklib export FILE --format intoto|prov-json|ro-crate|openlineage`` (or in-toto, prov, rocrate)."""

from __future__ import annotations

import sys

import click

from sharklib.views.exports import ALIASES, FORMATS, export_command


@click.command(name="export")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice([*FORMATS, *ALIASES]), required=True)
@click.option("-o", "--out", type=click.Path(), default=None,
              help="Output file (a directory or .zip for ro-crate). Default: standard output.")
@click.option("--with-data", is_flag=True,
              help="ro-crate: copy the files still on disk (matching their digest) into the crate.")
def command(file: str, fmt: str, out: str | None, with_data: bool) -> None:
    """FILE's lineage in a standard format, made with that ecosystem's own library."""
    data = export_command(file, fmt, out, with_data)
    if data is not None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
