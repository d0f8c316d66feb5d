"""Every capture rule, checked through the Run JSON each process writes into the session."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def _paths(items: list[dict]) -> list[str]:
    return [i["path"] for i in items]


def test_path_forms_resolve_to_one_canonical_path(tmp_path: Path, run_captured) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in.txt").write_text("input")
    (tmp_path / "s.py").write_text(
        "import os, pathlib\n"
        "open('data/in.txt').read()\n"                                 # relative str
        "pathlib.Path('data/in.txt').read_text()\n"                    # pathlib
        "open(os.fsencode(os.path.abspath('data/in.txt')), 'rb').read()\n"  # bytes, absolute
        "open('./data/../data/in.txt').read()\n"                       # needs normalising
        "d = os.open('data', os.O_RDONLY)\n"
        "fd = os.open('out_dirfd.txt', os.O_WRONLY | os.O_CREAT, dir_fd=d)\n"
        "os.write(fd, b'x'); os.close(fd)\n"
        "with open('fromfd.txt', 'w', opener=lambda p, f: os.open(p, f, dir_fd=d)) as fh:\n"
        "    fh.write('y')\n"
        "pathlib.Path('p.txt').write_bytes(b'p')\n"
        "os.chdir('data')\n"
        "open('after_chdir.txt', 'w').write('z')\n")
    r = run_captured(["s.py"])
    assert r.returncode == 0, r.stderr
    top = r.top()
    data = str(tmp_path / "data")
    assert _paths(top["inputs"]) == [f"{data}/in.txt"]
    assert sorted(_paths(top["outputs"])) == sorted([
        f"{data}/out_dirfd.txt", f"{data}/fromfd.txt", str(tmp_path / "p.txt"),
        f"{data}/after_chdir.txt"])


def test_rename_carries_pending_output_and_temporaries(tmp_path: Path, run_captured) -> None:
    (tmp_path / "in.txt").write_text("a,b\n")
    (tmp_path / "s.py").write_text(
        "import os, tempfile\n"
        "rows = open('in.txt').read()\n"
        "fd, tmp = tempfile.mkstemp(dir='.', suffix='.part')\n"
        "with os.fdopen(fd, 'w') as fh:\n    fh.write(rows.upper())\n"
        "os.replace(tmp, 'final.csv')\n"
        "with tempfile.NamedTemporaryFile('w', dir='.', delete=False) as t:\n    t.write('x')\n"
        "os.rename(t.name, 'named.txt')\n"
        "open('scratch.tmp', 'w').write('gone')\n"
        "os.remove('scratch.tmp')\n"
        "with tempfile.TemporaryDirectory(dir='.') as td:\n"
        "    open(os.path.join(td, 'inner'), 'w').write('i')\n")
    r = run_captured(["s.py"])
    assert r.returncode == 0, r.stderr
    top = r.top()
    outs = {Path(o["path"]).name: o for o in top["outputs"]}
    assert sorted(outs) == ["final.csv", "named.txt"]
    assert outs["final.csv"]["inputs"] == [str(tmp_path / "in.txt")]
    import hashlib

    assert outs["final.csv"]["sha256"] == hashlib.sha256(b"A,B\n").hexdigest()
    temps = [Path(p).name for p in top["temporaries"]]
    assert "scratch.tmp" in temps and "inner" in temps
    assert not any(p.endswith(".part") for p in _paths(top["outputs"]))


def test_ignored_paths_are_never_inputs(tmp_path: Path, run_captured) -> None:
    (tmp_path / "helper.py").write_text("VALUE = 1\n")
    (tmp_path / "d.txt").write_text("d")
    (tmp_path / "d.txt.intoto.jsonl").write_text("{}\n")
    (tmp_path / "s.py").write_text(
        "import json, csv, email.parser, helper, os\n"
        "open('/proc/self/status').read()\n"
        "open('/dev/null', 'w').write('x')\n"
        "open('d.txt.intoto.jsonl').read()\n"
        "open(json.__file__).read()\n"
        "open(os.path.join(os.path.dirname(json.__file__), '__pycache__', 'x.pyc'), 'a').close() if False else None\n"
        "open('d.txt').read()\n")
    r = run_captured(["s.py"])
    assert r.returncode == 0, r.stderr
    top = r.top()
    assert _paths(top["inputs"]) == [str(tmp_path / "d.txt")]
    assert top["outputs"] == []
    mods = _paths(top["code"]["modules"])
    assert mods == [str(tmp_path / "helper.py")]
    assert top["code"]["script"]["path"] == str(tmp_path / "s.py")


def test_output_inputs_are_those_read_before_it_finished(tmp_path: Path, run_captured) -> None:
    for n in "abc":
        (tmp_path / f"{n}.txt").write_text(n)
    (tmp_path / "s.py").write_text(
        "a = open('a.txt').read()\n"
        "with open('first.txt', 'w') as f:\n    f.write(a)\n"
        "b = open('b.txt').read()\n"
        "log = open('log.txt', 'w')\n"
        "log.write(b)\n"
        "c = open('c.txt').read()\n"
        "with open('second.txt', 'w') as f:\n    f.write(c)\n"
        "log.close()\n")
    r = run_captured(["s.py"])
    outs = {Path(o["path"]).name: [Path(p).name for p in o["inputs"]] for o in r.top()["outputs"]}
    assert outs["first.txt"] == ["a.txt"]
    assert outs["second.txt"] == ["a.txt", "b.txt", "c.txt"]
    assert outs["log.txt"] == ["a.txt", "b.txt", "c.txt"]


def test_input_overwritten_keeps_the_digest_that_was_read(tmp_path: Path, run_captured) -> None:
    import hashlib

    (tmp_path / "state.txt").write_text("old")
    (tmp_path / "s.py").write_text("v = open('state.txt').read()\nopen('state.txt', 'w').write(v + 'new')\n")
    r = run_captured(["s.py"])
    top = r.top()
    assert top["inputs"][0]["sha256"] == hashlib.sha256(b"old").hexdigest()
    assert top["outputs"][0]["sha256"] == hashlib.sha256(b"oldnew").hexdigest()


def test_stdout_redirected_to_a_file_is_an_output(tmp_path: Path, capture_env, read_session) -> None:
    import sys

    session = tmp_path / "session"
    (session / "runs").mkdir(parents=True)
    (tmp_path / "s.py").write_text("print('hello')\nimport sys\nprint('warn', file=sys.stderr)\n")
    with open(tmp_path / "out.log", "w") as out:
        p = subprocess.run([sys.executable, "-m", "sharklib", "run", "-q", "s.py"], cwd=tmp_path,
                           stdout=out, stderr=subprocess.PIPE, text=True,
                           env=capture_env({"SHARKLIB_SESSION": str(session)}))
    assert p.returncode == 0 and p.stderr == "warn\n"
    assert (tmp_path / "out.log").read_text() == "hello\n"
    (top,) = read_session(session)
    (out,) = top["outputs"]
    assert out["path"] == str(tmp_path / "out.log") and out["stream"] == "stdout"
    import hashlib

    assert out["sha256"] == hashlib.sha256(b"hello\n").hexdigest()
    assert (tmp_path / "out.log.intoto.jsonl").exists()


def _git_in(repo: Path):  # type: ignore[no-untyped-def]
    """``git ARGS`` in ``repo`` with a fixed identity; skips the test where git is missing."""
    import shutil

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True, env=env)


def test_code_identity_with_git(tmp_path: Path, run_captured) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    run = _git_in(repo)
    run("init", "-q", "-b", "main")
    run("remote", "add", "origin", "https://example.org/lab/repo.git")
    (repo / "lib.py").write_text("def f():\n    return 2\n")
    (repo / "s.py").write_text("import lib\nopen('o.txt', 'w').write(str(lib.f()))\n")
    run("add", "lib.py", "s.py")
    run("commit", "-q", "-m", "init")
    head = run("rev-parse", "HEAD").stdout.decode().strip()
    r = run_captured(["s.py"], cwd=repo)
    git = r.top()["code"]["git"]
    assert git == {"root": str(repo), "commit": head, "branch": "main", "dirty": False,
                   "remote": "https://example.org/lab/repo.git"}
    (repo / "lib.py").write_text("def f():\n    return 3\n")
    r2 = run_captured(["s.py"], cwd=repo)
    assert r2.top()["code"]["git"]["dirty"] is True
    mods = {Path(m["path"]).name: m["sha256"] for m in r2.top()["code"]["modules"]}
    import hashlib

    assert mods["lib.py"] == hashlib.sha256(b"def f():\n    return 3\n").hexdigest()
    # a change of a local module is a change of code, but not of the run key (the script is the same)
    assert r.top()["run_key"] == r2.top()["run_key"]


def test_a_module_of_the_environment_takes_git_state_from_the_working_directory(
        tmp_path: Path, run_captured) -> None:
    """``-m json.tool`` runs a stdlib file: the repository holding the interpreter is not the run's."""
    repo, plain = tmp_path / "repo", tmp_path / "plain"
    run = _git_in(repo)
    for d in (repo, plain):
        d.mkdir()
        (d / "in.json").write_text('{"b": 1, "a": 2}\n')
    run("init", "-q", "-b", "main")
    run("add", "in.json")
    run("commit", "-q", "-m", "data")
    head = run("rev-parse", "HEAD").stdout.decode().strip()
    r = run_captured(["--no-cache", "-m", "json.tool", "--sort-keys", "in.json", "out.json"], cwd=repo)
    assert r.returncode == 0, r.stderr
    git = r.top()["code"]["git"]
    assert (git["root"], git["commit"], git["branch"]) == (str(repo), head, "main")
    r = run_captured(["--no-cache", "-m", "json.tool", "--sort-keys", "in.json", "out.json"], cwd=plain)
    assert r.returncode == 0, r.stderr
    assert r.top()["code"]["git"] is None
    assert (plain / "out.json.intoto.jsonl").exists()


def test_distributions_of_imported_modules(tmp_path: Path, run_captured) -> None:
    pytest.importorskip("numpy")
    pytest.importorskip("yaml")
    (tmp_path / "s.py").write_text("import numpy, yaml\nopen('o.txt', 'w').write('1')\n")
    r = run_captured(["s.py"])
    dists = r.top()["environment"]["distributions"]
    from importlib.metadata import version

    assert dists["numpy"] == version("numpy")
    assert dists["pyyaml"] == version("PyYAML")
    assert "pandas" not in dists and "sharklib" not in dists


def test_children_are_listed_in_the_parent(tmp_path: Path, run_captured) -> None:
    (tmp_path / "s.py").write_text(
        "import subprocess, sys, multiprocessing as mp, os\n"
        "def w(n):\n    open(f'w{n}.txt', 'w').write(n)\n"
        "if __name__ == '__main__':\n"
        "    subprocess.run([sys.executable, '-c', \"open('sub.txt','w').write('s')\"], check=True)\n"
        "    p = mp.get_context('spawn').Process(target=w, args=('spawn',)); p.start(); p.join()\n"
        "    p = mp.get_context('fork').Process(target=w, args=('fork',)); p.start(); p.join()\n"
        "    if os.fork() == 0:\n        open('forked.txt', 'w').write('f'); os._exit(0)\n"
        "    os.wait()\n")
    r = run_captured(["s.py"])
    assert r.returncode == 0, r.stderr
    top = r.top()
    for name in ("sub.txt", "wspawn.txt", "wfork.txt", "forked.txt"):
        child = r.run_with_output(name)
        assert child["parent"] == top["run_id"]
        assert child["run_id"] in top["children"]
        assert (tmp_path / (name + ".intoto.jsonl")).exists()
    assert top["outputs"] == []


def test_bootstrap_free_when_off_and_chains(tmp_path: Path, capture_env) -> None:
    import sys

    from sharklib.common.environ import bootstrap_dir

    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import builtins\nbuiltins.CHAINED = True\n")
    pp = os.pathsep.join([bootstrap_dir(), str(other)])
    code = "import sys, builtins; print(getattr(builtins, 'CHAINED', False), any(m.startswith('sharklib') for m in sys.modules))"
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=capture_env({"PYTHONPATH": pp}))
    assert off.stdout.split() == ["True", "False"]
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        env=capture_env({"PYTHONPATH": pp, "SHARKLIB_CAPTURE": "1"}))
    assert on.stdout.split() == ["True", "True"], on.stderr


def test_connects_and_execs_are_recorded(tmp_path: Path, run_captured) -> None:
    (tmp_path / "s.py").write_text(
        "import socket, subprocess, sys\n"
        "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)\n"
        "port = srv.getsockname()[1]\n"
        "c = socket.create_connection(('127.0.0.1', port)); c.close(); srv.close()\n"
        "subprocess.run(['true'])\n"
        "print(port)\n")
    r = run_captured(["s.py"])
    assert r.returncode == 0, r.stderr
    top = r.top()
    assert top["connects"] == [f"127.0.0.1:{r.stdout.strip()}"]
    assert any(e["argv"] == ["true"] for e in top["execs"])


def test_module_form_records_the_module_as_code(tmp_path: Path, run_captured) -> None:
    (tmp_path / "in.txt").write_text("i")
    (tmp_path / "tool.py").write_text("open('out.txt', 'w').write(open('in.txt').read())\n")
    r = run_captured(["-m", "tool"])
    assert r.returncode == 0, r.stderr
    top = r.top()
    assert top["code"]["script"]["path"] == str(tmp_path / "tool.py")
    assert _paths(top["inputs"]) == [str(tmp_path / "in.txt")]
    assert _paths(top["outputs"]) == [str(tmp_path / "out.txt")]


def test_top_level_streams_are_copied_into_the_session(tmp_path: Path, run_captured) -> None:
    (tmp_path / "s.py").write_text(
        "import sys\nfor i in range(3000):\n    print('row', i)\n"
        "sys.stdout.buffer.write(b'raw bytes\\n')\nprint('to err', file=sys.stderr)\n"
        "print(sys.stdout.isatty(), sys.stdout.fileno(), sys.stdout.encoding == sys.__stdout__.encoding)\n")
    r = run_captured(["s.py"])
    session = tmp_path / "session1"
    assert (session / "stdout").read_text() == r.stdout
    assert (session / "stderr").read_text() == r.stderr == "to err\n"
    assert r.stdout.splitlines()[-1] == "False 1 True"
    assert not (session / "stdout.truncated").exists()


@pytest.mark.parametrize("keep", [False, True])
def test_own_session_is_removed_unless_kept(keep: bool, tmp_path: Path, capture_env) -> None:
    import sys

    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    (tmp_path / "s.py").write_text(
        "import subprocess, sys\nsubprocess.run([sys.executable, '-c', \"open('c.txt','w').write('c')\"])\n"
        "open('p.txt', 'w').write('p')\n")
    extra = {"TMPDIR": str(tmpdir), **({"SHARKLIB_KEEP_SESSION": "1"} if keep else {})}
    p = subprocess.run([sys.executable, "-m", "sharklib", "run", "s.py"], cwd=tmp_path,
                       capture_output=True, text=True, env=capture_env(extra))
    assert p.returncode == 0, p.stderr
    assert p.stderr.startswith("sharklib: recorded 2 outputs (0 inputs) in "), p.stderr
    sessions = list(tmpdir.glob("sharklib-session-*"))
    if keep:
        (session,) = sessions
        assert len(list((session / "runs").glob("*.json"))) == 2
    else:
        assert sessions == []
