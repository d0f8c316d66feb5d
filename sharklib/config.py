"""Where sharklib keeps things, and the environment variables that steer it.

Defaults follow the platform (platformdirs): keys and trust policy in the user
config directory, the cache and stat cache in the user cache directory.
``SHARKLIB_HOME`` moves everything under one directory (tests, CI, containers).
"""

from __future__ import annotations

import os
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

APP = "sharklib"


def _home() -> Path | None:
    home = os.environ.get(ENV_HOME)
    return Path(home) if home else None


def config_dir() -> Path:
    """Keys, imported public keys, trust policies."""
    home = _home()
    if home is not None:
        return home / "config"
    from platformdirs import user_config_path

    return user_config_path(APP)


def cache_dir() -> Path:
    """The default content store, run index and stat cache."""
    home = _home()
    if home is not None:
        return home / "cache"
    from platformdirs import user_cache_path

    return user_cache_path(APP)


def flag(name: str) -> bool:
    """True when an environment variable is set to a true-ish value."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
