"""Where sidecars may be written (issue 16, item 1): never outside the project, except beside a
file the user named as an output on the command line. A step that writes into a scratch or cache
folder of its own gets its outputs signed by digest, with nothing written beside them there.

Real ``sharklib run`` (Python capture) and ``sharklib trace`` (native tracer) subprocesses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from stepcount import step_env

GEN = """\
import os, sys
scratch = os.environ["SCRATCH"]
os.makedirs(scratch, exist_ok=True)
open(os.path.join(scratch, "state.json"), "w").write("{}")  # the tool's own, not named
open(sys.argv[1], "w").write("result\\n")                   # named by the user
open("local.txt", "w").write("in the project\\n")
"""


def _bin(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path, Path]:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / ".git").mkdir()
    (proj / "gen.py").write_text(GEN)
    (proj / "in.txt").write_text("data\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    return proj, outside, tmp_path / "scratch"


def _run(proj: Path, scratch: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=proj, env=step_env(SCRATCH=str(scratch)),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _verify(proj: Path, path: Path) -> None:
    proc = subprocess.run([_bin("sharklib"), "verify", str(path)], cwd=proj, env=step_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_python_step_gets_sidecars_only_in_the_project_and_where_named(
        places: tuple[Path, Path, Path]) -> None:
    proj, outside, scratch = places
    named = outside / "out.txt"
    _run(proj, scratch, _bin("sharklib"), "run", "gen.py", str(named))
    assert (scratch / "state.json").exists()
    assert not (scratch / "state.json.intoto.jsonl").exists(), "a sidecar in the step's scratch"
    assert (outside / "out.txt.intoto.jsonl").exists(), "the named output outside lost its own"
    assert (proj / "local.txt.intoto.jsonl").exists()
    _verify(proj, named)
    _verify(proj, proj / "local.txt")


def test_traced_step_gets_sidecars_only_in_the_project_and_where_named(
        places: tuple[Path, Path, Path]) -> None:
    try:
        from sharklib.trace.session import choose_backend

        choose_backend("auto")
    except Exception as exc:
        pytest.skip(f"no native tracer may run here: {exc}")
    proj, outside, scratch = places
    scratch.mkdir()
    _run(proj, scratch, _bin("sharklib"), "trace", "--", "sh", "-c",
         f'cp in.txt {outside}/copy.txt; '
         f'echo x > "$SCRATCH/tmp.txt"; sort in.txt > sorted.txt')
    assert (scratch / "tmp.txt").exists()
    assert not (scratch / "tmp.txt.intoto.jsonl").exists()
    assert (outside / "copy.txt.intoto.jsonl").exists()
    assert (proj / "sorted.txt.intoto.jsonl").exists()
    _verify(proj, outside / "copy.txt")
    _verify(proj, proj / "sorted.txt")
