"""``sharklib keys``: show, export, import and generate signing keys."""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape as _markup_escape

from sharklib.config import ENV_KEY
from sharklib.views import keyring


def escape(text: str) -> str:
    """A name for Rich markup: markup escaped, control characters shown (no terminal escapes)."""
    from sharklib.errors import printable

    return _markup_escape(printable(text))

key_option = click.option("--key", "key", type=click.Path(dir_okay=False), default=None,
                          envvar=ENV_KEY,
                          help="Private key to use (default: $SHARKLIB_KEY or the default key).")


@click.group(name="keys", invoke_without_command=True)
@click.pass_context
def command(ctx: click.Context) -> None:
    """Show, export, import and generate Ed25519 signing keys (default: show)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(show_command)


@command.command("show")
@key_option
def show_command(key: str | None = None) -> None:
    """The signing key's id, path and public PEM, and the keys you trust."""
    info = keyring.key_info(key)
    con = Console(highlight=False)
    con.print(f"key id  {info.keyid}")
    con.print(f"path    {escape(info.path)}")
    con.print(info.public_pem.rstrip())
    trusted = keyring.trusted_list()
    con.print(f"trusted keys ({len(trusted)}):")
    for t in trusted:
        con.print(f"  {t.keyid}  {escape(t.name)}")


@command.command("export")
@key_option
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the public key PEM here instead of standard output.")
def export_command(key: str | None, out: str | None) -> None:
    """The public key (PEM), to give to whoever verifies your files."""
    pem = keyring.export_public(key, out)
    if out:
        Console(stderr=True).print(f"wrote {escape(out)}")
    else:
        click.echo(pem, nl=False)


@command.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--name", default=None, help="Name for the key (default: the file's stem).")
def import_command(file: str, name: str | None) -> None:
    """Trust the public key in FILE (a colleague's or an institution's)."""
    keyid, dest = keyring.import_key(file, name)
    Console(highlight=False).print(f"trusted {keyid} as {escape(name or dest)} ({escape(dest)})")


@command.command("generate")
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="Where to create the key (default: the default key path).")
@click.option("--force", is_flag=True, help="Replace an existing key at that path.")
def generate_command(out: str | None, force: bool) -> None:
    """Create a new Ed25519 signing key (0600)."""
    info = keyring.generate(out, force)
    Console(highlight=False).print(f"created key {info.keyid} at {escape(info.path)}")
