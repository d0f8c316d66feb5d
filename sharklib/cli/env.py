"""``sharklib env -- CMD ARGS`` and ``sharklib env --shell``."""

from __future__ import annotations

import sys

import click


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--shell", "shell", is_flag=True, help="Print export lines for eval \"$(sharklib env --shell)\".")
@click.option("-q", "--quiet", is_flag=True, help="No summary line from captured steps.")
@click.option("--explain", is_flag=True,
              help="Run nothing: say whether the Python step CMD would be reused, and if not, why.")
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def command(shell: bool, quiet: bool, explain: bool, argv: tuple[str, ...]) -> None:
    """Run CMD (make, a shell script) with capture on for every Python step inside it."""
    from sharklib.capture.envcmd import env_main

    sys.exit(env_main(list(argv), shell=shell, quiet=quiet, explain=explain))
