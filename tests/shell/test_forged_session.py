"""A session's records live in the project (``.sharklib/shell/``), where anyone who can write the
project (a shared folder, a cloned repository) can edit them. ``:undo``/``:checkout`` write and
delete the paths those records name: a path that leads outside the workspace (``..``, an
absolute path, a planted symlinked directory) or into ``.git/``/``.sharklib/`` is refused and
named in one line; nothing outside is deleted or written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from shellkit import run_shell, shell_env


@pytest.mark.timeout(300)
def test_undo_of_a_forged_record_touches_nothing_outside(traced: None, tmp_path: Path) -> None:
    ws = tmp_path / "project"
    ws.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / "precious.txt"
    precious.write_text("keep\n")
    (ws / "link").symlink_to(outside)  # planted: a directory of the workspace that leads out
    (ws / ".git").mkdir()
    env = shell_env()
    res = run_shell(ws, "echo one > a.txt\necho two > b.txt\n", env)
    assert res.returncode == 0, res.stderr
    assert (ws / "a.txt").read_text() == "one\n"

    sdir = ws / ".sharklib" / "shell" / (ws / ".sharklib" / "shell" / "current").read_text().strip()
    files = sorted((sdir / "commands").glob("*.json"))
    last = json.loads(files[-1].read_text())
    content = last["changes"][0]["after"]  # an object the user's store holds: b.txt's bytes
    forged = dict(last, n=last["n"] + 1, line="true", parent=last["n"], changes=[
        {"path": "../outside/precious.txt", "before": None, "after": content, "sidecar": None,
         "size": 4},
        {"path": str(outside / "abs.txt"), "before": content, "after": None, "sidecar": None,
         "size": 4},
        {"path": "link/planted.txt", "before": content, "after": None, "sidecar": None,
         "size": 4},
        {"path": ".git/hooks/pre-commit", "before": content, "after": None, "sidecar": None,
         "size": 4},
        {"path": "c.txt", "before": None, "after": content, "sidecar": None, "size": 4},
    ])
    (sdir / "commands" / f"{forged['n']:06d}.json").write_text(json.dumps(forged))
    meta = json.loads((sdir / "session.json").read_text())
    meta["head"] = forged["n"]
    (sdir / "session.json").write_text(json.dumps(meta))
    (ws / "c.txt").write_text("two\n")

    res = run_shell(ws, ":undo\n", env)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert precious.read_text() == "keep\n"
    assert sorted(os.listdir(outside)) == ["precious.txt"]
    assert not (ws / ".git" / "hooks").exists()
    assert not (ws / "c.txt").exists()  # the one path inside the workspace was undone
    refused = [line for line in res.stdout.splitlines() if "refused" in line]
    assert len(refused) == 1, res.stdout
    for name in ("../outside/precious.txt", "abs.txt", "link/planted.txt",
                 ".git/hooks/pre-commit"):
        assert name in refused[0]


@pytest.mark.timeout(300)
def test_a_planted_shell_state_is_not_sourced(traced: None, tmp_path: Path) -> None:
    """``vars.sh`` is sourced before every line and ``env.json`` is the lines' environment: a
    session state someone else wrote into the project (an alias, a variable) is not used; the
    user's own state from an earlier session still is."""
    ws = tmp_path / "project"
    ws.mkdir()
    env = shell_env()
    res = run_shell(ws, "export MINE=kept\nalias ll='echo own-alias'\n", env)
    assert res.returncode == 0, res.stderr
    res = run_shell(ws, "echo \"mine=$MINE\"\nll\n", env)
    assert "mine=kept" in res.stdout and "own-alias" in res.stdout, res.stdout + res.stderr

    sdir = ws / ".sharklib" / "shell" / (ws / ".sharklib" / "shell" / "current").read_text().strip()
    pwned = tmp_path / "pwned"
    with open(sdir / "bash" / "vars.sh", "a") as f:
        f.write(f"alias ls='echo pwned > {pwned}; ls'\n")
    (sdir / "bash" / "env.json").write_text(json.dumps({"set": {"PLANTED": "1", "MINE": "kept"},
                                                        "unset": [], "cwd": "."}))
    res = run_shell(ws, "ls\necho \"planted=$PLANTED\"\n", env)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert not pwned.exists()
    assert "planted=\n" in res.stdout, res.stdout
    notes = [line for line in res.stderr.splitlines() if "not written by you" in line]
    assert len(notes) == 1, res.stderr
    # the fresh state is the user's own again from then on
    res = run_shell(ws, "export AGAIN=yes\n", env)
    res = run_shell(ws, "echo \"again=$AGAIN\"\n", env)
    assert "again=yes" in res.stdout and "not written by you" not in res.stderr


MAKE_NAME = '''\
name = "evil\\n```\\n\\n```shark-run:session\\ntouch INJECTED\\n```\\n\\n```text\\n.txt"
open(name, "w").write("x")
'''
USE_NAME = '''\
import os
name = [n for n in os.listdir(".") if n.startswith("evil") and not n.endswith(".jsonl")][0]
open("result.txt", "w").write(open(name).read() * 2)
'''


@pytest.mark.timeout(300)
def test_export_refuses_a_file_name_that_would_inject_a_stage(traced: None,
                                                              tmp_path: Path) -> None:
    """A file name is anyone's (an unpacked archive, a download): one holding a newline and a
    fence must not become a stage of the exported pipeline, which the user then runs."""
    ws = tmp_path / "project"
    ws.mkdir()
    (ws / "mk.py").write_text(MAKE_NAME)
    (ws / "use.py").write_text(USE_NAME)
    res = run_shell(ws, "python mk.py\npython use.py\n:export rebuild.md result.txt\n",
                    shell_env())
    assert res.returncode == 0, res.stderr
    assert (ws / "result.txt").read_text() == "xx"
    out = res.stdout + res.stderr
    assert "Traceback" not in out
    refusals = [line for line in out.splitlines() if "cannot export" in line]
    assert len(refusals) == 1 and "control character" in refusals[0], out
    assert not (ws / "rebuild.md").exists()


@pytest.mark.timeout(300)
def test_planted_session_folders_write_nothing_outside(traced: None, tmp_path: Path) -> None:
    """A ``.sharklib`` symlink, or a session whose record names another folder as its id,
    never makes the shell write its records outside the project."""
    env = shell_env()
    outside = tmp_path / "outside"
    outside.mkdir()
    ws = tmp_path / "linked"
    ws.mkdir()
    (ws / ".sharklib").symlink_to(outside)
    res = run_shell(ws, "echo hi > a.txt\n", env)
    assert res.returncode != 0
    assert "Traceback" not in res.stdout + res.stderr
    errors = [line for line in res.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "symlink" in errors[0], res.stderr
    assert list(outside.iterdir()) == []

    ws = tmp_path / "forged"
    sdir = ws / ".sharklib" / "shell" / "s1"
    (sdir / "commands").mkdir(parents=True)
    (ws / ".sharklib" / "shell" / "current").write_text("s1\n")
    escape = os.path.relpath(outside, sdir.parent)
    (sdir / "session.json").write_text(json.dumps({"id": escape, "created": 1.0, "head": 0}))
    (outside / "commands").mkdir()
    (outside / "bash").mkdir()
    res = run_shell(ws, "echo hi > a.txt\n", env)
    assert res.returncode == 0, res.stderr
    assert (ws / "a.txt").read_text() == "hi\n"
    assert sorted(p.name for p in outside.rglob("*")) == ["bash", "commands"]
