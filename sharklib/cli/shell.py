"""``sharklib shell [--new] [--list]``: a recorded, snapshotted, exportable shell."""

from __future__ import annotations

import click


@click.command(name="shell")
@click.option("--new", is_flag=True, help="Start a fresh session instead of resuming this folder's.")
@click.option("--list", "list_", is_flag=True, help="List this folder's sessions and exit.")
def command(new: bool, list_: bool) -> int:
    """Your bash, with every command recorded and every change snapshotted (:help inside)."""
    if list_:
        from sharklib.shell.listing import list_sessions

        click.echo(list_sessions(), nl=False)
        return 0
    from sharklib.shell.session import run_shell

    return run_shell(new=new)
