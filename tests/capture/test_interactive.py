"""Notebook and REPL capture: ``sharklib.enable()`` and ``%load_ext sharklib``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def test_enable_in_a_plain_repl(tmp_path: Path, capture_env) -> None:
    (tmp_path / "in.txt").write_text("input")
    lines = [
        "import sharklib",
        "sharklib.enable()",
        "data = open('in.txt').read()",
        "f = open('a.txt', 'w'); f.write(data.upper()); f.close()",
        "import os; print('after-close', os.path.exists('a.txt.intoto.jsonl'))",
        "g = open('b.txt', 'w'); g.write('b')",
        "print('still-open', os.path.exists('b.txt.intoto.jsonl'))",
        "sharklib.disable()",
        "print('after-disable', os.path.exists('a.txt.intoto.jsonl'), os.path.exists('b.txt.intoto.jsonl'))",
        "open('c.txt', 'w').write('not recorded')",
    ]
    p = subprocess.run([sys.executable, "-i", "-q"], input="\n".join(lines) + "\n", cwd=tmp_path,
                       capture_output=True, text=True, env=capture_env())
    # signed after the statement that closed it, as the prompt came back; not while open
    assert "after-close True" in p.stdout, p.stdout + p.stderr
    assert "still-open False" in p.stdout, p.stdout + p.stderr
    assert "after-disable True True" in p.stdout, p.stdout + p.stderr
    assert not (tmp_path / "c.txt.intoto.jsonl").exists()
    from sharklib.attest import read_bundle

    st = read_bundle(tmp_path / "a.txt.intoto.jsonl").head.statement
    deps = st["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert [Path(d["uri"]).name for d in deps if d["annotations"]["role"] == "input"] == ["in.txt"]
    assert "Traceback" not in p.stderr
    # b.txt was still open at disable(): flushed first, so signed with what it holds
    import hashlib

    b_statement = read_bundle(tmp_path / "b.txt.intoto.jsonl").head.statement
    # a.txt's signing loaded cryptography: sharklib's import, not the session's
    env = b_statement["predicate"]["buildDefinition"]["internalParameters"]["environment"]
    assert "cryptography" not in env["distributions"], env["distributions"]
    subjects = b_statement["subject"]
    assert {s["name"]: s["digest"]["sha256"] for s in subjects}["b.txt"] == \
        hashlib.sha256(b"b").hexdigest()


def test_ipython_extension_writes_sidecars_after_each_cell(tmp_path: Path, capture_env) -> None:
    pytest.importorskip("IPython", reason="IPython is not installed (pip install ipython)")
    script = """
import os
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_cell("%load_ext sharklib")
ip.run_cell("open('in.txt', 'w').close()") if False else None
ip.run_cell("with open('cell.txt', 'w') as f:\\n    f.write('one')")
print("after-cell", os.path.exists('cell.txt.intoto.jsonl'))
ip.run_cell("h = open('still_open.txt', 'w'); h.write('x'); h.flush()")
print("open-file", os.path.exists('still_open.txt.intoto.jsonl'))
ip.run_cell("h.close()")
print("closed", os.path.exists('still_open.txt.intoto.jsonl'))
ip.run_cell("%unload_ext sharklib")
"""
    p = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                       env=capture_env())
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:3] == ["after-cell True", "open-file False", "closed True"], p.stdout + p.stderr
    assert "sharklib: warning" not in p.stderr
