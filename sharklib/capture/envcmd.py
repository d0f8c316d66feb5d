"""``sharklib env``: run any command with the capture bootstrap in its environment.

Every Python process below the command (``make all`` calling scripts, a shell
loop) starts captured and writes sidecars beside its own outputs. There is no
top-level Python run, so no session is created: each process records alone.
"""

from __future__ import annotations

import os
import subprocess
import sys

from sharklib.common.environ import capture_environ, shell_exports
from sharklib.config import ENV_MAKE_DEPS, ENV_QUIET
from sharklib.errors import SharkError


def env_main(argv: list[str], shell: bool = False, quiet: bool = False,
             explain: bool = False) -> int:
    """Run ``argv`` captured (its exit status is returned), or print export lines.

    ``explain``: run nothing of the step; for a Python command, its interpreter
    starts with capture on, computes the run key exactly as the step would, prints
    the reuse verdict and leaves before the script's first line.
    """
    env = capture_environ(os.environ)
    if shell:
        sys.stdout.write(shell_exports(env))
        return 0
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise SharkError("a command to run is required: sharklib env -- CMD ARGS")
    if quiet:
        env[ENV_QUIET] = "1"
    from sharklib.launch import LaunchError, from_os_error, resolve_program, say

    if explain:
        from sharklib.capture.bootstrap import parse_python_argv
        from sharklib.config import ENV_EXPLAIN

        if not os.path.basename(argv[0]).startswith("python") or \
                parse_python_argv(argv) == (None, None, None):
            sys.stdout.write(f"sharklib: {argv[0]}: would run: under sharklib env it is not "
                             f"one step; each Python step and make recipe inside it is "
                             f"decided on its own (`sharklib env --explain -- python SCRIPT` "
                             f"explains one)\n")
            return 0
        env[ENV_EXPLAIN] = "1"
    _observed_dependencies(env)
    shim = None
    if os.path.basename(argv[0]) in ("make", "gmake"):
        argv = _through_recipe_shell(argv, env)
        _note_make_stdin(env)
    else:
        shim = _snakemake_jobs_through_recipe_shell(argv, env)
        if shim:
            argv = [*argv, *_snakemake_forcerun(argv)]
    try:
        resolve_program(argv[0], env)
        proc = subprocess.run(argv, env=env, check=False)
    except LaunchError as exc:
        return say(exc)
    except OSError as exc:
        return say(from_os_error(argv[0], exc))
    finally:
        if shim:
            import shutil

            shutil.rmtree(shim, ignore_errors=True)
    return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode


def _observed_dependencies(env: dict[str, str]) -> None:
    """Let make see what every recorded step was observed to depend on (runner.makedeps)."""
    from sharklib.common.identity import project_root
    from sharklib.runner import makedeps

    env[ENV_MAKE_DEPS] = "1"
    cwd = os.getcwd()
    try:
        makedeps.makefiles_env(env, project_root(cwd), cwd)
    except OSError as exc:
        from sharklib.common.safety import warn_once

        warn_once(f"observed dependencies not given to make: {exc}")


def _note_make_stdin(env: dict[str, str]) -> None:
    """Tell make's jobs what make's standard input holds (``identity.make_job_stdin``)."""
    from sharklib.common.identity import stdin_identity
    from sharklib.config import ENV_MAKE_STDIN

    env.pop(ENV_MAKE_STDIN, None)
    fed = stdin_identity()
    if fed is not None:
        env[ENV_MAKE_STDIN] = fed


def _through_recipe_shell(argv: list[str], env: dict[str, str]) -> list[str]:
    """make with every recipe line run by sharklib's recipe shell (runner.recipe_shell)."""
    import tempfile

    from sharklib.config import ENV_RECIPE_NOTE, ENV_RECIPE_SHELL
    from sharklib.runner import recipe_shell

    cwd = os.getcwd()
    extra = recipe_shell.make_arguments(argv, cwd)
    if not extra:
        return argv
    wanted = recipe_shell.makefile_shell(argv, cwd)
    if wanted:
        env[ENV_RECIPE_SHELL] = wanted
    env[ENV_RECIPE_NOTE] = os.path.join(
        tempfile.gettempdir(), f"sharklib-recipe-note-{os.getpid()}-{os.urandom(4).hex()}")
    return [argv[0], *extra, *argv[1:]]


def _snakemake_jobs_through_recipe_shell(argv: list[str], env: dict[str, str]) -> str | None:
    """Snakemake with every shell job run by sharklib's recipe shell (a ``bash`` shim on PATH).

    Returns the shim's directory, for the caller to remove when Snakemake is done.
    """
    from sharklib.runner import recipe_shell

    if not recipe_shell.is_snakemake(argv):
        return None
    import tempfile

    from sharklib.config import ENV_RECIPE_NOTE

    shim = recipe_shell.snakemake_shim(env)
    if shim:
        env[ENV_RECIPE_NOTE] = os.path.join(
            tempfile.gettempdir(), f"sharklib-recipe-note-{os.getpid()}-{os.urandom(4).hex()}")
    return shim


def _snakemake_forcerun(argv: list[str]) -> list[str]:
    """What Snakemake must re-run because an undeclared dependency changed (recipe_shell)."""
    from sharklib.common.identity import project_root
    from sharklib.runner import recipe_shell

    cwd = os.getcwd()
    try:
        return recipe_shell.snakemake_forcerun(argv, project_root(cwd), cwd)
    except OSError as exc:
        from sharklib.common.safety import warn_once

        warn_once(f"observed dependencies not given to snakemake: {exc}")
        return []
