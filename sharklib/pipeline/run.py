"""Plan and run a Markdown pipeline: the library behind ``sharklib pipeline run|plan``.

1. read the document, build the stages, define the environments;
2. ask the runner about each stage (reuse or run, and what it observed last time);
3. link the DAG (refined by those observations) — every error names a document
   line, and all of this happens before anything runs;
4. show the plan, prepare environments, run what must run on the chosen
   executor, remember what was observed, publish, summarise.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from sharklib.config import ENV_LOCAL_POOL
from sharklib.errors import PipelineError, printable
from sharklib.pipeline.dag import link
from sharklib.pipeline.document import Document, read_document
from sharklib.pipeline.environments import (
    HOST,
    EnvSpec,
    PreparedEnv,
    parse_build_block,
    prepare,
    stage_path,
)
from sharklib.pipeline.plan import StagePlan, plan_stages, propagate
from sharklib.pipeline.stages import Publish, Stage, build_stages
from sharklib.pipeline.state import PipelineState, Placed, placed_records, state_dir
from sharklib.pipeline.summary import plan_counts, summary_line

if TYPE_CHECKING:
    from rich.console import Console

    from sharklib.pipeline.leaf import LeafJob, LeafResult

Executor = Literal["local", "dask", "dask-local"]


@dataclass(slots=True)
class Pipeline:
    """A document turned into a linked, planned set of stages."""

    doc: Document
    stages: list[Stage]
    order: list[int]
    envs: dict[str, EnvSpec]
    publishes: list[Publish]
    plans: list[StagePlan]
    state: PipelineState
    notes: list[str] = field(default_factory=list)

    @property
    def docdir(self) -> str:
        return str(self.doc.directory)


@dataclass(slots=True)
class Failure:
    line: int
    command: str
    exit_status: int
    stderr_tail: str
    log: str | None


@dataclass(slots=True)
class PipelineReport:
    stages: int = 0
    ran: int = 0
    reused: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)
    saved_seconds: float = 0.0
    wall_seconds: float = 0.0
    published: list[str] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.failures or self.skipped else 0


def _environments(doc: Document) -> dict[str, EnvSpec]:
    envs: dict[str, EnvSpec] = {"host": HOST}
    for b in doc.blocks:
        if b.kind == "build":
            spec = parse_build_block(b, doc.path)
            if spec.name in envs and envs[spec.name].line:
                raise PipelineError(f"environment '{spec.name}' is defined twice (first at line "
                                    f"{envs[spec.name].line})", doc.path, b.line)
            envs[spec.name] = spec
    return envs


def load_pipeline(path: str | os.PathLike[str], rerun: bool = False,
                  allow_outside: tuple[str, ...] = ()) -> Pipeline:
    """Everything before execution; raises :class:`PipelineError` naming the line of any problem.

    ``allow_outside``: directories ``file:`` imports and ``find_links`` may read from besides
    the document's own (``--allow-outside``); see :mod:`sharklib.pipeline.containment`.
    """
    from sharklib.pipeline.containment import check_document

    doc = read_document(path)
    envs = _environments(doc)
    stages, publishes, envs_used, _ = build_stages(doc)
    check_document(str(doc.directory), doc.path,
                   [(s.line, s.source, s.dest) for s in stages
                    if s.kind == "import" and s.source and s.dest],
                   [(p.line, p.source, p.dest) for p in publishes],
                   [(e.line, link) for e in envs.values()
                    for link in e.definition.get("find_links", [])], allow_outside)
    for name, line in envs_used.items():
        if name not in envs:
            raise PipelineError(f"environment '{name}' is not defined (add a shark-build:{name} "
                                "block, or use shark-run:host)", doc.path, line)
    state = PipelineState.load(doc.path)
    docdir = str(doc.directory)
    paths = {name: stage_path(spec) for name, spec in envs.items()}
    plans = plan_stages([(s.command, docdir, envs[s.env].tag, paths[s.env]) for s in stages], rerun)
    observed = {i: (p.inputs, p.outputs) for i, p in enumerate(plans) if p.inputs or p.outputs}
    order = link(stages, docdir, doc.path, state.stages, observed)
    written = {w for s in stages for w in s.writes}
    for pub in publishes:
        src = os.path.normpath(os.path.join(docdir, pub.source))
        if src not in written and not os.path.exists(src):
            raise PipelineError(f"publish source {pub.source} is neither written by a stage nor on disk",
                                doc.path, pub.line)
    propagate(stages, order, plans, state.placed)
    return Pipeline(doc=doc, stages=stages, order=order, envs=envs, publishes=publishes,
                    plans=plans, state=state, notes=list(doc.notes) + state.notes)


def _parents(s: Stage) -> tuple[str, ...]:
    return tuple(sorted({os.path.dirname(w) for w in s.writes
                         if w not in s.reads and not os.path.isdir(w)}))


def _rel(p: str, root: str) -> str:
    return p[len(root) + 1:] if p.startswith(root + "/") else p


def run_pipeline(path: str | os.PathLike[str], *, jobs: int | None = None, dry_run: bool = False,
                 executor: Executor = "local", scheduler: str | None = None, rerun: bool = False,
                 console: Console | None = None,
                 allow_outside: tuple[str, ...] = ()) -> PipelineReport:
    """Plan, then (unless ``dry_run``) run a Markdown pipeline; return what happened.

    Without a ``console``, an unchanged pipeline is reported in two plain lines
    and rich is never imported: at a thousand stages its import alone was a
    third of the whole re-check. The plan table is one ``pipeline plan`` away.
    """
    started = time.monotonic()
    _check_options(executor, scheduler)
    pipe = load_pipeline(path, rerun=rerun, allow_outside=allow_outside)
    stages, plans = pipe.stages, pipe.plans
    report = PipelineReport(stages=len(stages), dry_run=dry_run)
    todo = [s for s in stages if not plans[s.index].skip]
    if console is None and not dry_run and not todo and not pipe.notes:
        return _up_to_date(report, pipe, started)
    from sharklib.pipeline.progress import plan_table

    if console is None:
        from rich.console import Console

        console = Console()
    for note in pipe.notes:
        console.print(f"[dim]{_esc(note)}[/]")
    console.print(plan_table(stages, plans, f"plan for {_esc(pipe.doc.path.name)}"))
    console.print(plan_counts(plans))
    if dry_run:
        return report
    prepared: dict[str, PreparedEnv] = {}
    for name in sorted({s.env for s in todo}):
        prepared[name] = prepare(pipe.envs[name], pipe.doc.path,
                                 log=lambda m: console.print(f"[dim]{_esc(m)}[/]", soft_wrap=True))
    leaf_jobs: dict[int, LeafJob] = {}
    if todo:
        from sharklib.pipeline.leaf import LeafJob, key_environment  # only when something runs

        log_dir = str(state_dir(pipe.doc.path) / "logs")
        key_env = key_environment()
        leaf_jobs = {s.index: LeafJob(index=s.index,
                                      command=prepared[s.env].wrap(s.command, pipe.docdir),
                                      cwd=pipe.docdir, env_tag=prepared[s.env].tag,
                                      env_overrides=prepared[s.env].overrides, log_dir=log_dir,
                                      rerun=rerun, make_dirs=_parents(s), key_env=key_env)
                     for s in todo}
    deps = {s.index: s.deps for s in stages}
    # stages end with this process, however it ends (see pipeline/watchdog.py)
    from sharklib.pipeline import watchdog

    stop_watchdog = watchdog.start() if leaf_jobs else (lambda: None)
    try:
        results, skipped = _execute(leaf_jobs, deps, executor, scheduler, jobs, console)
    except Exception:
        stop_watchdog()  # an error of ours, not a kill: what ran has ended or is ending
        raise
    stop_watchdog()
    for s in stages:
        if plans[s.index].skip:
            report.reused += 1
            report.saved_seconds += plans[s.index].saved_seconds
    _note_reused(pipe)
    updates: dict[str, dict[str, list[str]]] = {}
    imports: dict[str, str] = {}
    placed: dict[str, Placed | None] = {}
    finished: dict[str, tuple[str, list[str]]] = {}
    for i, res in results.items():
        s = stages[i]
        if res.exit_status == 0 and res.run_id:
            finished[s.signature] = (res.run_id, res.run_outputs)
        else:  # its outputs are no cached run's now: the next run hands it to the runner
            placed[s.signature] = None
        if res.exit_status != 0:
            shown = s.command if s.kind == "run" else s.display
            report.failures.append(Failure(line=s.line, command=shown, exit_status=res.exit_status,
                                           stderr_tail=res.stderr_tail, log=res.log))
            continue
        if res.reused:
            report.reused += 1
            report.saved_seconds += res.saved_seconds
        else:
            report.ran += 1
        writes = sorted({_rel(w, pipe.docdir) for w in s.writes} |
                        {_rel(os.path.normpath(o), pipe.docdir) for o in res.outputs})
        ins = sorted({_rel(os.path.normpath(x), pipe.docdir) for x in res.inputs} - set(writes))
        updates[s.signature] = {"writes": writes, "inputs": ins}
        if s.kind == "import" and s.source and s.dest:
            imports[s.source] = _import_digest(s, pipe, console)
    report.skipped = len(skipped)
    placed.update(placed_records(finished))
    if updates or imports or placed:
        pipe.state.save(updates, imports, placed)
    _publish(report, pipe)
    report.wall_seconds = time.monotonic() - started
    _summary(console, report, pipe)
    return report


def _check_options(executor: Executor, scheduler: str | None) -> None:
    """Options that would be silently ignored are errors, before anything is planned."""
    if scheduler and executor != "dask":
        raise PipelineError(f"--scheduler only applies to --executor dask (not {executor})")
    if executor == "local" and os.environ.get(ENV_LOCAL_POOL):
        from sharklib.pipeline.executors.local import forced_pool

        forced_pool()


def _publish(report: PipelineReport, pipe: Pipeline) -> None:
    if not report.failures and not report.skipped and pipe.publishes:
        from sharklib.pipeline.publish import publish

        report.published = publish(pipe.publishes, pipe.doc.directory, pipe.doc.path)


def _note_reused(pipe: Pipeline) -> None:
    """Count the stages reused in place as uses of their runs (``cache ls``, ``sharklib report``).

    The summary line says they were reused and what that saved; the cache's
    ledger must agree. One transaction for the whole pipeline; best effort.
    """
    used = [(p.run_id, p.saved_seconds) for p in pipe.plans if p.skip and p.run_id]
    if not used:
        return
    try:
        from sharklib.cache.runcache import RunCache
        from sharklib.runner.stagekey import project_root

        # the cache the stages were planned against: the project's, found as the runner finds it
        with RunCache.from_env(project_root(pipe.docdir)) as cache:
            cache.index.mark_used_many(used)
    except Exception:
        pass  # a read-only or unreachable cache: the stages were still reused


def _up_to_date(report: PipelineReport, pipe: Pipeline, started: float) -> PipelineReport:
    """Every stage reused: the counts and the summary, as plain lines."""
    report.reused = len(pipe.stages)
    report.saved_seconds = sum(p.saved_seconds for p in pipe.plans)
    _note_reused(pipe)
    _publish(report, pipe)
    report.wall_seconds = time.monotonic() - started
    lines = [plan_counts(pipe.plans), summary_line(report)]
    lines += [f"published {printable(p)}" for p in report.published]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    return report


def _import_digest(s: Stage, pipe: Pipeline, console: Console) -> str:
    from sharklib.pipeline.imports import tree_digest

    assert s.source is not None and s.dest is not None
    digest = tree_digest(os.path.join(pipe.docdir, s.dest))
    before = pipe.state.imports.get(s.source)
    if before and before != digest and not s.pin:
        console.print(f"[yellow]note:[/] {_esc(s.source)} changed since it was first fetched "
                      f"({before[:19]}… → {digest[:19]}…); pin it with 'sharklib pipeline pin'")
    return digest


def _execute(jobs: dict[int, LeafJob], deps: dict[int, set[int]], executor: Executor,
             scheduler: str | None, n: int | None, console: Console) -> tuple[dict[int, LeafResult], set[int]]:
    if not jobs:  # an unchanged pipeline: nothing to import for
        return {}, set()
    from sharklib.pipeline.executors import schedule
    from sharklib.pipeline.progress import LiveProgress
    from sharklib.runner.opencaches import kept_open
    from sharklib.trace.service import shared_tracing

    workers = n or os.cpu_count() or 1
    kind = "dask"
    if executor == "local":
        from sharklib.pipeline.executors.local import LocalPool, pool_kind

        kind = pool_kind(len(jobs), workers)
        pool: object = LocalPool(workers, kind=kind)
    elif executor in ("dask", "dask-local"):
        from sharklib.pipeline.executors.dask import DaskPool

        if executor == "dask" and not scheduler:
            raise PipelineError("--executor dask needs --scheduler tcp://HOST:PORT")
        pool = DaskPool(scheduler if executor == "dask" else None, workers)
    else:
        raise PipelineError(f"unknown executor {executor!r}")
    try:
        # stages run from this process's threads share one loaded tracer and open caches
        # (worker processes keep their own)
        here = kind == "threads"
        with shared_tracing() if here else contextlib.nullcontext(), \
                kept_open() if here else contextlib.nullcontext(), \
                LiveProgress(console, len(jobs)) as live:
            return schedule(jobs, deps, pool,  # type: ignore[arg-type]
                            on_start=lambda i: live.started(),
                            on_finish=lambda r: live.finished(r.reused, r.exit_status != 0,
                                                              r.saved_seconds))
    finally:
        pool.close()  # type: ignore[attr-defined]


def _summary(console: Console, report: PipelineReport, pipe: Pipeline) -> None:
    for f in report.failures:
        console.print(f"[red]failed[/] {_esc(str(pipe.doc.path))}:{f.line}: exit {f.exit_status}: "
                      f"{_esc(f.command)}", soft_wrap=True)
        tail = f.stderr_tail.strip().splitlines()[-10:]
        for t in tail:
            console.print(f"  [dim]│[/] {_esc(t)}", soft_wrap=True)
        if f.log:
            console.print(f"  [dim]full log: {_esc(f.log)}.err[/]", soft_wrap=True)
    colour = "red" if report.exit_code else "green"
    console.print(f"[{colour}]{_esc(summary_line(report))}[/]")
    for p in report.published:
        console.print(f"published {_esc(p)}")


def _esc(text: str) -> str:
    """A recorded name or command for Rich markup: markup escaped, control characters shown
    as escapes (a file name's ESC sequence must not reach the terminal)."""
    from rich.markup import escape

    return escape(printable(text))
