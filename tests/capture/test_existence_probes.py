"""Decisions taken from ``os.path.exists``/``os.stat``/pathlib are inputs of the run.

A script that writes ``out.txt`` only when it does not exist, or creates a counter file only
the first time, decides from the file's existence without reading it. Recorded without that
decision, a second run was reused: the counter stayed at 1, and a hand edit of ``out.txt``
was overwritten by the recorded file. Plain Python is the reference: the same script is run
the same number of times plainly in one directory and through ``sharklib run`` in another,
with the same edits between runs; printed lines and files must be the same. Executions are
counted through a line each run appends to a file in sharklib's home (tests/runner/stepcount).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.runner.stepcount import executed, step_env

#: every script appends one line per execution to $COUNT_FILE (outside the project: not data)
COUNT = "import os as _o; open(_o.environ['COUNT_FILE'], 'a').write('ran\\n')\n"

COUNTER = COUNT + """\
import os
if not os.path.exists("c.txt"):
    open("c.txt", "w").write("0")
with open("c.txt", "r+") as f:
    n = int(f.read()) + 1
    f.seek(0)
    f.write(str(n))
    f.truncate()
print(n)
"""

WRITE_ONCE = COUNT + """\
import os
if os.path.exists("out.txt"):
    print("out.txt exists: kept")
else:
    open("out.txt", "w").write("generated\\n")
    print("wrote out.txt")
"""

MEMO = COUNT + """\
import os, pickle
if os.path.exists("cache.pkl"):
    with open("cache.pkl", "rb") as f:
        value = pickle.load(f)
    print("loaded", value)
else:
    value = sum(range(1000))
    with open("cache.pkl", "wb") as f:
        pickle.dump(value, f)
    print("computed", value)
"""

#: probes a file nobody creates, probes its output's directory, then writes unconditionally
UNCONDITIONAL = COUNT + """\
import os
from pathlib import Path
extra = os.path.exists("settings.json")
os.makedirs("out/sub", exist_ok=True)
Path("out").mkdir(exist_ok=True)
print("settings" if extra else "defaults", os.path.isdir("out"), os.path.isfile("out/sub"))
open("out/sub/result.txt", "w").write("defaults\\n")
"""

#: each way of asking whether ``flag`` is there, as a statement setting ``seen``
PATHLIB = {
    "exists": "seen = Path('flag').exists()",
    "is_file": "seen = Path('flag').is_file()",
    "is_dir": "seen = Path('flag').is_dir()",
    "Path.stat": "try:\n    seen = Path('flag').stat().st_size\nexcept FileNotFoundError:\n"
                 "    seen = -1",
    "os.stat": "try:\n    seen = os.stat('flag').st_size\nexcept OSError:\n    seen = -1",
    "isfile": "seen = os.path.isfile('flag')",
    "getsize": "seen = os.path.getsize('flag') if os.path.lexists('flag') else -1",
    "access": "seen = os.access('flag', os.F_OK)",
    "glob": "seen = bool(__import__('glob').glob('flag'))",
}

PATHLIB_SCRIPT = COUNT + """\
import os
from pathlib import Path
{expr}
Path("result.txt").write_text(f"{{seen}}\\n")
print(seen)
"""


def _run(where: Path, captured: bool, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, *(["-m", "sharklib", "run", "-q", *args] if captured else []),
           "step.py"]
    p = subprocess.run(cmd, cwd=where, capture_output=True, text=True, env=step_env(),
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return p


def _same_runs(tmp_path: Path, script: str, files: list[str],
               between: list[Callable[[Path], None]]) -> tuple[list[str], list[int]]:
    """Run plainly and captured, ``between[i]`` applied to both dirs before run i+1.

    Returns what each run printed and how many times the captured step executed in each.
    """
    plain, captured = tmp_path / "plain", tmp_path / "captured"
    for d in (plain, captured):
        (d / ".git").mkdir(parents=True, exist_ok=True)
        (d / "step.py").write_text(script)
    printed: list[str] = []
    counts: list[int] = []
    for i in range(len(between) + 1):
        if i:
            between[i - 1](plain)
            between[i - 1](captured)
        out = _run(plain, captured=False).stdout
        executed()
        got = _run(captured, captured=True).stdout
        counts.append(len(executed()))
        assert got == out, f"run {i + 1}: sharklib printed {got!r}, plain Python {out!r}"
        printed.append(out)
        for name in files:
            p, c = plain / name, captured / name
            assert p.exists() == c.exists(), (name, i + 1)
            if p.is_file():
                assert c.read_bytes() == p.read_bytes(), (name, i + 1)
    return printed, counts


def _nothing(d: Path) -> None:
    pass


def test_a_counter_created_when_missing_counts_1_2_3(tmp_path: Path) -> None:
    printed, counts = _same_runs(tmp_path, COUNTER, ["c.txt"], [_nothing, _nothing])
    assert printed == ["1\n", "2\n", "3\n"]
    assert counts == [1, 1, 1]


def test_a_hand_edit_of_an_output_written_only_when_missing_is_kept(tmp_path: Path) -> None:
    def edit(d: Path) -> None:
        (d / "out.txt").write_text("edited by hand\n")

    printed, counts = _same_runs(tmp_path, WRITE_ONCE, ["out.txt"], [edit, _nothing])
    assert printed == ["wrote out.txt\n", "out.txt exists: kept\n", "out.txt exists: kept\n"]
    assert (tmp_path / "captured" / "out.txt").read_text() == "edited by hand\n"
    # the third run saw out.txt as the second did (present, not read): reused
    assert counts == [1, 1, 0]


def test_the_output_deleted_again_is_written_again(tmp_path: Path) -> None:
    def edit(d: Path) -> None:
        (d / "out.txt").write_text("edited by hand\n")

    def delete(d: Path) -> None:
        (d / "out.txt").unlink()

    printed, _ = _same_runs(tmp_path, WRITE_ONCE, ["out.txt"], [edit, delete])
    assert printed == ["wrote out.txt\n", "out.txt exists: kept\n", "wrote out.txt\n"]


def test_the_memoisation_idiom_loads_what_it_saved(tmp_path: Path) -> None:
    def forget(d: Path) -> None:
        (d / "cache.pkl").unlink()

    printed, counts = _same_runs(tmp_path, MEMO, ["cache.pkl"], [_nothing, _nothing, forget])
    assert printed == ["computed 499500\n", "loaded 499500\n", "loaded 499500\n",
                       "computed 499500\n"]
    # the third run is the second again (cache.pkl read, unchanged), the fourth the first
    # (cache.pkl absent): both reused, the fourth restoring the cache.pkl it computed
    assert counts == [1, 1, 0, 0]


def test_probing_then_writing_unconditionally_is_still_reused(tmp_path: Path) -> None:
    def settings(d: Path) -> None:
        (d / "settings.json").write_text("{}")

    printed, counts = _same_runs(tmp_path, UNCONDITIONAL, ["out/sub/result.txt"],
                                 [_nothing, _nothing, settings, _nothing])
    assert printed == ["defaults True False\n"] * 3 + ["settings True False\n"] * 2
    # os.makedirs/Path.mkdir looking at the directories they create are no decision of the
    # script; isdir("out") saw a directory each time: nothing but settings.json changes it
    assert counts == [1, 0, 0, 1, 0]


@pytest.mark.parametrize("probe", sorted(PATHLIB))
def test_each_way_of_asking_is_an_input(tmp_path: Path, probe: str) -> None:
    def create(d: Path) -> None:
        if probe == "is_dir":
            (d / "flag").mkdir()
        else:
            (d / "flag").write_text("x")

    def remove(d: Path) -> None:
        if probe == "is_dir":
            (d / "flag").rmdir()
        else:
            (d / "flag").unlink()

    script = PATHLIB_SCRIPT.format(expr=PATHLIB[probe])
    printed, counts = _same_runs(tmp_path, script, ["result.txt"],
                                 [_nothing, create, _nothing, remove])
    assert printed[0] == printed[1] == printed[4] != printed[2] == printed[3]
    # the fifth run sees what the first saw: that run stands for it
    assert counts == [1, 0, 1, 0, 0]


def test_a_directory_appearing_where_a_file_was_asked_for(tmp_path: Path) -> None:
    script = PATHLIB_SCRIPT.format(expr="seen = os.path.isfile('flag')")

    def make_dir(d: Path) -> None:
        (d / "flag").mkdir()

    def make_file(d: Path) -> None:
        (d / "flag").rmdir()
        (d / "flag").write_text("x")

    printed, counts = _same_runs(tmp_path, script, ["result.txt"], [make_dir, make_file])
    assert printed == ["False\n", "False\n", "True\n"]
    # isfile() said False for a missing flag and for a directory alike: reused
    assert counts == [1, 0, 1]


def _explain(where: Path) -> str:
    p = subprocess.run([sys.executable, "-m", "sharklib", "run", "--explain", "step.py"],
                       cwd=where, capture_output=True, text=True, env=step_env(), timeout=120)
    return p.stdout + p.stderr


def test_explain_names_the_probe_in_one_line(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "step.py").write_text(WRITE_ONCE)
    _run(tmp_path, captured=True)
    (tmp_path / "out.txt").write_text("edited by hand\n")
    line = _explain(tmp_path)
    assert "out.txt now exists; the recorded run saw it absent" in line, line
    assert len(line.strip().splitlines()) == 1, line


def test_the_signed_entry_and_the_sidecar_name_the_probe(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "step.py").write_text(WRITE_ONCE)
    session = tmp_path / "session"
    (session / "runs").mkdir(parents=True)
    _ = subprocess.run([sys.executable, "-m", "sharklib", "run", "-q", "step.py"],
                       cwd=tmp_path, check=True, timeout=120,
                       env=step_env(SHARKLIB_SESSION=str(session)))
    (run,) = [json.loads(p.read_text()) for p in (session / "runs").glob("*.json")]
    assert run["probes"] == [[str(tmp_path / "out.txt"), "absent"]]
    import base64

    (line,) = (tmp_path / "out.txt.intoto.jsonl").read_text().splitlines()
    statement = json.loads(base64.b64decode(json.loads(line)["payload"]))
    (byproduct,) = statement["predicate"]["runDetails"]["byproducts"]
    assert byproduct["annotations"]["probes"] == [[str(tmp_path / "out.txt"), "absent"]]

    from sharklib.cache.runcache import RunCache

    cache = RunCache.from_env(str(tmp_path))
    try:
        (entry,) = list(cache.index.entries())
        assert entry.probes == [("out.txt", "absent")]
        assert entry.signed_part()["probes"] == [["out.txt", "absent"]]
    finally:
        cache.close()


def test_imports_and_paths_outside_the_project_are_not_probes(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "helper.py").write_text("VALUE = 1\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "step.py").write_text(COUNT + """\
import os, linecache, shutil, tempfile
import helper, pkg
os.path.exists("/etc/hostname"); os.path.exists(os.path.expanduser("~/.cache/x"))
os.path.realpath("new.txt")
shutil.copy("helper.py", "copy.txt")
linecache.getline("helper.py", 1)
with tempfile.TemporaryDirectory(dir="."):
    pass
print(helper.VALUE)
""")
    session = tmp_path / "session"
    (session / "runs").mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "sharklib", "run", "-q", "step.py"], cwd=tmp_path,
                   check=True, timeout=120, env=step_env(SHARKLIB_SESSION=str(session)))
    (run,) = [json.loads(p.read_text()) for p in (session / "runs").glob("*.json")]
    assert run.get("probes", []) == [], run.get("probes")
    executed()
    subprocess.run([sys.executable, "-m", "sharklib", "run", "-q", "step.py"], cwd=tmp_path,
                   check=True, timeout=120, env=step_env())
    assert executed() == [], "an unchanged run was not reused"
    assert not os.path.exists(tmp_path / "new.txt")


def test_a_pipeline_stage_plans_and_runs_by_its_probes(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner's stat-only pass and its digest pass, and the stage run, see the probe."""
    import shlex

    from sharklib.runner import plan_command, run_command

    for k, v in step_env().items():
        monkeypatch.setenv(k, v)
    (tmp_path / ".git").mkdir()
    (tmp_path / "step.py").write_text(WRITE_ONCE)
    (tmp_path / "data.txt").write_text("data\n")
    (tmp_path / "reads.py").write_text(WRITE_ONCE + "open('data.txt').read()\n")
    for script in ("step.py", "reads.py"):
        cmd = f"{shlex.quote(sys.executable)} {script}"
        first = run_command(cmd, shell=True, cwd=tmp_path, capture="python")
        assert first.recorded and not first.reused
        # the run saw no out.txt and wrote it: planned as reusable while out.txt is absent
        assert plan_command(cmd, cwd=str(tmp_path)).action == "run"
        (tmp_path / "out.txt").unlink()
        assert plan_command(cmd, cwd=str(tmp_path)).action == "reuse"
        assert plan_command(cmd, cwd=str(tmp_path)).action == "reuse"  # signatures kept
        (tmp_path / "out.txt").write_text("edited by hand\n")
        plan = plan_command(cmd, cwd=str(tmp_path))
        assert plan.action == "run", plan
        assert plan.reason == "out.txt now exists; the recorded run saw it absent"
        executed()
        again = run_command(cmd, shell=True, cwd=tmp_path, capture="python")
        assert not again.reused and executed() == ["ran"]
        assert (tmp_path / "out.txt").read_text() == "edited by hand\n"
        (tmp_path / "out.txt").unlink()


def test_why_lists_what_the_run_asked_about_and_what_changed(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "step.py").write_text(UNCONDITIONAL)
    _run(tmp_path, captured=True)

    def why() -> dict[str, object]:
        p = subprocess.run([sys.executable, "-m", "sharklib", "why", "--json",
                            "out/sub/result.txt"], cwd=tmp_path, capture_output=True,
                           text=True, env=step_env(), timeout=120)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    (probe,) = why()["probes"]
    assert (probe["path"], probe["saw"], probe["changed"]) == (
        str(tmp_path / "settings.json"), "absent", None)
    (tmp_path / "settings.json").write_text("{}")
    (probe,) = why()["probes"]
    assert probe["changed"] == "settings.json now exists; the recorded run saw it absent"


def test_a_file_that_could_not_be_opened_must_be_missing_again(tmp_path: Path) -> None:
    """``try: open(...) except FileNotFoundError`` decides from existence as exists() does."""
    script = COUNT + """\
try:
    with open("settings.json") as f:
        mode = f.read().strip()
except FileNotFoundError:
    mode = "defaults"
open("result.txt", "w").write(mode + "\\n")
print(mode)
"""

    def settings(d: Path) -> None:
        (d / "settings.json").write_text("custom\n")

    printed, counts = _same_runs(tmp_path, script, ["result.txt"],
                                 [_nothing, settings, _nothing])
    assert printed == ["defaults\n", "defaults\n", "custom\n", "custom\n"]
    assert counts == [1, 0, 1, 0]


def test_an_index_entry_with_its_probes_removed_is_not_believed(tmp_path: Path) -> None:
    """The probes are signed: a hint edited to drop them is quarantined, and the step runs."""
    import sqlite3

    from sharklib.cache.compact import entry_value

    (tmp_path / ".git").mkdir()
    (tmp_path / "step.py").write_text(WRITE_ONCE)
    _run(tmp_path, captured=True)
    (index,) = Path(os.environ["SHARKLIB_HOME"]).rglob("index.sqlite")
    with sqlite3.connect(index) as db:
        (rid, stored), = db.execute("SELECT run_id, entry FROM runs").fetchall()
        entry = entry_value(stored)  # kept compact (sharklib.cache.compact)
        assert entry["probes"] == [["out.txt", "absent"]]
        del entry["probes"]
        db.execute("UPDATE runs SET entry=? WHERE run_id=?", (json.dumps(entry), rid))
    (tmp_path / "out.txt").write_text("edited by hand\n")
    executed()
    p = _run(tmp_path, captured=True)
    assert p.stdout == "out.txt exists: kept\n" and executed() == ["ran"]
    assert "quarantined" in p.stderr and "its recorded probes differ" in p.stderr, p.stderr
    assert (tmp_path / "out.txt").read_text() == "edited by hand\n"
