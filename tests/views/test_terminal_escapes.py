"""File names and argv are hostile text: no ESC or newline from them reaches the terminal.

show, why and verify already escaped recorded names; the ``run`` summary line, ``cache
ls``, ``graph --format dot``, "no sidecar" errors, ``trace`` messages and the pipeline
summary printed them raw, so a file named ``\\x1b]0;…\\x07\\x1b[2J`` could clear the
screen or retitle the terminal of whoever ran or inspected the step. Each is driven
here through the real CLI with a name an attacker would choose.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from viewkit import shark

ESC_NAME = "evil\x1b]0;pwned\x07\x1b[2J"


def _no_raw_control(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text, repr(text)


def test_run_summary_line_escapes_output_names(tmp_path: Path) -> None:
    script = tmp_path / "make.py"
    script.write_text(f"open({ESC_NAME + '.txt'!r}, 'w').write('x')\n")
    r = shark("run", str(script), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / f"{ESC_NAME}.txt").exists()
    _no_raw_control(r.stderr)
    assert "evil\\x1b]0;pwned\\x07\\x1b[2J.txt" in r.stderr, r.stderr


def test_cache_ls_escapes_the_recorded_command(tmp_path: Path) -> None:
    script = tmp_path / "echo.py"
    script.write_text("import sys\nopen('out.txt', 'w').write(sys.argv[1])\n")
    r = shark("run", str(script), f"[b]{ESC_NAME}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = shark("cache", "ls", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    _no_raw_control(r.stdout)
    assert "[b]evil\\x1b" in r.stdout.replace("\n", ""), r.stdout


def test_graph_dot_escapes_and_quotes_names(tmp_path: Path) -> None:
    script = tmp_path / "make.py"
    name = ESC_NAME + '"quoted"\nline.txt'
    script.write_text(f"open({name!r}, 'w').write('x')\n")
    assert shark("run", str(script), cwd=tmp_path).returncode == 0
    r = shark("graph", "--format", "dot", str(tmp_path / name))
    assert r.returncode == 0, r.stderr
    _no_raw_control(r.stdout)
    label = next(line for line in r.stdout.splitlines() if "evil" in line)
    assert '\\"quoted\\"' in label and "\\\\x1b" in label, label
    # every line of the graph is a whole DOT statement: the newline in the name did not split it
    body = [x.strip() for x in r.stdout.strip().splitlines()[1:-1]]
    assert all(x.endswith(";") for x in body), r.stdout


def test_no_sidecar_error_is_one_escaped_line(tmp_path: Path) -> None:
    plain = tmp_path / f"{ESC_NAME}\nsecond.txt"
    plain.write_text("no lineage\n")
    for cmd in ("show", "why", "verify"):
        r = shark(cmd, str(plain))
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        _no_raw_control(r.stderr)
        assert r.stderr.count("\n") == 1, (cmd, r.stderr)
        assert "no sidecar" in r.stderr


def test_trace_messages_escape_the_command_name(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "sharklib", "trace", "--", f"./{ESC_NAME}"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode in (126, 127, 2), r.stderr
    _no_raw_control(r.stderr)


def test_pipeline_failure_summary_escapes_the_command(tmp_path: Path) -> None:
    doc = tmp_path / "m.md"
    doc.write_text(f"```shark-run:host\nfalse '{ESC_NAME}' > out.txt\n```\n")
    env = {**os.environ, "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "sharklib", "pipeline", "run", "m.md"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    _no_raw_control(r.stdout + r.stderr)
    assert "evil\\x1b" in r.stdout.replace("\n", ""), r.stdout


def test_keys_export_and_countersign_escape_paths(tmp_path: Path) -> None:
    out = tmp_path / f"{ESC_NAME}.pub.pem"
    r = shark("keys", "export", "-o", str(out))
    assert r.returncode == 0 and out.exists(), r.stderr
    _no_raw_control(r.stdout + r.stderr)
    script = tmp_path / "make.py"
    script.write_text(f"open({ESC_NAME + '.txt'!r}, 'w').write('x')\n")
    assert shark("run", str(script), cwd=tmp_path).returncode == 0
    r = shark("sign", "--countersign", str(tmp_path / f"{ESC_NAME}.txt"))
    assert r.returncode == 0, r.stderr
    _no_raw_control(r.stdout + r.stderr)
    assert "evil\\x1b" in r.stdout.replace("\n", ""), r.stdout


def test_pipeline_plan_title_escapes_the_document_name(tmp_path: Path) -> None:
    """The plan table's title is the document's file name: shown escaped, and a ``[red]`` in
    it is text, not Rich markup."""
    (tmp_path / ".git").mkdir()
    for name in (f"{ESC_NAME}.md", "[red]doc.md"):
        (tmp_path / name).write_text("```shark-run:host\necho hi > out.txt\n```\n")
        r = shark("pipeline", "plan", name, cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        _no_raw_control(r.stdout + r.stderr)
    assert "plan for evil\\x1b]0;pwned\\x07\\x1b[2J.md" in shark(
        "pipeline", "plan", f"{ESC_NAME}.md", cwd=tmp_path).stdout
    assert "plan for [red]doc.md" in shark("pipeline", "plan", "[red]doc.md", cwd=tmp_path).stdout
