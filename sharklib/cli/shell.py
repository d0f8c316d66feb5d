"""``sharklib shell [--new] [--list] [--delete SESSION]``: a recorded, snapshotted, exportable shell."""

from __future__ import annotations

import click


@click.command(name="shell")
@click.option("--new", is_flag=True, help="Start a fresh session instead of resuming this folder's.")
@click.option("--list", "list_", is_flag=True, help="List this folder's sessions and exit.")
@click.option("--delete", "delete", metavar="SESSION", default=None,
              help="Delete a session (its history, and the states it kept for :undo) and exit.")
def command(new: bool, list_: bool, delete: str | None) -> int:
    """Your bash, with every command recorded and every change snapshotted (:help inside)."""
    if delete is not None:
        from sharklib.shell.listing import delete_session

        click.echo(delete_session(delete), nl=False)
        return 0
    if list_:
        from sharklib.shell.listing import list_sessions

        click.echo(list_sessions(), nl=False)
        return 0
    from sharklib.shell.session import run_shell

    return run_shell(new=new)
