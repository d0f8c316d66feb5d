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
