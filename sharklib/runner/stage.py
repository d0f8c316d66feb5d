"""Commands as cacheable stages: their run key, their aggregate Run, and reuse plans.

A stage is one command line (a pipeline stage, ``sharklib trace -- CMD``, a
shell command). Its process tree may hold many captured runs (a shell, a
Python script, ``cp``); for reuse they are folded into one Run whose inputs
are everything any process read that the stage did not itself produce, code
files included, and whose outputs are everything it left behind.

A stage is only recorded for reuse when its capture was complete: under the
native tracer, or when it is a single Python command (the Python capture then
sees every file it touches). Otherwise it would be "proved" done on evidence
that misses what, say, ``cp`` read.
"""

from __future__ import annotations

import os
import shlex
import sys
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sharklib.model import Output, Run, RunKeyParts, run_key_parts

SHELL_ARGV = ["/bin/sh", "-c"]
_REDIRECTS = {">", ">>", "<", "2>", "2>>", "&>", "1>", "1>>"}


def command_argv(command: Sequence[str] | str, shell: bool) -> list[str]:
    if shell:
        return [*SHELL_ARGV, command if isinstance(command, str) else shlex.join(command)]
    return [command] if isinstance(command, str) else list(command)


def project_root(cwd: str) -> str:
    from sharklib.capture.identity import project_root as _root

    return _root(cwd)


def stage_environment(env_tag: str | None) -> dict[str, str]:
    """What of the environment enters a stage's key."""
    from sharklib.capture.identity import environment_key

    env = environment_key()
    env.pop("tag", None)
    # which interpreter runs the runner is not the stage's business; its real file still is
    # (python vs python3 of one venv are the same interpreter)
    env["interpreter"] = os.path.realpath(env.get("interpreter", sys.executable))
    env["stage-env"] = env_tag or "host"
    return env


def stage_key(command: Sequence[str] | str, *, shell: bool, cwd: str,
              env_tag: str | None = None, environment: dict[str, str] | None = None,
              root: str | None = None) -> tuple[RunKeyParts, str]:
    """The run key of a command line and the project root it is relative to.

    ``environment`` and ``root`` may be passed in when many stages share them
    (planning a pipeline), so they are worked out once, not once per stage.
    """
    cwd = os.path.abspath(cwd)
    root = root or project_root(cwd)
    env = environment if environment is not None else stage_environment(env_tag)
    return run_key_parts(command_argv(command, shell), cwd, root, {"kind": "stage"}, env), root


def is_single_python_command(command: Sequence[str] | str, shell: bool) -> bool:
    """True for ``python script.py ARGS [> out] [< in]``: the Python capture sees all of it."""
    if isinstance(command, str):
        try:
            words = shlex.split(command, comments=True)
        except ValueError:
            return False
        if not shell:
            words = [command]
    else:
        words = list(command)
    if not words:
        return False
    if shell and any(w in ("|", "||", "&&", ";", "&") or w.startswith(("$(", "`")) for w in words):
        return False
    if shell and isinstance(command, str) and any(c in command for c in "|;&`$"):
        return False
    head = os.path.basename(words[0])
    return head.startswith("python") or words[0] == sys.executable


def aggregate(runs: Iterable[Run], *, argv: list[str], cwd: str, started: float, ended: float,
              exit_status: int, run_key: str | None, inherited: Iterable[str] = ()) -> Run:
    """One Run standing for a whole stage.

    ``inherited`` names the files the stage's own stdout/stderr were handed
    (a log the caller chose): they are not outputs of the stage. A redirection
    inside the command (``> out.csv``) is.
    """
    runs = sorted(runs, key=lambda r: r.started)
    skip = set(inherited)
    stage = Run(run_id=uuid.uuid4().hex, argv=argv, cwd=cwd, started=started, ended=ended,
                exit_status=exit_status, pid=os.getpid(), backend="merged",
                children=[r.run_id for r in runs], run_key=run_key,
                warnings=[w for r in runs for w in r.warnings][:20])
    stage.fold(runs, keep_output=lambda o: not (o.stream and o.path in skip))
    gone = {p for r in runs for p in (*r.removed, *r.temporaries) if not os.path.exists(p)}
    # a stage's redirected stdout is a file of the stage: restored as a file, never replayed
    stage.outputs = [Output(o.path, o.sha256, o.size, o.attestation)
                     for o in stage.outputs if o.path not in gone]
    if runs:
        stage.user, stage.host = runs[0].user, runs[0].host
        stage.environment.interpreter = runs[-1].environment.interpreter
    return stage


@dataclass(slots=True)
class Plan:
    """Would this command be reused, and why (not)?"""

    action: str
    reason: str
    run_id: str | None = None
    saved_seconds: float = 0.0
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


@dataclass(slots=True)
class StageSpec:
    command: Sequence[str] | str
    cwd: str
    shell: bool = True
    env_tag: str | None = None


def _abs(path: str, root: str) -> str:
    return path if os.path.isabs(path) else os.path.join(root, path)


def plan_commands(specs: Sequence[StageSpec], cache: object | None = None) -> list[Plan]:
    """Reuse plans for many commands at once: one index query, one stat-cache pass.

    Nothing is restored or written; :func:`sharklib.runner.run_command` does that
    when the stage is actually run.
    """
    from sharklib.cache.runcache import RunCache
    from sharklib.config import ENV_NO_CACHE, ENV_RERUN, flag
    from sharklib.runner import reuse

    if flag(ENV_NO_CACHE):
        return [Plan("run", "cache disabled (--no-cache)") for _ in specs]
    if flag(ENV_RERUN):
        return [Plan("run", "forced (--rerun)") for _ in specs]
    envs: dict[str | None, dict[str, str]] = {}
    roots: dict[str, str] = {}
    keyed = []
    for s in specs:
        cwd = os.path.abspath(s.cwd)
        if s.env_tag not in envs:
            envs[s.env_tag] = stage_environment(s.env_tag)
        if cwd not in roots:
            roots[cwd] = project_root(cwd)
        keyed.append(stage_key(s.command, shell=s.shell, cwd=cwd, env_tag=s.env_tag,
                               environment=envs[s.env_tag], root=roots[cwd]))
    own = cache is None
    rc: RunCache = cache if cache is not None else RunCache.from_env(next(iter(roots.values()), None))  # type: ignore[assignment]
    try:
        digests = [parts.digest() for parts, _ in keyed]
        found = rc.index.candidates_many(set(digests))
        wanted: set[str] = set()
        for (_, root), d in zip(keyed, digests, strict=True):
            for entry in found.get(d, [])[:1]:
                wanted.update(_abs(p, root) for p, _ in (*entry.inputs, *entry.modules))
        on_disk = rc.statcache.digests(wanted)
        plans: list[Plan] = []
        for spec, (_, root), d in zip(specs, keyed, digests, strict=True):
            entries = found.get(d, [])
            if not entries:
                plans.append(Plan("run", "new: no past run of this command, code and environment"))
                continue
            entry = entries[0]
            inputs = [_abs(p, root) for p, _ in entry.inputs]
            outputs = [_abs(o.path, root) for o in entry.outputs()]
            changed = next((p for p, sha in (*entry.inputs, *entry.modules)
                            if (on_disk.get(_abs(p, root)) or ("",))[0] != sha), None)
            if changed is not None:
                rel = changed if not os.path.isabs(changed) else os.path.relpath(changed, spec.cwd)
                what = "code changed" if changed.endswith(".py") else "input changed"
                plans.append(Plan("run", f"{what}: {rel}", entry.run_id, 0.0, inputs, outputs))
                continue
            data = entry.run_data()
            dist = reuse.distributions_changed(data)
            if dist is not None:
                plans.append(Plan("run", f"environment changed: {dist}", entry.run_id, 0.0,
                                  inputs, outputs))
                continue
            if reuse.downloads_trusted(data) is None:
                plans.append(Plan("run", "a download is no longer trusted", entry.run_id, 0.0,
                                  inputs, outputs))
                continue
            saved = max(0.0, (entry.ended or entry.started) - entry.started)
            plans.append(Plan("reuse", "inputs unchanged", entry.run_id, saved, inputs, outputs))
        return plans
    finally:
        if own:
            rc.close()


def plan_command(command: Sequence[str] | str, *, shell: bool = True, cwd: str | None = None,
                 env_tag: str | None = None) -> Plan:
    """The reuse plan of one command (see :func:`plan_commands`)."""
    return plan_commands([StageSpec(command, os.path.abspath(cwd or os.getcwd()), shell,
                                    env_tag)])[0]

