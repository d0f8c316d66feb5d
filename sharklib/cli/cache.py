"""``sharklib cache``: inspect, verify, clean and share the run cache."""

from __future__ import annotations

import datetime as _dt
import os

import click
from rich.console import Console
from rich.table import Table

from sharklib.cache import maintenance
from sharklib.cache.runcache import RunCache


def _open(root: str | None) -> RunCache:
    return RunCache.from_env(os.path.abspath(root or os.getcwd()))


def _when(ts: float, this_year: int | None = None) -> str:
    """Local time; without the year when it is ``this_year`` (narrow terminals)."""
    when = _dt.datetime.fromtimestamp(ts)
    return when.strftime("%m-%d %H:%M" if when.year == this_year else "%Y-%m-%d %H:%M")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


root_option = click.option("--root", type=click.Path(file_okay=False), default=None,
                           help="Project root (for its .sharklib/cache.toml). Default: cwd.")


tmp_age_option = click.option(
    "--tmp-age", default="1h", show_default=True,
    help="Remove temporaries of killed writers (here and on the remote) older than this.")


@click.group(name="cache")
def command() -> None:
    """Inspect, verify, clean and share the run cache."""


@command.command("ls")
@root_option
def ls_command(root: str | None) -> None:
    """Runs in the cache: when, size, last use, time saved."""
    with _open(root) as cache:
        rows = maintenance.list_runs(cache)
    from sharklib.attest.lineage import command_text
    from sharklib.views.text import safe_markup

    table = Table(box=None, header_style="bold")
    for col in ("run", "recorded", "took", "size", "last use", "reused", "saved"):
        # figures never break; a date may (at its space), the command anywhere
        table.add_column(col, justify="right" if col in ("took", "size", "reused", "saved") else "left",
                         no_wrap=col not in ("recorded", "last use"))
    # the interpreter by its name; on a narrow terminal the command wraps, the figures do not
    table.add_column("command", overflow="fold")
    this_year = _dt.date.today().year
    for r in rows:
        table.add_row(r.run_id[:12], _when(r.created, this_year), f"{r.duration:.1f} s",
                      _size(r.bytes), _when(r.last_used, this_year), str(r.uses), f"{r.saved:.1f} s",
                      safe_markup(command_text(r.argv, width=120)))
    Console().print(table if rows else "no runs cached")


@command.command("du")
@root_option
def du_command(root: str | None) -> None:
    """Disk usage of the cache."""
    with _open(root) as cache:
        u = maintenance.disk_usage(cache)
    Console(soft_wrap=True).print(
        f"{u.location}: {u.runs} runs, {u.objects} objects, {_size(u.stored_bytes)} stored "
        f"({_size(u.referenced_bytes)} referenced, {u.unreferenced_objects} unreferenced "
        f"objects); {u.saved_seconds:.1f} s saved so far")


@command.command("gc")
@root_option
@click.option("--max-age", default=None, help="Drop runs not used for this long (30d, 12h).")
@click.option("--max-size", default=None, help="Then keep the most recently used runs "
              "within this budget (10G, 500M).")
@click.option("--dry-run", is_flag=True, help="Only say what would go.")
@tmp_age_option
def gc_command(root: str | None, max_age: str | None, max_size: str | None,
               dry_run: bool, tmp_age: str) -> None:
    """Remove old runs and unreferenced objects (never what a live run holds)."""
    age = maintenance.parse_age(tmp_age)
    with _open(root) as cache:
        rep = maintenance.gc(cache, max_age=maintenance.parse_age(max_age) if max_age else None,
                             max_size=maintenance.parse_size(max_size) if max_size else None,
                             dry_run=dry_run, tmp_age=age)
    verb = "would remove" if dry_run else "removed"
    leftovers = f"; {rep.temporaries} leftover temporaries" if rep.temporaries else ""
    Console(soft_wrap=True).print(f"{verb} {len(rep.runs_removed)} runs and {rep.objects_removed} objects "
                    f"({_size(rep.bytes_freed)}){leftovers}")
    for problem in rep.problems:
        click.echo(f"sharklib: warning: {problem}", err=True)


@command.command("verify")
@root_option
@click.option("--fast", is_flag=True, help="Trust objects whose stat is unchanged since "
              "they were last verified.")
@tmp_age_option
def verify_command(root: str | None, fast: bool, tmp_age: str) -> None:
    """Check every object against its digest; quarantine bad ones (exit 1 if any)."""
    age = maintenance.parse_age(tmp_age)
    with _open(root) as cache:
        rep = maintenance.verify(cache, full=not fast, tmp_age=age)
    if rep.temporaries:
        Console(soft_wrap=True).print(f"removed {rep.temporaries} leftover temporaries "
                                      f"(older than {tmp_age})")
    console = Console(stderr=not rep.ok, soft_wrap=True)
    for sha in rep.bad:
        console.print(f"bad object {sha} (quarantined)")
    for run_id, sha in rep.dangling:
        console.print(f"run {run_id} names missing object {sha}")
    for problem in rep.problems:
        console.print(problem)
    remote = f"; {len(rep.remote_only)} more on the remote only (fetched on first use)" \
        if rep.remote_only else ""
    console.print(f"{rep.checked} objects checked: " + ("all good" if rep.ok else
                  f"{len(rep.bad)} bad, {len(rep.dangling)} dangling references") + remote)
    if not rep.ok:
        raise click.exceptions.Exit(1)


@command.command("push")
@root_option
@click.option("--run", "runs", multiple=True, metavar="RUN_ID",
              help="Only this run (repeatable); what a run recorded at exit pushes.")
def push_command(root: str | None, runs: tuple[str, ...]) -> None:
    """Upload local runs the remote lacks."""
    with _open(root) as cache:
        rep = maintenance.push(cache, run_ids=runs or None)
    _sync_report("pushed", rep)


@command.command("pull")
@root_option
@click.option("--index-only", is_flag=True, help="Fetch entries only; objects on first use.")
def pull_command(root: str | None, index_only: bool) -> None:
    """Fetch runs the remote has and the local cache lacks."""
    with _open(root) as cache:
        rep = maintenance.pull(cache, objects=not index_only)
    _sync_report("pulled", rep)


def _sync_report(verb: str, rep: maintenance.SyncReport) -> None:
    console = Console(soft_wrap=True)
    errors = Console(stderr=True, soft_wrap=True)
    said: dict[str, int] = {}
    for p in rep.problems:  # the same refusal for every run is one line, with the count
        said[p] = said.get(p, 0) + 1
    for p, n in said.items():  # on stderr: a caller (record's push at exit) reports the first
        errors.print(p + (f" ({n} runs)" if n > 1 else ""), style="red", markup=False,
                     highlight=False)
    parts = [f"{verb} {rep.entries} of {rep.total} runs"]
    if rep.skipped:
        parts.append(f"{rep.skipped} already there")
    if rep.completed:
        parts.append(f"{rep.completed} completed (the remote had their entries but not all "
                     f"their objects)")
    if rep.failed:
        parts.append(f"{rep.failed} refused" if verb == "pushed" else f"{rep.failed} failed")
    console.print("; ".join(parts))
    if rep.problems:
        raise click.exceptions.Exit(1)


@command.command("repair")
@root_option
def repair_command(root: str | None) -> None:
    """Rebuild a damaged run index from the runs stored beside it."""
    settings = RunCache.settings_from_env(os.path.abspath(root or os.getcwd()))
    rep = maintenance.repair(**settings)
    console = Console(soft_wrap=True)
    if rep.moved_aside:
        console.print(f"damaged index moved aside to {rep.moved_aside}")
    for aside in rep.packs_aside:
        console.print(f"damaged pack moved aside to {aside}")
    if rep.dropped:
        console.print(f"{rep.dropped} run{'s' if rep.dropped != 1 else ''} whose objects were in "
                      f"it taken out of the index (they run again when next needed)")
    for problem in rep.skipped:
        click.echo(f"sharklib: warning: skipped {problem}", err=True)
    console.print(f"indexed {rep.runs} run{'s' if rep.runs != 1 else ''} from the stored entries")
