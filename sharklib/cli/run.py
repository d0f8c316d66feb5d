"""``sharklib run``: the console-script twin of ``python -m sharklib run``."""

from __future__ import annotations

import sys

import click


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False,
                                 "help_option_names": []})
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def command(argv: tuple[str, ...]) -> None:
    """Run a Python script under capture: sharklib run [-q] [--rerun] [--no-cache] SCRIPT ARGS..."""
    from sharklib.capture.main import run_main

    sys.exit(run_main(list(argv)))
