"""Options every query command shares: ``--format`` and ``--remote``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

F = Callable[..., Any]


def query_options(func: F) -> F:
    """``--format table|json`` and ``--remote [URL]`` (alone: the configured remote)."""
    func = click.option("--remote", "remote", is_flag=False, flag_value="", default=None,
                        metavar="[URL]",
                        help="Ask a shared remote cache's entries instead of the local index "
                             "(alone: SHARKLIB_CACHE_REMOTE / the project's remote).")(func)
    func = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                        show_default=True, help="A table for people, or JSON (stable fields).")(func)
    return func


def remote_arg(remote: str | None) -> bool | str:
    """``--remote`` alone means the configured remote; a URL names one."""
    if remote is None:
        return False
    return remote or True
