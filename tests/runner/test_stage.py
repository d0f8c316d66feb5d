"""The runner's stage path: record a command, prove it done, restore it, explain why not."""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

import pytest

from sharklib.runner import plan_command, plan_commands, run_command
from sharklib.runner.planner import StageSpec
from sharklib.runner.stagekey import is_single_python_command

PY = shlex.quote(sys.executable)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()  # the project root marker
    (tmp_path / "in.txt").write_text("hello\n")
    (tmp_path / "helper.py").write_text("def shout(s):\n    return s.upper()\n")
    (tmp_path / "up.py").write_text(
        "import sys\nfrom helper import shout\nprint(shout(open(sys.argv[1]).read()), end='')\n")
    old = time.time() - 60
    for name in ("in.txt", "helper.py", "up.py"):
        os.utime(tmp_path / name, (old, old))
    return tmp_path


def _stage(project: Path) -> str:
    return f"{PY} up.py in.txt > out.txt"


def test_python_stage_is_recorded_then_reused(project: Path) -> None:
    cmd = _stage(project)
    assert plan_command(cmd, cwd=str(project)).action == "run"
    first = run_command(cmd, shell=True, cwd=project, capture="python")
    assert first.exit_status == 0 and first.recorded and not first.reused
    assert (project / "out.txt").read_text() == "HELLO\n"
    plan = plan_command(cmd, cwd=str(project))
    assert plan.action == "reuse", plan.reason
    assert str(project / "in.txt") in plan.inputs and str(project / "out.txt") in plan.outputs
    (project / "out.txt").unlink()
    second = run_command(cmd, shell=True, cwd=project, capture="python")
    assert second.reused and second.exit_status == 0
    assert (project / "out.txt").read_text() == "HELLO\n"


def test_touch_does_not_rerun_but_an_edit_does(project: Path) -> None:
    cmd = _stage(project)
    run_command(cmd, shell=True, cwd=project, capture="python")
    os.utime(project / "in.txt")
    assert plan_command(cmd, cwd=str(project)).action == "reuse"
    (project / "in.txt").write_text("changed\n")
    plan = plan_command(cmd, cwd=str(project))
    assert plan.action == "run" and plan.reason.startswith("input in.txt changed (recorded ")
    again = run_command(cmd, shell=True, cwd=project, capture="python")
    assert not again.reused and (project / "out.txt").read_text() == "CHANGED\n"


def test_imported_helper_module_is_code(project: Path) -> None:
    cmd = _stage(project)
    run_command(cmd, shell=True, cwd=project, capture="python")
    (project / "helper.py").write_text("def shout(s):\n    return s.lower()\n")
    plan = plan_command(cmd, cwd=str(project))
    assert plan.action == "run" and plan.reason == "code changed: helper.py"


def test_environment_tag_is_part_of_the_key(project: Path) -> None:
    cmd = _stage(project)
    run_command(cmd, shell=True, cwd=project, capture="python", env_tag="envA")
    assert plan_command(cmd, cwd=str(project), env_tag="envA").action == "reuse"
    assert plan_command(cmd, cwd=str(project), env_tag="envB").action == "run"


def test_failed_stage_is_never_reused(project: Path) -> None:
    (project / "bad.py").write_text("raise SystemExit(3)\n")
    cmd = f"{PY} bad.py"
    assert run_command(cmd, shell=True, cwd=project, capture="python").exit_status == 3
    assert plan_command(cmd, cwd=str(project)).action == "run"


def test_incomplete_capture_is_not_recorded(project: Path) -> None:
    cmd = "cp in.txt copy.txt"
    assert not is_single_python_command(cmd, True)
    res = run_command(cmd, shell=True, cwd=project, capture="python")
    assert res.exit_status == 0 and not res.recorded
    assert plan_command(cmd, cwd=str(project)).action == "run"


def test_rerun_and_no_cache_flags(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cmd = _stage(project)
    run_command(cmd, shell=True, cwd=project, capture="python")
    assert not run_command(cmd, shell=True, cwd=project, capture="python", rerun=True).reused
    monkeypatch.setenv("SHARKLIB_NO_CACHE", "1")
    assert plan_command(cmd, cwd=str(project)).reason.startswith("cache disabled")


def test_plan_many_in_one_call(project: Path) -> None:
    cmds = [f"{PY} up.py in.txt > out{i}.txt" for i in range(3)]
    for c in cmds[:2]:
        run_command(c, shell=True, cwd=project, capture="python")
    plans = plan_commands([StageSpec(c, str(project)) for c in cmds])
    assert [p.action for p in plans] == ["reuse", "reuse", "run"]


def test_traced_shell_stage(project: Path) -> None:
    from sharklib.trace.session import choose_backend

    try:
        backend = choose_backend("auto")
    except Exception as exc:
        pytest.skip(f"no native tracer here: {exc}")
    cmd = "cat in.txt helper.py > both.txt"
    first = run_command(cmd, shell=True, cwd=project)
    assert first.backend == backend and first.recorded
    assert plan_command(cmd, cwd=str(project)).action == "reuse"
    (project / "both.txt").unlink()
    assert run_command(cmd, shell=True, cwd=project).reused
    assert (project / "both.txt").read_text() == "hello\ndef shout(s):\n    return s.upper()\n"
    (project / "in.txt").write_text("x\n")
    assert plan_command(cmd, cwd=str(project)).reason.startswith("input in.txt changed (recorded ")


def test_listing_a_directory_makes_it_an_input(project: Path) -> None:
    (project / "up").mkdir()
    (project / "up" / "a.txt").write_text("a")
    (project / "gather.py").write_text(
        "import os, sys\nprint(sorted(os.listdir(sys.argv[1])))\n")
    cmd = f"{PY} gather.py up > all.txt"
    run_command(cmd, shell=True, cwd=project, capture="python")
    assert plan_command(cmd, cwd=str(project)).action == "reuse"
    (project / "up" / "b.txt").write_text("b")
    plan = plan_command(cmd, cwd=str(project))
    assert plan.action == "run" and plan.reason.startswith("input up/ changed (recorded ")


def test_traced_ls_lists_an_input_directory(project: Path) -> None:
    from sharklib.trace.session import choose_backend

    try:
        choose_backend("auto")
    except Exception as exc:
        pytest.skip(f"no native tracer here: {exc}")
    (project / "up").mkdir()
    (project / "up" / "a.txt").write_text("a")
    run_command("ls up > list.txt", shell=True, cwd=project)
    assert plan_command("ls up > list.txt", cwd=str(project)).action == "reuse"
    (project / "up" / "b.txt").write_text("b")
    assert plan_command("ls up > list.txt", cwd=str(project)).reason.startswith("input up/ changed (recorded ")


def test_stages_traced_at_once_from_threads_do_not_mix(project: Path) -> None:
    """A pipeline's pool traces several stages from threads of one process at the same time."""
    import threading

    from sharklib.trace.session import choose_backend

    try:
        choose_backend("auto")
    except Exception as exc:
        pytest.skip(f"no native tracer here: {exc}")
    for name in "ab":
        (project / f"{name}.txt").write_text(name * 10)
    results: dict[str, list[set[str]]] = {"a": [], "b": []}

    def stage(name: str) -> None:
        for i in range(6):
            res = run_command(f"cat {name}.txt > {name}{i}.out", shell=True, cwd=project,
                              use_cache=False)
            results[name].append({os.path.basename(a.path) for r in res.runs for a in r.inputs})

    threads = [threading.Thread(target=stage, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, other in (("a", "b"), ("b", "a")):
        assert len(results[name]) == 6
        for seen in results[name]:
            assert f"{name}.txt" in seen and f"{other}.txt" not in seen, seen
