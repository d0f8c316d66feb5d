"""What a shell line leaves behind for the next one: variables, aliases, functions, options, cwd.

Every command line runs as its own ``bash -c LINE`` through the runner, so it
is traced, keyed and reused like any pipeline stage, and its recorded argv is
exactly what the user typed. What makes consecutive lines feel like one shell
is ``BASH_ENV``: a non-interactive bash sources that file before it reads the
``-c`` string. Ours restores the state the previous line left (shell
variables, aliases, functions, ``shopt``/``set`` options, the working
directory) and installs an ``EXIT`` trap that writes the new state. All of it
is bash builtins (no extra process to trace), and the files live in a
``sharklib-session-*`` directory, which the tracer ignores (they are sharklib's,
not the command's).

Exported variables travel the other way: the trap lists every exported
variable (NUL-separated), and the shell front end takes what the line
exported, changed or unset into the environment it hands the next command. The runner then adds its own variables on top, as for any stage,
and they never leak into the user's state.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re

from sharklib.config import ENV_SHELL_STATE

#: variables bash sets itself, or that change on every line: never part of the state
_SPECIAL = re.compile(
    r"^(BASH.*|_|__sharklib.*|SHARKLIB_.*|EUID|UID|PPID|SHELLOPTS|FUNCNAME|GROUPS|HISTCMD|"
    r"LINENO|RANDOM|SRANDOM|SECONDS|EPOCHREALTIME|EPOCHSECONDS|PIPESTATUS|OLDPWD|PWD|SHLVL|"
    r"DIRSTACK|COLUMNS|LINES|OPTIND|OPTERR|HOSTNAME|HOSTTYPE|MACHTYPE|OSTYPE|IFS|PS[0-9]|"
    r"COMP_.*|HISTFILE|HISTSIZE|HISTFILESIZE|MAILCHECK|TERM)$")

# The EXIT trap. ``vars.sh`` is sourced by the next line; ``env`` holds NAME=VALUE\0 (or
# -NAME\0 for an unset one) for exported variables the line changed; ``cwd`` the directory.
_NAMES = "${!A@} ${!B@} ${!C@} ${!D@} ${!E@} ${!F@} ${!G@} ${!H@} ${!I@} ${!J@} ${!K@} ${!L@} ${!M@} ${!N@} ${!O@} ${!P@} ${!Q@} ${!R@} ${!S@} ${!T@} ${!U@} ${!V@} ${!W@} ${!X@} ${!Y@} ${!Z@} ${!a@} ${!b@} ${!c@} ${!d@} ${!e@} ${!f@} ${!g@} ${!h@} ${!i@} ${!j@} ${!k@} ${!l@} ${!m@} ${!n@} ${!o@} ${!p@} ${!q@} ${!r@} ${!s@} ${!t@} ${!u@} ${!v@} ${!w@} ${!x@} ${!y@} ${!z@} ${!_@}"

RESTORE = r"""
builtin unset BASH_ENV
builtin shopt -s expand_aliases
if [ -n "$SHARKLIB_SHELL_STATE" ] && [ -r "$SHARKLIB_SHELL_STATE/vars.sh" ]; then
  builtin . "$SHARKLIB_SHELL_STATE/vars.sh" 2>/dev/null
  builtin shopt -s expand_aliases
fi
__sharklib_dump() {
  local __sharklib_s=$? __sharklib_k __sharklib_a __sharklib_o="$SHARKLIB_SHELL_STATE/out"
  local -a __sharklib_v=()
  {
    for __sharklib_k in @NAMES@; do
      __sharklib_a=${!__sharklib_k@a}
      if [[ $__sharklib_a == *x* ]]; then
        builtin printf '%s=%s\0' "$__sharklib_k" "${!__sharklib_k}"
      elif [[ $__sharklib_a != *r* ]]; then
        case "$__sharklib_k" in
          __sharklib*|_|BASH*|SHARKLIB_*|EUID|UID|PPID|SHELLOPTS|FUNCNAME|GROUPS|HISTCMD|LINENO|\
RANDOM|SRANDOM|SECONDS|EPOCHREALTIME|EPOCHSECONDS|PIPESTATUS|OLDPWD|PWD|SHLVL|DIRSTACK|COLUMNS|\
LINES|OPTIND|OPTERR|HOSTNAME|HOSTTYPE|MACHTYPE|OSTYPE|IFS|PS[0-9]|COMP_*|PYTHONPATH) ;;
          *) __sharklib_v+=("$__sharklib_k");;
        esac
      fi
    done
  } > "$__sharklib_o.env" 2>/dev/null
  {
    builtin alias -p
    builtin declare -f
    [ ${#__sharklib_v[@]} -gt 0 ] && builtin declare -p "${__sharklib_v[@]}"
    builtin shopt -p
  } > "$__sharklib_o.vars" 2>/dev/null
  builtin printf '%s' "$PWD" > "$__sharklib_o.cwd" 2>/dev/null
  return $__sharklib_s
}
builtin trap __sharklib_dump EXIT
__sharklib_st=0
[ -r "$SHARKLIB_SHELL_STATE/status" ] && builtin read -r __sharklib_st < "$SHARKLIB_SHELL_STATE/status"
__sharklib_rc() { return "${1:-0}"; }
__sharklib_rc "$__sharklib_st" 2>/dev/null
""".replace("@NAMES@", _NAMES)

# what a new session starts from: the user's ~/.bashrc (aliases, functions), read once
SEED = r"""
PS1='$ '
builtin shopt -s expand_aliases
[ -r "$HOME/.bashrc" ] && builtin . "$HOME/.bashrc" >/dev/null 2>&1 </dev/null
true
"""


class BashState:
    """The state files of one shell session, in a directory the tracer ignores."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        self._vars: str | None = None  # what vars.sh holds (this object is its only writer)
        self.status = 0
        os.makedirs(directory, exist_ok=True)
        self.restore = os.path.join(directory, "restore.sh")
        with open(self.restore, "w", encoding="utf-8") as f:
            f.write(RESTORE)

    @property
    def vars_path(self) -> str:
        return os.path.join(self.dir, "vars.sh")

    def vars_text(self) -> str:
        if self._vars is None:
            try:
                with open(self.vars_path, encoding="utf-8", errors="surrogateescape") as f:
                    self._vars = f.read()
            except OSError:
                return ""
        return self._vars

    def set_vars(self, text: str) -> None:
        if text == self._vars:
            return
        with open(self.vars_path, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
        self._vars = text

    def set_status(self, status: int) -> None:
        """What ``$?`` is when the next line starts: the last line's exit status, as in bash."""
        status = 128 - status if status < 0 else status  # killed by a signal: 128 + its number
        self.status = status & 0xFF
        with open(os.path.join(self.dir, "status"), "w", encoding="ascii") as f:
            f.write(f"{self.status}\n")

    def environ(self, base: dict[str, str]) -> dict[str, str]:
        """The environment a line runs with: ``base`` plus what points bash at the state."""
        env = dict(base)
        env["BASH_ENV"] = self.restore
        env[ENV_SHELL_STATE] = self.dir
        return env

    def clear_outputs(self) -> None:
        for name in ("out.vars", "out.env", "out.cwd"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.dir, name))

    def collect(self, env: dict[str, str], cwd: str) -> tuple[dict[str, str], str, bool]:
        """After a line: the user's new environment and cwd, and whether the state was written.

        A line killed before its ``EXIT`` trap ran (SIGKILL) leaves the previous state.
        """
        out = os.path.join(self.dir, "out")
        try:
            with open(out + ".vars", encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
            with open(out + ".env", "rb") as fb:
                delta = fb.read()
            with open(out + ".cwd", encoding="utf-8", errors="surrogateescape") as f:
                new_cwd = f.read() or cwd
        except OSError:
            return env, cwd, False
        self.set_vars(text)
        exported: dict[str, str] = {}
        for item in delta.split(b"\0"):
            word = item.decode("utf-8", "surrogateescape")
            if "=" in word:
                name, value = word.split("=", 1)
                exported[name] = value
        env = dict(env)
        # what the line exported, changed or unset (the runner's own variables aside)
        for name in set(env) | set(exported):
            if _SPECIAL.match(name) or name in ("BASH_ENV", ENV_SHELL_STATE):
                continue
            if name == "PYTHONPATH" and name in exported:
                exported[name] = _without_bootstrap(exported[name])
                if not exported[name] and not env.get(name):
                    continue
            if name in exported:
                env[name] = exported[name]
            else:
                env.pop(name, None)
        return env, new_cwd if os.path.isdir(new_cwd) else cwd, True


def session_exports(env: dict[str, str], base: dict[str, str]) -> dict[str, str]:
    """The variables exported in the session (set or changed since it started), for the record."""
    return {k: v for k, v in sorted(env.items())
            if base.get(k) != v and not _SPECIAL.match(k) and k != "PYTHONPATH"}


def _without_bootstrap(value: str) -> str:
    """``PYTHONPATH`` as the user set it: the capture's bootstrap directory (put first by the
    runner for the line) taken out again."""
    try:
        from sharklib.common.environ import require_bootstrap_dir

        boot = require_bootstrap_dir()
    except Exception:
        return value
    return os.pathsep.join(p for p in value.split(os.pathsep) if p and p != boot)


def seed(state: BashState, env: dict[str, str]) -> None:
    """A new session's state: what the user's ``~/.bashrc`` defines (run once, untraced)."""
    import subprocess

    try:
        subprocess.run(["bash", "-c", SEED], env=state.environ(env), cwd=os.getcwd(),
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return
    out = os.path.join(state.dir, "out.vars")
    if os.path.exists(out):
        with open(out, encoding="utf-8", errors="surrogateescape") as f:
            state.set_vars(f.read())


def state_tag(vars_text: str, env: dict[str, str], base: dict[str, str], line: str = "",
              status: int = 0) -> str:
    """The run key's environment tag: the shell state a line starts in.

    Aliases, functions, shell variables and every exported variable that differs
    from the environment sharklib was started in (not only the allow-listed ones):
    ``N=6`` before ``python gen.py`` must not reuse the run made with ``N=5``. The last
    line's exit status counts only where ``$?`` is spelled (in the line or a function it may
    call), so ``ls`` after a failed line is still the ``ls`` run before.
    """
    h = hashlib.sha256(vars_text.encode("utf-8", "surrogateescape"))
    if status and ("$?" in line or any("$?" in t and "__sharklib" not in t
                                          for t in vars_text.splitlines())):
        h.update(f"\0$?={status}".encode())
    for name in sorted(set(env) | set(base)):
        if env.get(name) != base.get(name) and not _SPECIAL.match(name):
            h.update(f"\0{name}={env.get(name)!r}".encode("utf-8", "surrogateescape"))
    return "shell:" + h.hexdigest()[:32]
