"""``sharklib pipeline``: run, plan and pin Markdown pipelines (and regenerate them from lineage)."""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape as _markup_escape


def escape(text: str) -> str:
    """A name for Rich markup: markup escaped, control characters shown (no terminal escapes)."""
    from sharklib.errors import printable

    return _markup_escape(printable(text))

_EXECUTORS = click.Choice(["local", "dask", "dask-local"])


@click.group(name="pipeline")
def command() -> None:
    """Run, plan, pin and regenerate Markdown pipelines."""


def _run(document: str, jobs: int | None, dry_run: bool, executor: str, scheduler: str | None,
         rerun: bool, allow_outside: tuple[str, ...] = ()) -> int:
    from sharklib.pipeline import bulk, run_pipeline

    bulk.freeze_after = True  # this process ends with the pipeline: see bulk.freeze_after
    report = run_pipeline(document, jobs=jobs, dry_run=dry_run, executor=executor,  # type: ignore[arg-type]
                          scheduler=scheduler, rerun=rerun, allow_outside=allow_outside)
    return report.exit_code


_ALLOW_OUTSIDE = click.option(
    "--allow-outside", "allow_outside", multiple=True, metavar="DIR",
    type=click.Path(file_okay=False, exists=True),
    help="Let file: imports and find_links read from DIR too (repeatable); nothing is ever "
         "written outside the document's directory.")


@command.command("run")
@click.argument("document", type=click.Path(dir_okay=False))
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Stages to run at once (default: number of cores).")
@click.option("--dry-run", "-n", is_flag=True, help="Show the plan; run nothing.")
@click.option("--executor", type=_EXECUTORS, default="local", show_default=True)
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Dask scheduler for --executor dask.")
@click.option("--rerun", is_flag=True, help="Run every stage even when it could be reused.")
@click.option("--report", is_flag=True,
              help="The summary line also states the energy and emissions reuse saved.")
@_ALLOW_OUTSIDE
def run_cmd(document: str, jobs: int | None, dry_run: bool, executor: str, scheduler: str | None,
            rerun: bool, report: bool, allow_outside: tuple[str, ...]) -> int:
    """Plan DOCUMENT, then run what must run."""
    if report:
        import os

        from sharklib.config import ENV_REPORT

        os.environ[ENV_REPORT] = "1"  # read by the summary line (model.energy)
    return _run(document, jobs, dry_run, executor, scheduler, rerun, allow_outside)


@command.command("plan")
@click.argument("document", type=click.Path(dir_okay=False))
@click.option("--rerun", is_flag=True, help="Plan as if every stage had to run.")
@_ALLOW_OUTSIDE
def plan_cmd(document: str, rerun: bool, allow_outside: tuple[str, ...]) -> int:
    """Show what a run would reuse and what it would run, and why (= run --dry-run)."""
    return _run(document, None, True, "local", None, rerun, allow_outside)


@command.command("pin")
@click.argument("document", type=click.Path(dir_okay=False, exists=True))
def pin_cmd(document: str) -> int:
    """Write the digests of fetched imports back into DOCUMENT."""
    from sharklib.pipeline import pin_document

    console = Console()
    for r in pin_document(document):
        digest = f" {r.digest}" if r.digest else ""
        console.print(f"line {r.line}: [bold]{escape(r.status)}[/]: {escape(r.source)}{escape(digest)}",
                      soft_wrap=True)
    return 0


def _add_from() -> None:
    """``pipeline from`` belongs to the lineage views; the group works without it (or broken)."""
    try:
        from sharklib.cli.pipeline_from import from_command
    except Exception:
        return
    command.add_command(from_command, "from")


_add_from()
