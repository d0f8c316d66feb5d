"""make's recipe shell under ``sharklib env -- make``: every non-Python recipe line is a step.

``sharklib env`` puts ``SHELL=<python> .SHELLFLAGS='-E -m sharklib.runner.recipe_shell -c'`` on
make's command line (GNU make runs every recipe line as ``$(SHELL) $(.SHELLFLAGS) LINE`` and
passes command-line variables on to sub-makes). A line that starts a Python interpreter is
handed straight to the real shell: the capture bootstrap in its environment records and reuses
it, as before. Any other line (``sort``, ``cp -r``, ``tar``, ``bash summarize.sh``) goes through
the runner like a pipeline stage: keyed, reused when provably done, else run under the native
tracer and recorded. Where no tracer may run here, the line runs plainly and one line per make
invocation says such steps are not cached.

The shell that runs the line is ``/bin/sh``, or the one the Makefile asks for with
``SHELL = ...`` (``sharklib env`` reads that assignment and passes it on in
:data:`ENV_RECIPE_SHELL`), so bash-only recipes keep working.
"""

from __future__ import annotations

import os
import re
import shlex
import sys

from sharklib.config import ENV_QUIET, ENV_RECIPE_NOTE, ENV_RECIPE_SHELL, flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sharklib.model import Run

#: the shell the Makefile itself asked for (read by ``sharklib env``)
#: a file created once per ``sharklib env`` invocation when a note has been printed
MODULE = "sharklib.runner.recipe_shell"

_PYTHON = re.compile(r"(.*/)?python(\d+(\.\d+)*)?")
_ASSIGN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def starts_python(line: str) -> bool:
    """Does the recipe line start a Python interpreter (after ``VAR=value`` words)?"""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return False
    for w in words:
        if _ASSIGN.match(w):
            continue
        return bool(_PYTHON.fullmatch(w))
    return False


def make_arguments(argv: list[str], cwd: str) -> list[str]:
    """The ``SHELL=`` / ``.SHELLFLAGS=`` words ``sharklib env`` adds to a make command line.

    None when the user set ``SHELL`` on the command line themselves, or when the interpreter's
    path has white space (make would split it).
    """
    if any(a.startswith(("SHELL=", ".SHELLFLAGS=")) for a in argv[1:]):
        return []
    exe = sys.executable
    if not exe or any(c.isspace() for c in exe):
        return []
    # -E: the recipe shell itself is not captured (the bootstrap reaches an interpreter through
    # PYTHONPATH); the lines it runs get the unchanged environment, bootstrap included
    return [f"SHELL={exe}", f".SHELLFLAGS=-E -m {MODULE} -c"]


_SHELL_LINE = re.compile(r"^\s*(?:override\s+)?(?:export\s+)?SHELL\s*:{0,3}=\s*(\S+)\s*$",
                         re.MULTILINE)


def makefile_shell(argv: list[str], cwd: str) -> str | None:
    """The shell the Makefile assigns to ``SHELL`` (``SHELL := /bin/bash``), if it does."""
    names = []
    for i, a in enumerate(argv[1:], 1):
        if a in ("-f", "--file", "--makefile") and i + 1 < len(argv):
            names.append(argv[i + 1])
        elif a.startswith("-f") and len(a) > 2:
            names.append(a[2:])
        elif a.startswith(("--file=", "--makefile=")):
            names.append(a.split("=", 1)[1])
    if not names:
        names = [n for n in ("GNUmakefile", "makefile", "Makefile")
                 if os.path.isfile(os.path.join(cwd, n))][:1]
    for name in names:
        try:
            with open(os.path.join(cwd, name), encoding="utf-8", errors="replace") as fh:
                text = fh.read(1 << 20)
        except OSError:
            continue
        found = _SHELL_LINE.findall(text)
        if found and "$" not in found[-1]:
            return found[-1]
    return None


def _note_once(text: str) -> None:
    marker = os.environ.get(ENV_RECIPE_NOTE)
    if marker:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except OSError:
            return
    sys.stderr.write(f"sharklib: {text}\n")
    sys.stderr.flush()


def main(argv: list[str]) -> int:
    inner = os.environ.get(ENV_RECIPE_SHELL) or "/bin/sh"
    if len(argv) < 2 or argv[-2] != "-c" or starts_python(argv[-1]):
        os.execv(inner, [inner, *argv])
    from sharklib.runner.command import run_command

    line = argv[-1]
    result = run_command([inner, *argv], cwd=os.getcwd(), quiet=True)
    if result.reused and not flag(ENV_QUIET):
        sys.stderr.write(result.message + "\n")
    elif not result.reused and result.backend not in ("ebpf", "ptrace"):
        _note_once("recipes that are not Python run untraced here (no eBPF or ptrace "
                   "tracer may run), so they are neither recorded nor reused; first: "
                   f"{line[:60]!r}")
    if result.recorded and result.runs:
        _remember(result.runs)
    return result.exit_status


def _remember(runs: list[Run]) -> None:
    """Keep the recorded step's observed dependencies for make (runner.makedeps)."""
    import contextlib

    from sharklib.runner import makedeps, stage

    with contextlib.suppress(Exception):
        root = stage.project_root(os.getcwd())
        top = runs[0]
        if len(runs) > 1:
            import copy

            top = copy.deepcopy(top)
            top.fold(runs[1:])
        makedeps.remember(root, top)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
