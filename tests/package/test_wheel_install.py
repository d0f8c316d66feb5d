"""sharklib installed the normal way: an sdist, the wheel built from it, a fresh venv elsewhere.

The editable install the demo and the rest of the suite use hides what a wheel
leaves out (the child-capture bootstrap was once such a file: every Python child
then ran unrecorded). Here the package is built as PyPI would get it, installed
into a venv under a temporary directory, and driven only through that venv's
``sharklib``, from a project directory outside the source tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _clean_env(home: Path, venv: Path | None = None) -> dict[str, str]:
    """The user's shell: no sharklib variables, no PYTHONPATH, the venv first on PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHARKLIB_", "PYTHON")) and k != "VIRTUAL_ENV"}
    env["SHARKLIB_HOME"] = str(home)
    if venv is not None:
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(venv)
    return env


def _run(argv: list[str], cwd: Path, env: dict[str, str],
         timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


class Installed:
    """The built distributions and the venv the wheel went into."""

    def __init__(self, dist: Path, venv: Path, home: Path) -> None:
        self.dist = dist
        self.venv = venv
        self.home = home
        self.sdist = next(dist.glob("sharklib-*.tar.gz"))
        self.wheel = next(dist.glob("sharklib-*.whl"))

    def env(self) -> dict[str, str]:
        return _clean_env(self.home, self.venv)

    def sharklib(self, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return _run([str(self.venv / "bin" / "sharklib"), *args], project, self.env(), 180)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("wheel-install")
    home = base / "home"
    home.mkdir()
    dist = base / "dist"
    env = _clean_env(home)
    # the sdist first, then the wheel built from the unpacked sdist: both must be complete
    proc = _run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], base, env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "SetuptoolsDeprecationWarning" not in proc.stdout + proc.stderr
    venv = base / "venv"
    proc = _run([sys.executable, "-m", "venv", str(venv)], base, env)
    assert proc.returncode == 0, proc.stderr
    wheel = next(dist.glob("sharklib-*.whl"))
    proc = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], base, env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    yield Installed(dist, venv, home)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()  # a project root, as a clone is
    return tmp_path


def test_sdist_and_wheel_pass_twine_check_and_ship_the_bootstrap(installed: Installed) -> None:
    proc = _run([sys.executable, "-m", "twine", "check", "--strict",
                 str(installed.sdist), str(installed.wheel)], installed.dist, installed.env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with zipfile.ZipFile(installed.wheel) as zf:
        names = set(zf.namelist())
    assert {"sharklib/_bootstrap/sitecustomize.py", "sharklib/py.typed",
            "sharklib/trace/bpf/tracer.bpf.o"} <= names
    with tarfile.open(installed.sdist) as tf:
        members = {m.split("/", 1)[1] for m in tf.getnames() if "/" in m}
    assert {"sharklib/_bootstrap/sitecustomize.py", "LICENSE", "README.md"} <= members


def test_the_venv_runs_its_own_copy_not_the_source_tree(installed: Installed,
                                                         project: Path) -> None:
    proc = _run([str(installed.venv / "bin" / "python"), "-c",
                 "import sharklib.common.environ as e; print(e.require_bootstrap_dir())"],
                project, installed.env())
    assert proc.returncode == 0, proc.stderr
    boot = Path(proc.stdout.strip())
    assert boot.is_relative_to(installed.venv), boot
    assert (boot / "sitecustomize.py").is_file()


def test_a_python_child_is_captured_from_a_wheel_install(installed: Installed,
                                                         project: Path) -> None:
    (project / "parent.py").write_text(textwrap.dedent("""
        import subprocess, sys
        subprocess.run([sys.executable, "child.py"], check=True)
    """))
    (project / "child.py").write_text("open('from_child.txt', 'w').write('child data')\n")
    proc = installed.sharklib(project, "run", "parent.py")
    assert proc.returncode == 0, proc.stderr
    assert "recorded no outputs" not in proc.stderr, proc.stderr
    assert (project / "from_child.txt").read_text() == "child data"
    assert (project / "from_child.txt.intoto.jsonl").is_file(), proc.stderr
    verify = installed.sharklib(project, "verify", "from_child.txt")
    assert verify.returncode == 0, verify.stdout + verify.stderr


MAKEFILE = """\
out.txt: in.txt step.py
\tpython step.py in.txt out.txt
"""

# the side effect that counts executions, where capture does not look (sharklib's home): a
# file the step appends to in the project is an input of the step (its old content), and
# appending makes the step run again, as plain Python would
STEP = """\
import os, sys
open(os.path.join(os.environ["SHARKLIB_HOME"], "ran.log"), "a").write("step\\n")
data = open(sys.argv[1]).read()
open(sys.argv[2], "w").write(data.upper())
"""


def test_make_under_sharklib_env_is_captured_and_reused(installed: Installed,
                                                        project: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed (scripts/apt-packages.txt lists it)")
    (project / "Makefile").write_text(MAKEFILE)
    (project / "step.py").write_text(STEP)
    (project / "in.txt").write_text("hello\n")
    first = installed.sharklib(project, "env", "--", "make")
    assert first.returncode == 0, first.stdout + first.stderr
    assert (project / "out.txt").read_text() == "HELLO\n"
    assert (project / "out.txt.intoto.jsonl").is_file(), first.stderr
    ran = installed.home / "ran.log"
    assert ran.read_text() == "step\n"

    again = installed.sharklib(project, "env", "--", "make", "-B")  # make re-runs the recipe
    assert again.returncode == 0, again.stdout + again.stderr
    assert ran.read_text() == "step\n", again.stderr  # the step did not run
    assert (project / "out.txt").read_text() == "HELLO\n"


def test_a_missing_bootstrap_is_one_line_and_nothing_runs(installed: Installed,
                                                          project: Path) -> None:
    (project / "step.py").write_text("open('ran.log', 'a').write('step\\n')\n")
    purelib = _run([str(installed.venv / "bin" / "python"), "-c",
                    "import sharklib, os; print(os.path.dirname(sharklib.__file__))"],
                   project, installed.env()).stdout.strip()
    boot = Path(purelib) / "_bootstrap"
    hidden = Path(purelib) / "_bootstrap.hidden"
    boot.rename(hidden)  # a broken install: what a packaging mistake would ship
    try:
        for argv in (["run", "step.py"], ["env", "--", "python", "step.py"], ["env", "--shell"]):
            proc = installed.sharklib(project, *argv)
            assert proc.returncode == 2, (argv, proc.stdout, proc.stderr)
            lines = proc.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("sharklib: error: capture bootstrap "
                                                           "missing: "), (argv, proc.stderr)
            assert "reinstall sharklib" in lines[0]
            assert proc.stdout == ""
        assert not (project / "ran.log").exists()
    finally:
        hidden.rename(boot)
