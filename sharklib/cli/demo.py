"""``sharklib demo``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="demo")
@click.option("--dir", "target", type=click.Path(file_okay=False, path_type=Path),
              default=Path("shark-demo"), show_default=True,
              help="Where to copy and run the examples (recreated).")
def command(target: Path) -> int:
    """Run the bundled example pipelines under capture and show where the manifests are."""
    from sharklib.demo import run_demo

    return run_demo(target)
