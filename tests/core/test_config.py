"""Where sharklib keeps things: the same directories as platformdirs, without importing it on Linux."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sharklib import config


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG shortcut is Linux-only")
@pytest.mark.parametrize("xdg", ["", "   ", "/srv/xdg"])
def test_linux_directories_match_platformdirs(xdg: str, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    platformdirs = pytest.importorskip("platformdirs")
    monkeypatch.delenv(config.ENV_HOME, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
    monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    assert config.config_dir() == platformdirs.user_config_path(config.APP)
    assert config.cache_dir() == platformdirs.user_cache_path(config.APP)


def test_home_moves_everything(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(config.ENV_HOME, str(tmp_path))
    assert config.config_dir() == tmp_path / "config"
    assert config.cache_dir() == tmp_path / "cache"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG shortcut is Linux-only")
def test_looking_up_directories_imports_no_platformdirs(tmp_path: Path) -> None:
    code = ("import sys; from sharklib import config; config.config_dir(); config.cache_dir(); "
            "print('platformdirs' in sys.modules)")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
