"""sharklib's own reads and writes (its cache, index, stat cache, keys, the reuse check's re-hashing)
are never a run's inputs or outputs, wherever the cache lives and whatever state it is in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = os.path.dirname(sys.executable)
STEP = 'open("out.txt", "w").write(open("in.txt").read().upper())\n'


def shark(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([os.path.join(BIN, "sharklib"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def inputs_of(sidecar: Path) -> list[str]:
    import base64

    envelope = json.loads(sidecar.read_text().splitlines()[0])
    statement = json.loads(base64.b64decode(envelope["payload"]))
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    return sorted(d["name"] for d in deps
                  if "name" in d and (d.get("annotations") or {}).get("role") != "script")


@pytest.mark.parametrize("where", ["default", "SHARKLIB_CACHE"])
def test_the_cache_is_never_an_input_or_output_of_the_run(tmp_path: Path, where: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".git").mkdir()
    (project / "in.txt").write_text("a")
    (project / "s.py").write_text(STEP)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHARKLIB_", "XDG_")) and k != "PYTHONPATH"}
    env["HOME"] = str(tmp_path / "home")  # the default locations: ~/.config, ~/.cache
    cache = tmp_path / "elsewhere"
    if where == "SHARKLIB_CACHE":
        env["SHARKLIB_CACHE"] = str(cache)
    shark(project, env, "run", "s.py")
    assert "reused run" in shark(project, env, "run", "s.py").stderr
    (project / "in.txt").write_text("b")  # the check now re-hashes in.txt through the stat cache
    for _ in range(2):
        changed = shark(project, env, "run", "s.py")
        assert "warning" not in changed.stderr, changed.stderr
    assert "reused run" in changed.stderr, "the run after the edit is cached and reused again"
    assert inputs_of(project / "out.txt.intoto.jsonl") == ["in.txt"]
    assert (project / "out.txt").read_text() == "B"
    for state in (tmp_path / "home", cache):
        assert not list(state.rglob("*.intoto.jsonl")), "no sidecar inside sharklib's own state"


def test_a_childs_inputs_are_recorded_alike_whatever_the_cache_holds(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    recorded = []
    for name, text in (("r1", "hi"), ("r2", "bye")):  # same run key, another input: a cache hit
        d = tmp_path / name
        d.mkdir()
        (d / "in.txt").write_text(text)
        (d / "child.py").write_text('open("mid.txt", "w").write(open("in.txt").read())\n')
        (d / "parent.py").write_text(
            "import subprocess, sys\nsubprocess.run([sys.executable, 'child.py'], check=True)\n"
            "open('out.txt', 'w').write(open('mid.txt').read())\n")
        shark(d, env, "run", "parent.py")
        recorded.append(inputs_of(d / "out.txt.intoto.jsonl"))
    assert recorded[0] == recorded[1] == ["mid.txt"]
