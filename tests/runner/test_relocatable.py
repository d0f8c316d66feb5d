"""Relocatable run keys: a teammate's checkout and venv at other paths hit the same runs.

Two checkouts of one project at different paths, two venvs at different paths,
two local caches (two ``SHARKLIB_HOME``), one shared ``file://`` remote. The
second checkout's run is reused (counted through a line appended to a file
under ``/dev/shm``, which no step records) and its output is byte-identical.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import sharklib

REPO = Path(sharklib.__file__).resolve().parents[1]


@pytest.fixture
def counter() -> Iterator[Path]:
    if not os.access("/dev/shm", os.W_OK):
        pytest.skip("no writable /dev/shm to count executions in")
    path = Path("/dev/shm") / f"sharklib-reloc-{uuid.uuid4().hex}"
    path.write_text("")
    yield path
    path.unlink(missing_ok=True)


def make_venv(where: Path) -> Path:
    """A venv at ``where`` that imports this sharklib and its dependencies (no network)."""
    done = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot create a venv here: {done.stderr.strip()[-200:]}")
    python = where / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # the test venv's site-packages (its .pth files too: an editable install) and the source
    lines = [f"import site; site.addsitedir({d!r})" for d in site.getsitepackages()]
    (Path(purelib) / "shared-test-deps.pth").write_text("\n".join([str(REPO), *lines]) + "\n")
    return python


def checkout(src: Path, where: Path) -> Path:
    shutil.copytree(src, where, copy_function=shutil.copy2)
    return where


def test_two_checkouts_and_two_venvs_share_runs_through_a_remote(
        tmp_path: Path, counter: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / ".git").mkdir()
    (src / "data.csv").write_text("a,b\n1,2\n")
    (src / "helper.py").write_text("def double(s):\n    return s + s\n")
    (src / "step.py").write_text(
        "import sys\nfrom helper import double\n"
        f"open({str(counter)!r}, 'a').write('x\\n')\n"
        "open('out.txt', 'w').write(double(open('data.csv').read()))\n")
    old = time.time() - 60
    for f in src.iterdir():
        os.utime(f, (old, old))
    a = checkout(src, tmp_path / "ann" / "work" / "proj")
    b = checkout(src, tmp_path / "bob" / "proj")
    py_a = make_venv(tmp_path / "ann" / ".venv")
    py_b = make_venv(tmp_path / "opt" / "ci" / "venv-b")
    remote = tmp_path / "remote"
    remote.mkdir()
    # one team key (Ann's, made by her first run): a restore may check who signed the run
    key = tmp_path / "home-ann" / "config" / "keys" / "default.pem"

    def env(home: str, **extra: str) -> dict[str, str]:
        # OMP_NUM_THREADS: a library imported earlier in this test process (dask's nanny) may
        # have set it; the variable is keyed, and the test sets it itself where it matters
        e = {k: v for k, v in os.environ.items()
             if not k.startswith("SHARKLIB_")
             and k not in ("PYTHONPATH", "VIRTUAL_ENV", "OMP_NUM_THREADS")}
        e.update(SHARKLIB_HOME=str(tmp_path / home), SHARKLIB_CACHE_REMOTE=remote.as_uri(),
                 **extra)
        if home != "home-ann":
            e["SHARKLIB_KEY"] = str(key)
        return e

    def sharklib_in(python: Path, proj: Path, home: str, *args: str,
                    **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(python), "-m", "sharklib", *args], cwd=proj, text=True,
                              capture_output=True, env=env(home, **extra),
                              stdin=subprocess.DEVNULL, check=False)

    first = sharklib_in(py_a, a, "home-ann", "run", "-q", "step.py")
    assert first.returncode == 0, first.stderr
    assert len(counter.read_text().splitlines()) == 1
    assert any(remote.rglob("*.json.zst")), "the run was not pushed to the remote"

    said = sharklib_in(py_b, b, "home-bob", "run", "--explain", "step.py")
    assert said.returncode == 0 and "would be reused" in said.stdout, (said.stdout, said.stderr)
    second = sharklib_in(py_b, b, "home-bob", "run", "-q", "step.py")
    assert second.returncode == 0, second.stderr
    assert len(counter.read_text().splitlines()) == 1, "the teammate's run executed again"
    assert (b / "out.txt").read_bytes() == (a / "out.txt").read_bytes()

    # when keys differ, --explain names the first difference
    other = sharklib_in(py_b, b, "home-bob", "run", "--explain", "step.py",
                        OMP_NUM_THREADS="7")
    assert "no past run with this key" in other.stdout, other.stdout
    assert "env:OMP_NUM_THREADS (recorded absent, now 7)" in other.stdout, other.stdout


def test_an_import_stage_key_does_not_hold_the_interpreter_path(tmp_path: Path) -> None:
    """Pipeline import stages run sharklib's own python by its absolute path."""
    src = tmp_path / "src"
    src.mkdir()
    (src / ".git").mkdir()
    keys = []
    for proj, venv in ((tmp_path / "a" / "p", tmp_path / "v1"),
                       (tmp_path / "b" / "c" / "p", tmp_path / "x" / "v2")):
        checkout(src, proj)
        python = make_venv(venv)
        code = ("import shlex, sys\nfrom sharklib.runner.planner import stage_keys, StageSpec\n"
                "cmd = shlex.join([sys.executable, '-m', 'sharklib.pipeline.fetch', "
                "'https://example.org/a.csv', 'raw/a.csv'])\n"
                "print(stage_keys([StageSpec(cmd, '.')])[0][0])\n")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        done = subprocess.run([str(python), "-c", code], cwd=proj, text=True,
                              capture_output=True, env=env, check=True)
        keys.append(done.stdout.strip())
    assert keys[0] == keys[1] and keys[0].startswith("sha256:"), keys


def test_relocate_matches_whole_directories_only() -> None:
    from sharklib.model.runkey import relocate

    places = [("/a/proj", "<project>"), ("/a/proj/.venv", "<prefix>"), ("/usr", "<base-prefix>")]
    assert relocate("'/a/proj/.venv/bin/python' -m x /a/proj/d.txt", places) == \
        "'<prefix>/bin/python' -m x <project>/d.txt"
    assert relocate("/a/project/x /usr2/y cat /usr/bin/awk", places) == \
        "/a/project/x /usr2/y cat <base-prefix>/bin/awk"


def test_first_difference_names_what_a_user_can_act_on() -> None:
    from sharklib.model.runkey import RunKeyParts, first_difference

    old = RunKeyParts(["step.py"], ".", {"step.py": "a" * 64}, {"python": "3.11.7"}).to_dict()
    assert first_difference(old, RunKeyParts(["step.py"], ".", {"step.py": "b" * 64},
                                             {"python": "3.11.7"}).to_dict()) == \
        "code changed: step.py"
    assert first_difference(old, RunKeyParts(["step.py"], ".", {"step.py": "a" * 64},
                                             {"python": "3.12.1"}).to_dict()) == \
        "interpreter differs: python 3.11.7 -> 3.12.1"
    assert first_difference(old, RunKeyParts(["step.py", "-v"], ".", {"step.py": "a" * 64},
                                             {"python": "3.11.7"}).to_dict()) == \
        'command line differs: recorded ["step.py"], now ["step.py","-v"]'
