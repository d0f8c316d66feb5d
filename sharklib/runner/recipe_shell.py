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
import shutil
import sys

from sharklib.config import ENV_QUIET, ENV_RECIPE_NOTE, ENV_RECIPE_SHELL, ENV_RECIPE_SHIM, flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from sharklib.model import Run

#: the shell the Makefile itself asked for (read by ``sharklib env``)
#: a file created once per ``sharklib env`` invocation when a note has been printed
MODULE = "sharklib.runner.recipe_shell"

_PYTHON = re.compile(r"(.*/)?python(\d+(\.\d+)*)?")
_ASSIGN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


#: what Snakemake puts before every job's command when its shell is bash (``shell.prefix``)
_SET_PREFIX = re.compile(r"^\s*set(?:\s+[-+][A-Za-z]+(?:\s+pipefail)?)+\s*;\s*")
_CONTROL = frozenset({";", "&&", "||", "|", "&", "|&", ";;", "(", ")"})


def starts_python(line: str) -> bool:
    """Is the recipe line one command starting a Python interpreter (after ``VAR=value``)?

    A leading ``set -euo pipefail;`` (Snakemake's prefix for bash) is skipped. A line that
    chains other commands after the interpreter (``python a.py && cp a b``) is not one: the
    Python capture would record the interpreter alone and the ``cp`` would escape every record,
    so such a line is a traced step as a whole (the Python inside is merged into it).
    """
    line = _SET_PREFIX.sub("", line, count=1)
    try:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = list(lexer)
    except ValueError:
        return False
    if "\n" in line.strip() or any(_controls(words, i) for i in range(len(words))):
        return False
    for w in words:
        if _ASSIGN.match(w):
            continue
        return bool(_PYTHON.fullmatch(w))
    return False


#: commands that read and write no data: their only effects are the terminal, an exit status,
#: or an empty directory (``mkdir -p out``), which no record could restore anyway
_INERT = frozenset({"echo", "printf", "true", ":", "mkdir"})
#: anything that could redirect to a file, substitute a command, expand a variable, chain or
#: group commands, or hide a second line: such a line keeps the traced path
_UNSAFE = frozenset("$`<>;&|(){}\n\r")
_MKDIR_OPTIONS = frozenset({"-p", "-v", "-pv", "-vp", "--parents", "--verbose", "--"})


def runs_plainly(line: str) -> bool:
    """Is the recipe line one command from a small allow-list that reads and writes no data?

    ``@mkdir -p out``, ``@echo building``, ``true``, ``:``, ``@printf 'done\\n'`` would be
    traced on every run (0.5-1.2 s each on a loaded machine) and never reused (a trace of
    them records no output). They are run by the real shell exactly as plain make runs them,
    with no tracer and no record. Only what parsing proves is such a line qualifies: the first
    word is a bare name from :data:`_INERT` (no ``VAR=value`` before it, no path), no
    character that could redirect, substitute, expand a variable or chain commands appears
    anywhere in the line (even quoted: a false "no" only costs the traced path), and
    ``mkdir`` takes only ``-p``/``-v`` (never ``-m``, whose mode a record would miss).
    ``echo``, ``printf``, ``true`` and ``:`` are builtins of every POSIX shell, so no
    program on ``PATH`` can stand in for them; ``mkdir`` is looked up on ``PATH`` as plain
    make would.
    """
    line = _SET_PREFIX.sub("", line, count=1)
    if any(c in _UNSAFE for c in line):
        return False
    try:
        words = shlex.split(line, comments=False, posix=True)
    except ValueError:
        return False
    if not words or words[0] not in _INERT or "#" in line:
        return False
    if words[0] == "mkdir":
        names = [w for w in words[1:] if w not in _MKDIR_OPTIONS]
        return bool(names) and not any(w.startswith("-") for w in names)
    return True


def _controls(words: list[str], i: int) -> bool:
    """Is ``words[i]`` a control operator (``2>&1`` and ``&>`` are redirections, not ``&``)?"""
    w = words[i]
    if w != "&":
        return w in _CONTROL
    before = words[i - 1] if i else ""
    after = words[i + 1] if i + 1 < len(words) else ""
    return not (before.endswith((">", "<")) or after.startswith(">"))


#: the characters of a line the sh front decides itself: no quoting, expansion, globbing,
#: redirection, comment or control operator, so splitting on blanks gives shlex's words
_FRONT_SAFE = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
               "_./=:,+@%-")
_LETTERS_ = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"

FRONT = """#!/bin/sh
# sharklib env: make's recipe shell. Generated by sharklib.runner.recipe_shell.front_script
# from the rules of starts_python() and runs_plainly(); do not edit. A line this front can
# split on blanks alone (only the characters [{safe}]) that starts Python, or is one inert
# command, goes to the real shell at once; so does a line with quotes, variables or
# redirections that is provably one command starting Python. Every other line goes to the
# Python recipe shell, which decides it exactly (and again the same way for lines decided here).
if [ $# -eq 2 ] && [ "x$1" = x-c ] && [ -z "${{{shim}-}}" ]; then
  real= cmd=
  case $2 in
  '') ;;
  *[!' \t'{safe}]*)
    nl='
'
    case $2 in
    *\\\\*|*"$nl"*|*\\`*|*'$('*) ;;
    *)
      rest=$2 bare= balanced=1
      while :; do
        case $rest in
        *[\\"\\']*) ;;
        *) bare=$bare$rest; break;;
        esac
        pre=${{rest%%[\\"\\']*}}
        rest=${{rest#"$pre"}}
        q=${{rest%"${{rest#?}}"}}
        rest=${{rest#?}}
        case $rest in
        *"$q"*) bare=${{bare}}${{pre}}x; rest=${{rest#*"$q"}};;
        *) balanced=; break;;
        esac
      done
      while :; do
        case $bare in
        *'>&'*) bare=${{bare%%'>&'*}}${{bare#*'>&'}};;
        *'<&'*) bare=${{bare%%'<&'*}}${{bare#*'<&'}};;
        *'&>'*) bare=${{bare%%'&>'*}}${{bare#*'&>'}};;
        *) break;;
        esac
      done
      case $bare in
      *[\\;\\&\\|\\(\\)\\`\\#]*) balanced=;;
      esac
      if [ -n "$balanced" ]; then
        set -f
        for w in $2; do
          case $w in
          *[!{safe}]*) break;;
          *=*) case ${{w%%=*}} in
               ''|[!{letters}]*|*[!{letters}0123456789]*) ;;
               *) continue;;
               esac;;
          esac
          cmd=$w
          break
        done
        set +f
      fi;;
    esac;;
  *)
    set -f
    assigned= names=0 bad=
    for w in $2; do
      if [ -z "$cmd" ]; then
        case $w in
        *=*) case ${{w%%=*}} in
             ''|[!{letters}]*|*[!{letters}0123456789]*) ;;
             *) assigned=1; continue;;
             esac;;
        esac
        cmd=$w
      elif [ "$cmd" = mkdir ]; then
        case $w in
        {mkdir_options}) ;;
        -*) bad=1;;
        *) names=$((names + 1));;
        esac
      fi
    done
    set +f
    if [ -z "$assigned" ]; then
      case $cmd in
      {inert}) real=1;;
      mkdir) [ -z "$bad" ] && [ "$names" -gt 0 ] && real=1;;
      esac
    fi;;
  esac
  base=${{cmd##*/}}
  case $base in
  python*) case ${{base#python}} in
           '') real=1;;
           *[!0123456789.]*|.*|*.|*..*) ;;
           *) real=1;;
           esac;;
  esac
  if [ -n "$real" ]; then
    inner=${{{inner}:-/bin/sh}}
    exec "$inner" "$@"
  fi
fi
exec {python} -E -m {module} "$@"
"""


def front_script(python: str) -> str:
    """The POSIX sh front of the recipe shell, generated from this module's rules.

    Every Python recipe line (and every ``mkdir -p out``) used to start an interpreter here
    only to exec ``/bin/sh``: ~20 ms quiet, far more under load, per line. The front decides
    the plain lines (:data:`_FRONT_SAFE` characters only, where blank splitting is exactly
    shlex's) with the same rules as :func:`starts_python` and :func:`runs_plainly`, built
    from the same tables. It also sends a Python line with quotes, variables or
    redirections (``python count.py $< > $@``, ``python -c 'print(1)'``) to the real shell
    when that is certain: no backslash, newline, backquote or ``$(`` anywhere, quotes that
    pair up, and outside the quotes no ``;``, ``&`` (but ``2>&1``, ``&>``), ``|``,
    parenthesis or ``#``; every word up to the command is plain, so blank splitting finds
    it. Such a line used to start this module only to exec the same shell (~20 ms quiet per
    line, more under load). Anything else starts this module, which decides it exactly.
    tests/runner/test_recipe_front.py runs both over one corpus of lines.
    """
    import string

    inert = [w for w in sorted(_INERT) if w != "mkdir"]
    assert all(c in _FRONT_SAFE for w in [*inert, *_MKDIR_OPTIONS] for c in w)
    assert set(_FRONT_SAFE) <= set(string.ascii_letters + string.digits + "_./=:,+@%-")
    return FRONT.format(safe=_FRONT_SAFE, letters=_LETTERS_, python=shlex.quote(python),
                        module=MODULE, inert="|".join(inert),
                        mkdir_options="|".join(sorted(_MKDIR_OPTIONS)),
                        shim=ENV_RECIPE_SHIM, inner=ENV_RECIPE_SHELL)


def front_path(python: str) -> str | None:
    """The front for ``python``, written once into sharklib's cache folder (None if it cannot be).

    Its name is its content's digest, so concurrent ``sharklib env`` runs, sub-makes and
    other interpreters each find a complete file of their own and nothing is removed.
    """
    import hashlib

    from sharklib.config import cache_dir

    text = front_script(python)
    folder = os.path.join(str(cache_dir()), "recipe-shell")
    path = os.path.join(folder, f"front-{hashlib.sha256(text.encode()).hexdigest()[:20]}")
    if os.access(path, os.X_OK):
        return path
    try:
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    except OSError:
        return None
    return path


def make_arguments(argv: list[str], cwd: str) -> list[str]:
    """The ``SHELL=`` / ``.SHELLFLAGS=`` words ``sharklib env`` adds to a make command line.

    None when the user set ``SHELL`` on the command line themselves, or when the interpreter's
    path has white space (make would split it). The shell is the sh front
    (:func:`front_script`) when it can be written, else the interpreter running this module.
    """
    if any(a.startswith(("SHELL=", ".SHELLFLAGS=")) for a in argv[1:]):
        return []
    exe = sys.executable
    if not exe or any(c.isspace() for c in exe):
        return []
    front = front_path(exe)
    if front and not any(c.isspace() for c in front):
        return [f"SHELL={front}", ".SHELLFLAGS=-c"]
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


def is_snakemake(argv: list[str]) -> bool:
    """Is the command Snakemake (``snakemake ...``, ``python -m snakemake ...``)?"""
    if not argv:
        return False
    if os.path.basename(argv[0]) == "snakemake":
        return True
    if not _PYTHON.fullmatch(os.path.basename(argv[0])):
        return False
    for i, a in enumerate(argv[1:], 1):
        if a == "-m":
            return i + 1 < len(argv) and argv[i + 1].split(".")[0] == "snakemake"
        if a.startswith("-m"):
            return a[2:].split(".")[0] == "snakemake"
        if a == "-c" or a.startswith("-c"):
            return False
        if not a.startswith("-"):
            return os.path.basename(a) == "snakemake"
    return False


SHIM = """#!/bin/sh
# sharklib env: Snakemake's shell jobs go through sharklib's recipe shell (runner/recipe_shell.py)
exec {python} -E -m {module} "$@"
"""


def snakemake_shim(env: dict[str, str]) -> str | None:
    """Route Snakemake's shell jobs through the recipe shell, without touching the Snakefile.

    Snakemake runs every ``shell:`` job as ``Popen(cmd, shell=True, executable=BASH)``, where
    ``BASH`` is ``shutil.which("bash")`` looked up when Snakemake starts (``snakemake/shell.py``;
    it adds ``set -euo pipefail;`` because the executable is called ``bash``). A directory
    holding a ``bash`` that execs the recipe shell, first on the ``PATH`` of the snakemake
    process alone, makes each job a step; the recipe shell takes the directory off ``PATH``
    again before running anything, so a job's own ``bash script.sh`` is the real bash.
    Returns the directory (the caller removes it when Snakemake is done), or None when there
    is no bash to stand in for or no interpreter path a shell can call.
    """
    import tempfile

    path = env.get("PATH", os.defpath)
    real = shutil.which("bash", path=path)
    exe = sys.executable
    if real is None or not exe:
        return None
    shim = tempfile.mkdtemp(prefix="sharklib-shim-")
    target = os.path.join(shim, "bash")
    with open(target, "w", encoding="utf-8") as fh:
        fh.write(SHIM.format(python=shlex.quote(exe), module=MODULE))
    os.chmod(target, 0o755)
    env[ENV_RECIPE_SHELL] = os.path.realpath(real)
    env[ENV_RECIPE_SHIM] = shim
    env["PATH"] = shim + os.pathsep + path
    return shim


_FORCING = ("-F", "--forceall", "-R", "--forcerun", "--forcerun=", "-f", "--force",
            "--touch", "-t")


def snakemake_forcerun(argv: list[str], root: str, cwd: str) -> list[str]:
    """``--forcerun FILE...`` for the outputs an edit of what their job read reached.

    Snakemake decides from timestamps and its own metadata, over the inputs a Snakefile
    declares, before any job runs: after an edit of a shell script a job calls, or of a helper
    module, it says "Nothing to be done" and sharklib is never asked. The dependencies every
    recorded job was seen to read (:func:`sharklib.runner.makedeps.stale_targets`, as for make)
    name the outputs that are now older than one of them; of those, the ones Snakemake made
    (a record under ``.snakemake/metadata/``; a file inside a ``directory()`` output counts
    as that directory) are forced, and Snakemake re-runs them and what depends on them. Each
    forced job is a step, so one whose inputs are in fact unchanged (``touch``) is reused.
    Nothing is added when the user already forces something, or when nothing is stale.
    """
    if any(a.startswith(_FORCING) for a in argv[1:]):
        return []
    from base64 import urlsafe_b64encode

    from sharklib.runner.makedeps import stale_targets

    meta = os.path.join(cwd, ".snakemake", "metadata")
    if not os.path.isdir(meta):
        return []
    known: dict[str, bool] = {}

    def made_by_snakemake(rel: str) -> bool:
        if rel not in known:
            name = urlsafe_b64encode(rel.encode()).decode()
            known[rel] = len(name) < 250 and os.path.exists(os.path.join(meta, name))
        return known[rel]

    forced: list[str] = []
    for target in stale_targets(root):
        rel = os.path.relpath(os.path.join(root, target), cwd)
        while rel and not rel.startswith(".."):
            if made_by_snakemake(rel):
                if rel not in forced:
                    forced.append(rel)
                break
            rel = os.path.dirname(rel)
    return ["--forcerun", *forced] if forced else []


def _off_path(shim: str) -> None:
    """Take the shim directory off this process's ``PATH`` (what the job's commands see)."""
    parts = os.environ.get("PATH", "").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join(p for p in parts if p != shim)


def main(argv: list[str]) -> int:
    inner = os.environ.get(ENV_RECIPE_SHELL) or "/bin/sh"
    shim = os.environ.pop(ENV_RECIPE_SHIM, None)
    if shim:
        _off_path(shim)
    if (len(argv) < 2 or argv[-2] != "-c" or starts_python(argv[-1])
            or runs_plainly(argv[-1])):
        os.execv(inner, [inner, *argv])
    preload = _preload()
    from sharklib.runner.step import Step

    line = argv[-1]
    step = Step([inner, *argv], cwd=os.getcwd())
    step.keys_stdin = True  # a recipe reads make's standard input (``make < B.txt``)
    result = step.run(quiet=True, preload=preload)
    if result.reused and not flag(ENV_QUIET):
        sys.stderr.write(result.message + "\n")
    elif not result.reused and result.backend not in ("ebpf", "ptrace"):
        _note_once("recipes that are not Python run untraced here (no eBPF or ptrace "
                   "tracer may run), so they are neither recorded nor reused; first: "
                   f"{line[:60]!r}")
    if result.recorded and result.runs:
        _remember(result.runs)
    return result.exit_status


def _preload() -> Any:
    """Start loading the eBPF tracer now, as ``sharklib trace`` does, or None.

    The kernel verifies the programs in a thread while the runner is imported and the
    line is keyed and looked up: every non-Python recipe line pays that start-up, one
    after the other (it was ~0.2-1 s per ``mkdir -p out`` on a loaded machine). This
    process exits right after a reuse, so a discarded load is not waited for.
    """
    try:
        from sharklib.trace import ebpf

        if ebpf.unavailable_reason() is None:
            return ebpf.Preload(wait_on_discard=False)
    except Exception:  # the runner then says why no tracer can run, as before
        pass
    return None


def _remember(runs: list[Run]) -> None:
    """Keep the recorded step's observed dependencies for make (runner.makedeps)."""
    import contextlib

    from sharklib.runner import makedeps, stagekey

    with contextlib.suppress(Exception):
        root = stagekey.project_root(os.getcwd())
        top = runs[0]
        if len(runs) > 1:
            import copy

            top = copy.deepcopy(top)
            top.fold(runs[1:])
        makedeps.remember(root, top)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
