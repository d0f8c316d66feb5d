"""Canonical paths and the "ignored" class of the capture rules.

Every way a program can name a file (``str``, ``bytes``, ``pathlib.Path``,
any ``os.PathLike``, a path relative to the working directory *at the time of
the open*, a path relative to a ``dir_fd``, a bare file descriptor) is turned
into one absolute, normalised string, so that a file opened through pathlib
and read back with bytes is one artifact, not three. Symlinks are not
resolved (see docs/architecture.md).
"""

from __future__ import annotations

import os
import site
import sys

from sharklib.config import tool_cache_dirs, tool_cache_prefixes

#: Never data: kernel views, devices, system configuration and shared system data.
SYSTEM_PREFIXES = ("/proc/", "/sys/", "/dev/", "/etc/", "/usr/lib/", "/usr/share/",
                   "/usr/local/lib/python", "/lib/", "/lib64/")
IGNORED_SUFFIXES = (".pyc", ".pyo", ".intoto.jsonl")


def fd_path(fd: int) -> str | None:
    """The path an open descriptor refers to, if it is a file on a filesystem."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    if not target.startswith("/") or target.endswith(" (deleted)"):
        return None
    return target


def normalise(path: str) -> str:
    """``os.path.normpath`` only when the path needs it (it is Python code in 3.11)."""
    if "/." in path or "//" in path or (len(path) > 1 and path.endswith("/")):
        return os.path.normpath(path)
    return path


def environment_dirs() -> list[str]:
    """Directories holding the interpreter's stdlib and installed distributions."""
    dirs: set[str] = set()
    stdlib = os.path.dirname(os.__file__)
    dirs.add(stdlib)
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        dirs.add(os.path.join(prefix, "lib", ver))
        dirs.add(os.path.join(prefix, "lib64", ver))
        dirs.add(os.path.join(prefix, "include"))
        dirs.add(os.path.join(prefix, "bin"))
    try:
        dirs.update(site.getsitepackages())
        user_site = site.getusersitepackages()
        if user_site:
            dirs.add(user_site)
    except Exception:
        pass
    for entry in sys.path:
        if entry and ("site-packages" in entry or "dist-packages" in entry):
            dirs.add(entry)
    return sorted(d for d in dirs if d)


_env_prefixes: tuple[str, ...] | None = None


def changes_environment(path: str) -> bool:
    """Is a write to ``path`` a change of the Python environment (``pip install``)?

    Such a write is not an output (the environment is identified by versions,
    not hashed file by file), and a cache restoring outputs could not redo it.
    Bytecode caches are written by the import system in the normal course.
    """
    global _env_prefixes
    if _env_prefixes is None:
        _env_prefixes = _dir_prefixes(environment_dirs())
    return path.startswith(_env_prefixes) and not (path.endswith((".pyc", ".pyo"))
                                                   or "/__pycache__/" in path)


def site_dirs() -> list[str]:
    """Where installed distributions live (site-packages / dist-packages), not the stdlib."""
    return [d for d in environment_dirs() if "site-packages" in d or "dist-packages" in d]


def sharklib_dirs() -> list[str]:
    """sharklib's own package and bootstrap directories."""
    pkg = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    # the bootstrap ships in the package (sharklib/_bootstrap); a source checkout's old
    # top-level sitecustomize/ may still be on a PYTHONPATH
    return [pkg, os.path.join(pkg, "_bootstrap"),
            os.path.join(os.path.dirname(pkg), "sitecustomize")]


def _dir_prefixes(dirs: list[str]) -> tuple[str, ...]:
    """``dir/`` for each directory, as given and with symlinks resolved."""
    out: list[str] = []
    for d in dirs:
        if d:
            for variant in {os.path.abspath(d), os.path.realpath(d)}:
                out.append(variant.rstrip("/") + "/")
    return tuple(dict.fromkeys(out))


def ignored_prefixes(extra: list[str] | tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every prefix whose files are environment or sharklib's own, never data."""
    out = [*SYSTEM_PREFIXES, *tool_cache_prefixes(),
           *_dir_prefixes([*environment_dirs(), *sharklib_dirs(), *state_dirs(),
                           *tool_cache_dirs(), *extra])]
    return tuple(dict.fromkeys(out))




def state_dirs() -> list[str]:
    """Where sharklib keeps its keys and caches: its bookkeeping there is never a run's data."""
    from sharklib.config import ENV_CACHE, ENV_HOME, cache_dir, config_dir

    dirs = [str(config_dir()), str(cache_dir())]
    home = os.environ.get(ENV_HOME)
    if home:
        dirs.append(home)
    cache = os.environ.get(ENV_CACHE, "")
    if cache.startswith("file://"):
        cache = cache[len("file://"):]
    if cache and "://" not in cache:
        dirs.append(cache)
    return dirs


#: directories of a scheduler's or a version control system's own state, wherever they are
#: (and the marker Snakemake leaves in each ``directory()`` output; GNU parallel's ``~/.parallel``)
PRIVATE_STATE = ("/__pycache__/", "/.snakemake/", "/.git/", "/.snakemake_timestamp",
                 "/.parallel/")


def is_ignored(path: str, prefixes: tuple[str, ...]) -> bool:
    return (path.startswith(prefixes) or path.endswith(IGNORED_SUFFIXES)
            or any(part in path for part in PRIVATE_STATE))
