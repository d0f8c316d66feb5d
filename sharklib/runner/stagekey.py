"""Commands as cacheable stages: how a command line is read, its run key, its aggregate Run.

A stage is one command line (a pipeline stage, ``sharklib trace -- CMD``, a
shell command). Its process tree may hold many captured runs (a shell, a
Python script, ``cp``); for reuse they are folded into one Run whose inputs
are everything any process read that the stage did not itself produce, code
files included, and whose outputs are everything it left behind.

A stage is only recorded for reuse when its capture was complete: under the
native tracer, or when it is a single Python command (the Python capture then
sees every file it touches). Otherwise it would be "proved" done on evidence
that misses what, say, ``cp`` read. Plans (would a command be reused?) are in
:mod:`sharklib.runner.planner`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence

from sharklib.model import Output, Run, RunKeyParts, run_key_parts
from sharklib.model.runkey import relocate

SHELL_ARGV = ["/bin/sh", "-c"]
_REDIRECTS = {">", ">>", "<", "2>", "2>>", "&>", "1>", "1>>"}


def command_argv(command: Sequence[str] | str, shell: bool) -> list[str]:
    if shell:
        return [*SHELL_ARGV, command if isinstance(command, str) else shlex.join(command)]
    return [command] if isinstance(command, str) else list(command)


def project_root(cwd: str) -> str:
    from sharklib.common.identity import project_root as _root

    return _root(cwd)


def stage_environment(env_tag: str | None,
                      environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What of the environment enters a stage's key.

    ``environ`` is the environment the command will run with (default: this
    process's): its allow-listed variables are the key's, not those of whichever
    process happens to run the stage (a Dask worker's are not the client's).
    """
    from sharklib.common.identity import allowed_variables, environment_key

    env = environment_key()
    env.pop("tag", None)
    if environ is not None:
        env = {k: v for k, v in env.items() if not k.startswith("env:")}
        env.update(("env:" + k, v) for k, v in allowed_variables(environ).items())
    # which interpreter runs the runner is not the stage's business: the programs the stage
    # starts are (programs_key), by where they are relative to the project and the prefix
    env["stage-env"] = env_tag or "host"
    return env


# what separates simple commands in a shell line, once quoted strings are set aside
_QUOTED = re.compile(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"")
_SEPARATORS = re.compile(r"\|\|?|&&?|;|\n|\(|\)|`|\$\(|\{|\}")
_SHELL_SYNTAX = re.compile(r"[|&;\n()`${}]")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_KEYWORDS = frozenset({"!", "if", "then", "else", "elif", "fi", "do", "done", "while", "until",
                       "for", "case", "esac", "in", "time", "exec", "command", "nohup"})


def command_programs(command: Sequence[str] | str, shell: bool) -> list[str]:
    """The programs a command line starts: the first word of each simple command.

    A heuristic, as a shell would see it: quoted strings are arguments, leading
    ``NAME=value`` assignments, redirections and keywords are skipped. Enough to
    tell that another ``python`` or ``awk`` on ``PATH`` would run the stage now.
    """
    if not shell or not isinstance(command, str):
        words = [command] if isinstance(command, str) else list(command[:1])
        return [w for w in words if w]
    if _SHELL_SYNTAX.search(command) is None:
        segments = [command]  # the common case: one simple command
    else:
        segments = _SEPARATORS.split(_QUOTED.sub(" '' ", command))
    found: set[str] = set()
    for seg in segments:
        for word in seg.split():
            if word.startswith("#"):
                break
            if word in _KEYWORDS or _ASSIGNMENT.match(word) or word[0] in "<>" \
                    or word[:2] in ("1>", "2>", "&>"):
                continue
            word = word.strip("'\"")
            if word:
                found.add(word)
            break
    return sorted(found)


_BUILTINS = frozenset({".", ":", "[", "alias", "bg", "break", "cd", "continue", "eval", "exit",
                       "export", "false", "fg", "getopts", "hash", "jobs", "kill", "pwd",
                       "read", "readonly", "return", "set", "shift", "source", "test", "times",
                       "trap", "true", "type", "ulimit", "umask", "unalias", "unset", "wait",
                       "echo", "printf"})


def simple_command_program(command: Sequence[str] | str) -> str | None:
    """The program of a shell line that is one simple command, else ``None`` (a shell's call).

    ``python x.py > out`` gives ``python``; a builtin, a keyword, a variable
    expansion or any shell syntax (pipes, lists, substitutions) gives ``None``.
    """
    if not isinstance(command, str):
        return command[0] if command else None
    if _SHELL_SYNTAX.search(command) is not None or "#" in command:
        return None
    words = command.split()
    for word in words:
        if _ASSIGNMENT.match(word) or word[0] in "<>" or word[:2] in ("1>", "2>", "&>"):
            continue
        if word in _KEYWORDS or word in _BUILTINS or any(c in word for c in "'\"*?[~"):
            return None
        return word
    return None


def _resolve(program: str, cwd: str, path: str | None) -> str:
    """Where ``program`` is found (and the real file behind it), or ``""`` when it is not."""
    if "/" in program:
        hit = os.path.join(cwd, program)
        if not os.path.isfile(hit):
            return ""
    else:
        hit = shutil.which(program, path=path) or ""
        if not hit:
            return ""
    hit = os.path.abspath(hit)
    real = os.path.realpath(hit)
    # the file found on PATH and the one it leads to: a venv's python is a symlink to its base
    # interpreter, and which venv (its prefix) is told by the former
    return hit if real == hit else f"{hit} -> {real}"


_resolved: dict[tuple[str, str, str | None, str | None], str] = {}


def key_places(root: str) -> list[tuple[str, str]]:
    """Directories that are symbols in a stage's key: the project, the interpreter's prefixes."""
    from sharklib.common.identity import key_places as interpreter_places

    return [(root, "<project>"), *interpreter_places()]


def programs_key(command: Sequence[str] | str, shell: bool, cwd: str, path: str | None,
                 root: str | None = None) -> str:
    """The programs of ``command`` as resolved through ``path`` (``PATH``), for the run key.

    Paths inside the project (``root``) and the interpreter's prefixes are symbols
    (``<project>/bin/tool``, ``<prefix>/bin/python -> <base-prefix>/bin/python3.11``),
    so a checkout and a venv elsewhere give the same key.
    Cached per process: a pipeline's stages mostly start the same few programs.
    """
    parts = []
    for program in command_programs(command, shell):
        where = (program, cwd, path, root)
        got = _resolved.get(where)
        if got is None:
            found = _resolve(program, cwd, path)
            # a program found nowhere fails the stage, which is never cached
            got = _resolved[where] = relocate(f"{program}={found}", key_places(
                root or project_root(cwd))) if found else ""
        if got:
            parts.append(got)
    return "\n".join(parts)


def with_programs(environment: dict[str, str], command: Sequence[str] | str, shell: bool,
                  cwd: str, path: str | None, root: str | None = None) -> dict[str, str]:
    """``environment`` plus the programs the command starts: another ``awk`` is another stage."""
    return {**environment, "programs": programs_key(command, shell, cwd, path, root)}


def stage_key(command: Sequence[str] | str, *, shell: bool, cwd: str,
              env_tag: str | None = None, environment: dict[str, str] | None = None,
              root: str | None = None, path: str | None = None) -> tuple[RunKeyParts, str]:
    """The run key of a command line and the project root it is relative to.

    ``environment`` and ``root`` may be passed in when many stages share them
    (planning a pipeline), so they are worked out once, not once per stage.
    ``path`` is the ``PATH`` the command will run with (default: this process's):
    the programs it finds there are part of the key.
    """
    cwd = os.path.abspath(cwd)
    root = root or project_root(cwd)
    env = environment if environment is not None else stage_environment(env_tag)
    path = path if path is not None else os.environ.get("PATH", os.defpath)
    env = with_programs(env, command, shell, cwd, path, root)
    return run_key_parts(command_argv(command, shell), cwd, root, {"kind": "stage"}, env,
                         key_places(root)[1:]), root


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
    stage = Run(run_id=os.urandom(16).hex(), argv=argv, cwd=cwd, started=started, ended=ended,
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


def leaves_nothing(run: Run, streams: Mapping[str, bytes | None]) -> bool:
    """True when a finished step has nothing a reuse could restore or replay.

    Programs ran (``run.execs``) but no output file was written and nothing was printed
    (``mkdir -p out``, ``chmod``, a copy to another machine): a reuse would skip effects that
    no record holds, so such a step is never recorded. The one rule for it:
    :func:`sharklib.runner.record.record` applies it, and :meth:`sharklib.runner.step.Step.run`
    asks it first so that a step recording nothing never imports the cache.
    """
    return bool(run.execs) and not run.outputs and not any(streams.values())
