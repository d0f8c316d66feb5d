"""A reuse proves its entry without loading ``cryptography`` when the signature is known good.

runner/proof.py remembers, in the user's private ``<config>/verified/``, each signature that
verified (or that the user just made); the reuse of an unchanged step then checks only that
memo. The memo may never stand in for a check it did not make: see
tests/cache/test_forged_remote.py for entries edited in a shared cache after that.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

# what the process had imported once the reuse decision was made, written into sharklib's own
# home (never recorded, never replayed, unlike a line on stderr)
DRIVER = ("import os, sys\n"
          "sys.argv = ['sharklib', 'run', 'step.py']\n"
          "from sharklib.__main__ import _main\n"
          "rc = _main()\n"
          "with open(os.path.join(os.environ['SHARKLIB_HOME'], 'loaded'), 'w') as fh:\n"
          "    fh.write(str('cryptography' in sys.modules))\n"
          "sys.exit(rc)\n")


def _crypto_loaded(home: Path) -> bool:
    return (home / "loaded").read_text() == "True"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
    env["SHARKLIB_HOME"] = str(home)
    return env


def _run(project: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", DRIVER], cwd=project, env=_env(home),
                          capture_output=True, text=True, timeout=120, check=False)


def _project(tmp_path: Path) -> tuple[Path, Path, Path]:
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir(mode=0o700)
    counter = home / "count"  # sharklib's own home: never a run's data (tests/runner/stepcount.py)
    (project / "step.py").write_text(
        f"open({str(counter)!r}, 'a').write('ran\\n')\nprint('done')\n")
    return project, home, counter


def test_reuse_of_an_own_run_does_not_load_cryptography(tmp_path: Path) -> None:
    project, home, counter = _project(tmp_path)
    first = _run(project, home)
    assert first.returncode == 0, first.stderr
    again = _run(project, home)
    assert again.returncode == 0, again.stderr
    assert "reused run" in again.stderr and again.stdout == "done\n"
    assert counter.read_text() == "ran\n"  # executed once
    assert not _crypto_loaded(home)


def test_the_memo_is_private_and_never_in_the_cache(tmp_path: Path) -> None:
    project, home, _ = _project(tmp_path)
    assert _run(project, home).returncode == 0
    memo = home / "config" / "verified"
    assert stat.S_IMODE(memo.stat().st_mode) == 0o700
    assert (memo / "own-key").is_file()
    assert [p for p in memo.rglob("*") if p.is_file() and p.name != "own-key"]
    assert not [p for p in (home / "cache").rglob("verified")]


def test_without_the_memo_the_signature_is_checked_and_remembered(tmp_path: Path) -> None:
    project, home, counter = _project(tmp_path)
    assert _run(project, home).returncode == 0
    for p in sorted((home / "config" / "verified").rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    checked = _run(project, home)
    assert "reused run" in checked.stderr, checked.stderr
    assert _crypto_loaded(home)  # verified in full, then noted
    again = _run(project, home)
    assert "reused run" in again.stderr and not _crypto_loaded(home)
    assert counter.read_text() == "ran\n"


def test_a_replaced_own_key_is_loaded_not_assumed(tmp_path: Path) -> None:
    """The own key's id is remembered with its file's identity: a new key is read again."""
    project, home, counter = _project(tmp_path)
    assert _run(project, home).returncode == 0
    key = home / "config" / "keys" / "default.pem"
    key.unlink()  # a new key is created at the next record; the old run is not its own
    rerun = _run(project, home)
    assert rerun.returncode == 0, rerun.stderr
    assert "reused run" not in rerun.stderr  # signed by a key no longer trusted for reuse
    assert counter.read_text() == "ran\nran\n"
