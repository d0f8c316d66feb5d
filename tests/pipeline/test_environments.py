"""``shark-build`` environments: a venv keyed by the digest of its definition, containers, host."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pipekit import Cli, write

from sharklib.config import cache_dir
from sharklib.errors import PipelineError
from sharklib.pipeline import load_pipeline, run_pipeline
from sharklib.pipeline.environments import container_engine

PY = f"{sys.version_info[0]}.{sys.version_info[1]}"


def test_bare_venv_is_created_once_and_tags_the_stage(project: Path, cli: Cli) -> None:
    write(project / "m.md", f"```shark-build:bare\npython: \"{PY}\"\nrequirements: []\n```\n\n"
          "```shark-run:bare\npython -c 'import sys; print(sys.prefix)' > prefix.txt\n```\n")
    pipe = load_pipeline(project / "m.md")
    spec = pipe.envs["bare"]
    assert spec.kind == "venv" and len(spec.digest) == 64
    cli("run", "m.md", check=True)
    prefix = (project / "prefix.txt").read_text().strip()
    venv = cache_dir() / "envs" / spec.digest[:32]
    assert prefix == str(venv)
    assert not (venv / "bin" / "pip").exists(), "no requirements: a --without-pip venv"
    marker = venv / ".sharklib-complete"
    first = marker.stat().st_ino
    (project / "prefix.txt").unlink()
    cli("run", "m.md", check=True)
    assert marker.stat().st_ino == first, "the environment is reused, not re-created"
    assert (project / "prefix.txt").read_text().strip() == str(venv)


def test_env_digest_changes_with_definition(project: Path) -> None:
    a = write(project / "a.md", f"```shark-build:e\npython: \"{PY}\"\nrequirements: []\n```\n")
    b = write(project / "b.md", f"```shark-build:e\npython: \"{PY}\"\nrequirements: [tinypkg]\n```\n")
    assert load_pipeline(a).envs["e"].digest != load_pipeline(b).envs["e"].digest


@pytest.mark.timeout(240)
def test_venv_with_a_local_wheel(project: Path, tmp_path: Path, cli: Cli) -> None:
    pkg = tmp_path / "tinypkg"
    write(pkg / "pyproject.toml", '[build-system]\nrequires = ["setuptools"]\n'
          'build-backend = "setuptools.build_meta"\n[project]\nname = "tinypkg"\nversion = "1.2.3"\n')
    write(pkg / "tinypkg.py", "ANSWER = 42\n")
    wheels = project / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--no-build-isolation", "-w", str(wheels), str(pkg)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot build a local wheel here: {proc.stderr.strip()[-200:]}")
    write(project / "m.md", f"```shark-build:tiny\npython: \"{PY}\"\nrequirements: [tinypkg==1.2.3]\n"
          "find_links: [wheels]\nno_index: true\n```\n\n"
          "```shark-run:tiny\npython -c 'import tinypkg; print(tinypkg.ANSWER)' > answer.txt\n```\n")
    cli("run", "m.md", check=True)
    assert (project / "answer.txt").read_text() == "42\n"


def test_container_environment_without_engine_is_a_clear_error(project: Path) -> None:
    if container_engine() is not None:
        pytest.skip("a container engine works here; the no-engine error cannot be exercised")
    doc = write(project / "m.md", "# m\n\n```shark-build:img\nimage: docker.io/library/python:3.11-slim\n"
                "```\n\n```shark-run:img\npython -V > v.txt\n```\n")
    with open(os.devnull, "w") as null:
        from rich.console import Console

        with pytest.raises(PipelineError) as info:
            run_pipeline(doc, console=Console(file=null))
    assert info.value.line == 3 and "container engine" in info.value.message
    assert not (project / "v.txt").exists()


def test_host_cannot_be_redefined(project: Path) -> None:
    doc = write(project / "m.md", "```shark-build:host\npython: '3.11'\n```\n")
    with pytest.raises(PipelineError) as info:
        load_pipeline(doc)
    assert info.value.line == 1


def test_python_steps_in_an_environment_without_sharklib_are_captured_and_isolated(
        project: Path, cli: Cli) -> None:
    """The bootstrap runs in a bare venv without sharklib's dependencies, sees only sharklib.

    The step is still recorded at Python's level of detail (its script digest), no warning
    reaches its stderr, and nothing of the runner's own site-packages (or source tree)
    becomes importable in the step's environment.
    """
    from sharklib.trace.session import choose_backend

    try:
        choose_backend("auto")
    except Exception as exc:
        pytest.skip(f"no native tracer here: {exc}")
    write(project / "probe.py",
          "import importlib.util, sys\n"
          "names = ['platformdirs', 'cryptography', 'rich', 'tests', 'benchmarks']\n"
          "print(sorted(n for n in names if importlib.util.find_spec(n)))\n")
    write(project / "m.md", f"```shark-build:bare\npython: \"{PY}\"\nrequirements: []\n```\n\n"
          "```shark-run:bare\npython probe.py > seen.txt\n```\n")
    cli("run", "m.md", check=True)
    assert (project / "seen.txt").read_text().strip() == "[]"
    # a stage that printed nothing leaves no log files (pipeline/leaf.py): none, or no warning
    assert list((cache_dir() / "pipelines").glob("*/logs"))
    logs = list((cache_dir() / "pipelines").glob("*/logs/stage-*.err"))
    assert all("sharklib:" not in p.read_text() for p in logs), [p.read_text() for p in logs]
    shown = subprocess.run([sys.executable, "-m", "sharklib", "show", "seen.txt"], cwd=project,
                           capture_output=True, text=True, check=True).stdout
    assert "script sha256:" in shown, shown
