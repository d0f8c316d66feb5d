"""The ``sharklib`` click group: the table of sub-commands, imported on first use.

Each sub-command lives in its own module under :mod:`sharklib.cli` and is
imported only when invoked, so ``sharklib --help`` stays fast. A
:class:`~sharklib.errors.SharkError` becomes one line on stderr and exit 2.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from sharklib import __version__
from sharklib.errors import SharkError

#: command name -> (module, one-line help). Modules that do not exist yet are hidden.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("sharklib.cli.run", "Run a Python script under capture (reusing past results)."),
    "env": ("sharklib.cli.env", "Run a command (make, a shell script) with capture on for every Python step."),
    "trace": ("sharklib.cli.trace", "Record any program's process tree with the native tracer."),
    "show": ("sharklib.cli.show", "Show a file's lineage as a tree."),
    "verify": ("sharklib.cli.verify", "Verify signatures, digests and a trust policy."),
    "keys": ("sharklib.cli.keys", "Show, export and import signing keys."),
    "sign": ("sharklib.cli.sign", "Countersign a file's attestation."),
    "why": ("sharklib.cli.why", "What a file depends on: inputs, code, environment, downloads."),
    "diff": ("sharklib.cli.diff", "Why two results differ."),
    "graph": ("sharklib.cli.graph", "The lineage DAG as DOT, Mermaid, JSON or an HTML page."),
    "export": ("sharklib.cli.export", "Export lineage as in-toto, PROV-JSON, RO-Crate or OpenLineage."),
    "log": ("sharklib.cli.log", "Recorded runs and reuses, newest first, filterable."),
    "uses": ("sharklib.cli.uses", "Who read a file, directory, URL or module, and what came of it."),
    "impact": ("sharklib.cli.impact", "What depends on a path (or on what changed), and the cost to redo it."),
    "report": ("sharklib.cli.report", "The frugality ledger: compute, energy and emissions saved by reuse."),
    "cache": ("sharklib.cli.cache", "Inspect, verify, clean and share the run cache."),
    "pipeline": ("sharklib.cli.pipeline", "Run, plan, pin and regenerate Markdown pipelines."),
    "demo": ("sharklib.cli.demo", "Run the bundled example pipeline."),
    "doctor": ("sharklib.cli.doctor", "What this machine allows (tracing, instant restores, remote, key) and what is missing costs."),
    "shell": ("sharklib.cli.shell", "A shell whose commands are recorded, snapshotted and exportable."),
}


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (mod, _) in COMMANDS.items() if _available(mod))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None or not _available(entry[0]):
            return None
        return importlib.import_module(entry[0]).command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sharklib")
def cli() -> None:
    """Record, sign and reuse what every step of a pipeline read, wrote and ran."""


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning SharkError into one line and exit 2."""
    args = sys.argv[1:] if argv is None else argv
    try:
        rv = cli.main(args=args, prog_name="sharklib", standalone_mode=False)
    except SharkError as exc:
        click.echo(f"sharklib: error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Aborted.", err=True)
        return 130
    except Exception as exc:
        # a bug of sharklib's, not the user's: one line that names it, the traceback on request
        from sharklib.config import ENV_DEBUG  # only on this path: not in `--version`'s start-up

        if os.environ.get(ENV_DEBUG, "") not in ("", "0"):
            raise
        where = " ".join(args[:1]) or "sharklib"
        click.echo(f"sharklib: error: {where} failed: {type(exc).__name__}: {exc} "
                   f"({ENV_DEBUG}=1 shows the traceback; please report it)", err=True)
        return 1
    return rv if isinstance(rv, int) else 0
