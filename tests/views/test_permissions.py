"""A careless umask or a careless chmod must not let another local user sign as you.

Under ``umask 000`` the config and ``trusted`` directories were created 0777: any
local user could add a public key to ``trusted/`` and have their signatures
accepted. A private key readable by others is a key anyone can sign with.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from viewkit import shark


def _umask000(args: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI started by a shell whose umask is 000."""
    cmd = "umask 000; exec \"$0\" -m sharklib \"$@\""
    env = {**os.environ, "SHARKLIB_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(["sh", "-c", cmd, sys.executable, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_config_keys_and_trusted_are_0700_under_umask_000(tmp_path: Path) -> None:
    home = tmp_path / "home"  # made by sharklib itself
    r = _umask000(["keys", "show"], home, tmp_path)
    assert r.returncode == 0, r.stderr
    r = _umask000(["keys", "generate", "--out", str(tmp_path / "lab.pem")], home, tmp_path)
    assert r.returncode == 0, r.stderr
    pub = tmp_path / "lab.pub.pem"
    r = _umask000(["keys", "export", "--key", str(tmp_path / "lab.pem"), "-o", str(pub)],
                  home, tmp_path)
    assert r.returncode == 0, r.stderr
    r = _umask000(["keys", "import", str(pub), "--name", "lab"], home, tmp_path)
    assert r.returncode == 0, r.stderr
    config = home / "config"
    for d in (home, config, config / "keys", config / "trusted"):
        assert _mode(d) == 0o700, f"{d} is {_mode(d):04o}"
    assert _mode(config / "keys" / "default.pem") == 0o600
    assert _mode(tmp_path / "lab.pem") == 0o600


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o755)
    r = _umask000(["keys", "show"], home, tmp_path)
    assert r.returncode == 0, r.stderr
    assert _mode(home) == 0o755, "a directory sharklib did not create is not changed"
    assert _mode(home / "config") == 0o700


def test_a_private_key_readable_by_others_is_warned_about_once(tmp_path: Path,
                                                               shark_home: Path) -> None:
    r = shark("keys", "show")
    assert r.returncode == 0 and "readable by other users" not in r.stderr, r.stderr
    key = shark_home / "config" / "keys" / "default.pem"
    key.chmod(0o644)
    r = shark("keys", "show")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("readable by other users") == 1, r.stderr
    assert f"chmod 600 {key}" in r.stderr
    # a command that signs several files still says it once
    script = tmp_path / "two.py"
    script.write_text("open('a.txt', 'w').write('a')\nopen('b.txt', 'w').write('b')\n")
    r = shark("run", str(script), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.txt.intoto.jsonl").exists() and (tmp_path / "b.txt.intoto.jsonl").exists()
    assert r.stderr.count("readable by other users") == 1, r.stderr


def test_the_default_cache_is_not_writable_by_others_under_umask_000(tmp_path: Path) -> None:
    """Every directory and file sharklib makes in its default cache (objects/, runs/, tmp/,
    quarantine/, the index) and config is at most 0755/0644 under ``umask 000``: a world-
    writable cache directory lets any local user plant objects or entries there."""
    xdg = {"XDG_CACHE_HOME": str(tmp_path / "xdg-cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "xdg-config")}
    (tmp_path / "p" / ".git").mkdir(parents=True)
    script = tmp_path / "p" / "step.py"
    script.write_text("open('out.txt', 'w').write(open('in.txt').read().upper())\n")
    (tmp_path / "p" / "in.txt").write_text("x\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
    cmd = "umask 000; exec \"$0\" -m sharklib \"$@\""
    for _ in range(2):  # recorded, then reused (restores what is missing)
        r = subprocess.run(["sh", "-c", cmd, sys.executable, "run", "step.py"],
                           cwd=tmp_path / "p", env={**env, **xdg}, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        (tmp_path / "p" / "out.txt").unlink()
    cache = tmp_path / "xdg-cache" / "sharklib"
    assert (cache / "objects").is_dir() and (cache / "index.sqlite").is_file()
    seen = 0
    for base in (cache, tmp_path / "xdg-config"):
        for d, dirs, files in os.walk(base):
            for name in [*dirs, *files]:
                p = Path(d) / name
                if p.is_symlink():
                    continue
                seen += 1
                assert _mode(p) & 0o022 == 0, f"{p} is {_mode(p):04o} under umask 000"
    assert seen > 10
