"""Which traced paths are data, which are environment, which are never recorded.

A native program touches far more than its data: the dynamic loader opens
``libc.so.6``, locale files and ``/etc/ld.so.cache``; Python opens its stdlib.
Those are the *environment* (identified by the interpreter and system, not
hashed one by one). Kernel views, devices, sharklib's own files (sidecars,
the session directory, the signing key and caches) are *ignored*. Everything
else a process reads is a data input, everything it writes an output.
"""

from __future__ import annotations

import contextlib
import os
import site
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Literal

from sharklib.common.paths import PRIVATE_STATE
from sharklib.config import ENV_CACHE, ENV_HOME

Class = Literal["data", "environment", "ignored"]

#: a scheduler's or version control system's own state (``.snakemake/``, ``.git/``): never a
#: step's input or output, and so never a sidecar location
PRIVATE_STATE_DIRS = tuple(p.rstrip("/") for p in PRIVATE_STATE if p.endswith("/"))

IGNORED_PREFIXES = ("/proc/", "/sys/", "/dev/", "/run/")
ENVIRONMENT_PREFIXES = ("/usr/", "/lib/", "/lib32/", "/lib64/", "/libx32/", "/bin/", "/sbin/",
                        "/etc/", "/var/lib/", "/var/cache/", "/nix/store/", "/snap/")
IGNORED_SUFFIXES = (".intoto.jsonl", ".pyc", ".pyo")
ENVIRONMENT_PARTS = ("/site-packages/", "/dist-packages/", "/__pycache__/")


def _python_dirs() -> list[str]:
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
            os.path.dirname(os.__file__)}
    # interpreter managers (pyenv's shims read its plugins and version files on every call)
    dirs.add(os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv"))
    with contextlib.suppress(Exception):
        dirs.update(site.getsitepackages())
    return [d for d in dirs if d and d != "/"]


def _sharklib_dirs() -> list[str]:
    pkg = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    return [pkg, os.path.join(os.path.dirname(pkg), "sitecustomize")]


@dataclass
class Classifier:
    """Classifies absolute paths; ``extra_ignored`` adds run-specific directories."""

    extra_ignored: list[str] = field(default_factory=list)
    extra_environment: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        def norm(dirs: list[str]) -> tuple[str, ...]:
            out: set[str] = set()
            for d in dirs:
                for v in (os.path.abspath(d), os.path.realpath(d)):
                    out.add(v.rstrip("/") + "/")
            return tuple(sorted(out))

        home = os.environ.get(ENV_HOME)
        ignored = [*self.extra_ignored, *([home] if home else [])]
        try:
            from sharklib.config import cache_dir, config_dir, tool_cache_dirs

            # per-user tool caches (matplotlib's font list, fontconfig, pip...) are no data
            ignored += [str(cache_dir()), str(config_dir()), *tool_cache_dirs()]
        except Exception:
            pass
        # every sharklib session (a concurrent stage's, a Python child's) is sharklib's own
        tmp = os.path.realpath(tempfile.gettempdir())
        sessions = tuple(os.path.join(tmp, f"sharklib-{kind}-")
                         for kind in ("session", "trace", "stage"))
        from sharklib.config import tool_cache_prefixes

        self._ignored = IGNORED_PREFIXES + norm(ignored) + sessions + tool_cache_prefixes()
        self._environment = ENVIRONMENT_PREFIXES + norm(
            [*_python_dirs(), *_sharklib_dirs(), *self.extra_environment])
        self._memo: dict[str, Class] = {}
        # The directory holding sharklib goes on sys.path of an interpreter that cannot import
        # it otherwise (see sitecustomize/): the import system lists it, which is no data read.
        self._ignored_exact = frozenset(os.path.dirname(d.rstrip("/")) + "/"
                                        for d in norm(_sharklib_dirs()[:1]))

    def __call__(self, path: str) -> Class:
        hit = self._memo.get(path)
        if hit is not None:
            return hit
        cls: Class
        if path.startswith(self._ignored) or path.endswith(IGNORED_SUFFIXES) or \
                path.endswith(" (deleted)") or path in self._ignored_exact or \
                any(part in path for part in PRIVATE_STATE) or \
                path.endswith(PRIVATE_STATE_DIRS):
            cls = "ignored"
        elif path.startswith(self._environment) or any(p in path for p in ENVIRONMENT_PARTS):
            cls = "environment"
        else:
            cls = "data"
        if len(self._memo) < 200_000:
            self._memo[path] = cls
        return cls

    def ignores_prefix(self, directory: str) -> bool:
        """Whether everything under ``directory`` is already ignored by this classifier."""
        return (directory.rstrip("/") + "/").startswith(self._ignored)


def for_session(session: str) -> Classifier:
    """A classifier ignoring ``session``; one shared instance while the settings stay the same.

    Building one normalises a dozen directories (``realpath`` each) and every
    traced command needs one; the memo of classified paths is worth keeping too.
    """
    key = tuple(os.environ.get(v) for v in (ENV_HOME, ENV_CACHE, "XDG_CACHE_HOME",
                                              "XDG_CONFIG_HOME", "HOME", "PYENV_ROOT"))
    shared = _SHARED.get(key)
    if shared is None:
        shared = _SHARED[key] = Classifier()
    if shared.ignores_prefix(session):
        return shared
    return Classifier(extra_ignored=[session])


_SHARED: dict[tuple[str | None, ...], Classifier] = {}
