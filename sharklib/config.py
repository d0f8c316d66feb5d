"""Where sharklib keeps things, and the environment variables that steer it.

Defaults follow the platform (platformdirs): keys and trust policy in the user
config directory, the cache and stat cache in the user cache directory.
``SHARKLIB_HOME`` moves everything under one directory (tests, CI, containers).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_CAPTURE = "SHARKLIB_CAPTURE"
ENV_SESSION = "SHARKLIB_SESSION"
ENV_PARENT_RUN = "SHARKLIB_PARENT_RUN"
ENV_KEY = "SHARKLIB_KEY"
ENV_HOME = "SHARKLIB_HOME"
ENV_CACHE = "SHARKLIB_CACHE"
ENV_QUIET = "SHARKLIB_QUIET"
ENV_NO_CACHE = "SHARKLIB_NO_CACHE"
ENV_RERUN = "SHARKLIB_RERUN"
#: set by ``sharklib env``: recorded steps keep their observed dependencies for make
ENV_MAKE_DEPS = "SHARKLIB_MAKE_DEPS"
#: let a project's .sharklib/cache.toml send results to the remote or directory it names
ENV_TRUST_PROJECT_CACHE = "SHARKLIB_TRUST_PROJECT_CACHE"
# set by the tracer to its session: processes recording into that session leave signing to it
ENV_SIGNED_BY = "SHARKLIB_SIGNED_BY"
ENV_ALLOW = "SHARKLIB_ENV_ALLOW"
ENV_CACHE_PUSH = "SHARKLIB_CACHE_PUSH"
ENV_CACHE_REMOTE = "SHARKLIB_CACHE_REMOTE"
ENV_DOWNLOAD_POLICY = "SHARKLIB_DOWNLOAD_POLICY"
ENV_EXEC_TOP = "SHARKLIB_EXEC_TOP"
ENV_EXPLAIN = "SHARKLIB_EXPLAIN"
ENV_KEEP_SESSION = "SHARKLIB_KEEP_SESSION"
ENV_OWNS_SESSION = "SHARKLIB_OWNS_SESSION"
ENV_PROXY_LOG = "SHARKLIB_PROXY_LOG"
ENV_RECIPE_NOTE = "SHARKLIB_RECIPE_NOTE"
ENV_RECIPE_SHELL = "SHARKLIB_RECIPE_SHELL"
# the directory of the `bash` shim that routes Snakemake's shell jobs through the recipe shell
ENV_RECIPE_SHIM = "SHARKLIB_RECIPE_SHIM"
ENV_REPORT = "SHARKLIB_REPORT"
# the energy model of reports (Green Algorithms): W per core, PUE, gCO2e/kWh
ENV_CORE_WATTS = "SHARKLIB_CORE_WATTS"
ENV_PUE = "SHARKLIB_PUE"
ENV_GRID_INTENSITY = "SHARKLIB_GRID_INTENSITY"
ENV_STDIN = "SHARKLIB_STDIN"
#: set by ``sharklib env -- make``: what make's own standard input holds (``stdin_identity``)
ENV_MAKE_STDIN = "SHARKLIB_MAKE_STDIN"
ENV_STREAMS = "SHARKLIB_STREAMS"
ENV_TAG = "SHARKLIB_ENV_TAG"
ENV_ZENODO_URL = "SHARKLIB_ZENODO_URL"

#: The ``git -c`` argument sharklib's own git calls carry, so the tracer can leave them out.
BOOKKEEPING_MARK = "sharklib.bookkeeping=true"
ENV_PIPELINE_TOKEN = "SHARKLIB_PIPELINE_TOKEN"
ENV_STREAM_IDS = "SHARKLIB_STREAM_IDS"
#: ``threads`` or ``processes``: the local executor's pool, whatever the stages look like
ENV_LOCAL_POOL = "SHARKLIB_LOCAL_POOL"
#: how long the Dask executor waits for its scheduler (a Dask time, ``20s`` by default)
ENV_DASK_TIMEOUT = "SHARKLIB_DASK_TIMEOUT"
#: the Chromium (or Chrome) binary that renders HTML reports to PDF and PNG
ENV_CHROMIUM = "SHARKLIB_CHROMIUM"
#: set by the interactive shell in its bash: the directory bash leaves its state in
ENV_SHELL_STATE = "SHARKLIB_SHELL_STATE"
#: the CLI lets an unexpected exception (a bug of sharklib's) end with its traceback
ENV_DEBUG = "SHARKLIB_DEBUG"

APP = "sharklib"


def _home() -> Path | None:
    home = os.environ.get(ENV_HOME)
    return Path(home) if home else None


def _xdg(variable: str, default: str) -> Path:
    """What platformdirs answers on Linux, without importing it.

    Used on Linux always: every captured run that signs looks up the key's
    directory at exit, and importing platformdirs there cost ~2.7 ms. Also for
    interpreters without platformdirs at all: a pipeline's own environment (a
    ``shark-build`` venv) runs the capture bootstrap without sharklib's
    dependencies, and must still find the same directories as the runner.
    """
    base = os.environ.get(variable, "").strip()
    return Path(base if base else os.path.expanduser(default)) / APP


def config_dir() -> Path:
    """Keys, imported public keys, trust policies."""
    home = _home()
    if home is not None:
        return home / "config"
    if sys.platform.startswith("linux"):
        return _xdg("XDG_CONFIG_HOME", "~/.config")
    try:
        from platformdirs import user_config_path
    except ImportError:
        return _xdg("XDG_CONFIG_HOME", "~/.config")
    return user_config_path(APP)


def private_dir(path: Path) -> Path:
    """Create ``path`` (under :func:`config_dir`) and the directories between, mode 0700.

    Whatever the umask: under ``umask 000`` the config and ``trusted`` directories were
    created 0777, so any local user could drop a public key into ``trusted/`` and have
    their signatures accepted. ``$SHARKLIB_HOME`` is made 0700 too when sharklib creates
    it; directories above (the user's own, like ``~/.config``) are left to the usual
    rules, and an existing directory is never changed.
    """
    top = _home() or config_dir()
    chain = [path]
    while chain[-1] != top and chain[-1].parent != chain[-1] and top in chain[-1].parents:
        chain.append(chain[-1].parent)
    top.parent.mkdir(parents=True, exist_ok=True)
    for d in reversed(chain):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)  # mkdir's mode is masked by the umask (0277 would leave 0500)
    return path


#: the widest mode of a directory sharklib makes for itself (its cache and everything in it,
#: session and state directories): writable by its owner only, whatever the umask
DIR_MODE = 0o755


def make_dirs(path: str | os.PathLike[str], mode: int = DIR_MODE) -> None:
    """``mkdir -p path``, every directory it creates at most ``mode``, whatever the umask.

    The one way sharklib creates its own directories. ``os.makedirs`` and
    ``Path.mkdir(parents=True)`` give 0777 minus the umask (the parents always): under
    ``umask 000`` the default cache, its ``objects/``, ``runs/`` and ``tmp/`` were
    writable by every local user, who could plant objects and entries in them. A
    stricter umask still applies; a directory that exists already is never changed.
    """
    path = os.fspath(path)
    missing: list[str] = []
    d = os.path.abspath(path)
    while not os.path.isdir(d):
        missing.append(d)
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    for d in reversed(missing):
        try:
            os.mkdir(d, mode)
        except FileExistsError:
            if not os.path.isdir(d):
                raise
            continue
        if os.stat(d).st_mode & 0o700 != 0o700:  # a umask like 0277: keep it usable by its owner
            os.chmod(d, (os.stat(d).st_mode | 0o700) & mode)


def cache_dir() -> Path:
    """The default content store, run index and stat cache."""
    home = _home()
    if home is not None:
        return home / "cache"
    if sys.platform.startswith("linux"):
        return _xdg("XDG_CACHE_HOME", "~/.cache")
    try:
        from platformdirs import user_cache_path
    except ImportError:
        return _xdg("XDG_CACHE_HOME", "~/.cache")
    return user_cache_path(APP)


def flag(name: str) -> bool:
    """True when an environment variable is set to a true-ish value."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


#: Where libraries keep per-user caches of their own, by environment variable (when set), else
#: the default under the home directory. matplotlib's font list, fontconfig, numba's compiled
#: functions, pip's wheels and model hubs' downloads are the environment a step runs in, not its
#: data: recorded as data, the first plot of a fresh machine made its font cache an input and an
#: output of that step, a sidecar in the cache folder, and every later plot's lineage a cycle.
TOOL_CACHE_VARIABLES = ("XDG_CACHE_HOME", "MPLCONFIGDIR", "NUMBA_CACHE_DIR", "PIP_CACHE_DIR",
                        "HF_HOME", "HF_HUB_CACHE", "TRANSFORMERS_CACHE", "TORCH_HOME",
                        "PYTHONPYCACHEPREFIX", "CUPY_CACHE_DIR", "JUPYTER_RUNTIME_DIR")
TOOL_CACHE_DEFAULTS = ("~/.cache", "~/.matplotlib", "~/.config/matplotlib", "~/.fontconfig",
                       "~/.fonts", "~/.local/share/fonts", "~/.local/share/jupyter/runtime",
                       "~/.ipython")
#: fontconfig's system cache and fonts
TOOL_CACHE_PREFIXES = ("/var/cache/", "/usr/local/share/fonts/")


def tool_cache_prefixes() -> tuple[str, ...]:
    """Path prefixes of tool caches that are not whole directories of their own.

    matplotlib falls back to a fresh ``$TMPDIR/matplotlib-XXXX`` when its config dir is
    not writable.
    """
    tmp = os.environ.get("TMPDIR") or "/tmp"
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    # git's own settings: read by git, and by sharklib itself when it names a run's remote
    # without starting git (common.identity); environment of a tool, never a step's data
    gitconfig = (os.path.expanduser("~/.gitconfig"), os.path.join(xdg, "git", ""),
                 "/etc/gitconfig")
    return (*TOOL_CACHE_PREFIXES, os.path.join(tmp, "matplotlib-"), *gitconfig)


def tool_cache_dirs() -> list[str]:
    """Per-user tool caches that hold no part of the working directory (never data)."""
    found = [os.environ.get(v, "") for v in TOOL_CACHE_VARIABLES]
    found += [os.path.expanduser(d) for d in TOOL_CACHE_DEFAULTS]
    cwd = os.path.join(os.path.abspath(os.getcwd()), "")
    out = []
    for d in found:
        full = os.path.join(os.path.abspath(d), "") if d else ""
        # a cache that is the working directory or holds it would hide the project's own files
        if full and not cwd.startswith(full):
            out.append(full.rstrip("/"))
    return out
