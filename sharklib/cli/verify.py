"""``sharklib verify FILE [--trust POLICY.toml]``."""

from __future__ import annotations

import click
from rich.console import Console

from sharklib.views.verdict import verify_command


@click.command(name="verify")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--trust", "policy", type=click.Path(dir_okay=False), default=None,
              help="Trust policy (TOML). Default: trust.toml in the config directory, if any.")
def command(file: str, policy: str | None) -> None:
    """Check every signature, every digest still on disk and the trust policy.

    Exits 1 when anything fails, naming the sidecar line, the step and the reason.
    """
    rc = verify_command(file, policy, Console(highlight=False))
    if rc:
        raise click.exceptions.Exit(rc)
