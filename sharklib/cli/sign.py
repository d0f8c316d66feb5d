"""``sharklib sign --countersign FILE``: add your signature to a file's attestation."""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape as _markup_escape

from sharklib.config import ENV_KEY
from sharklib.views.countersign import countersign_file


def escape(text: str) -> str:
    """A name for Rich markup: markup escaped, control characters shown (no terminal escapes)."""
    from sharklib.errors import printable

    return _markup_escape(printable(text))


@click.command(name="sign")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--countersign", is_flag=True, required=True,
              help="Add a signature to the file's own attestation (payload unchanged).")
@click.option("--key", type=click.Path(dir_okay=False), default=None, envvar=ENV_KEY,
              help="Private key to sign with (default: $SHARKLIB_KEY or the default key).")
def command(file: str, countersign: bool, key: str | None) -> None:
    """Countersign FILE's attestation (for example an institution before publishing)."""
    done = countersign_file(file, key)
    Console(highlight=False).print(
        f"countersigned {escape(done.sidecar)} with key {done.keyid[:16]}: "
        f"{done.signatures} signatures on {done.attestation[:19]}")
