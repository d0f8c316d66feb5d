"""A scripted session (command lines on standard input), end to end.

25 command lines mixing inspect and mutate commands, dead ends, an ``:undo`` and a
``:checkout``, a re-entered command that is reused (its executions counted through
the connections it makes to a loopback server), a resumed session, and an
``:export`` whose pipeline, run in a clean copy holding only the primary inputs,
rebuilds the target with the same sha256.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from shellkit import Counter, run_shell, shell_env

SESSION = """\
ls
export LABEL=total
mkdir -p work
python steps/clean.py data/raw.csv > work/clean.csv
wc -l work/clean.csv
head -2 data/raw.csv
python steps/summary.py work/clean.csv > work/summary.txt
echo "label=$LABEL"
cd work
sort -r clean.csv > reversed.csv
cd ..
echo draft > notes.txt
echo oops >> work/summary.txt
:undo
cat work/summary.txt
rm notes.txt
:checkout 12
ls
rm work/clean.csv
python steps/clean.py data/raw.csv > work/clean.csv
python steps/summary.py work/clean.csv > work/summary.txt
grep -c , work/clean.csv
:history
:history --all
:diff 13
:export pipeline.md work/summary.txt
"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def commands(ws: Path) -> list[dict]:
    base = ws / ".sharklib" / "shell"
    sid = (base / "current").read_text().strip()
    return [json.loads(p.read_text()) for p in sorted((base / sid / "commands").glob("*.json"))]


@pytest.mark.timeout(600)
def test_scripted_session(traced: None, workspace: Path, counter: Counter, tmp_path: Path) -> None:
    ws = workspace
    env = shell_env(counter)
    proc = run_shell(ws, SESSION, env)
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 0, err

    recorded = commands(ws)
    assert len(recorded) == 20  # every non-meta line, numbered in order
    kinds = {c["n"]: c["kind"] for c in recorded}
    # [19] is reused with its output already in place: it changed nothing
    for n in (1, 2, 3, 5, 6, 8, 9, 11, 14, 16, 19, 20):
        assert kinds[n] == "inspect", (n, recorded[n - 1]["line"])
    for n in (4, 7, 10, 12, 13, 15, 17, 18):
        assert kinds[n] == "mutate", (n, recorded[n - 1]["line"])

    # the environment and the working directory carried from line to line
    assert "label=total" in out
    assert recorded[9]["cwd"] == "work" and (ws / "work" / "reversed.csv").exists()

    # :undo took back the append; :checkout 12 brought notes.txt back (undone by [16])
    assert "oops" not in (ws / "work" / "summary.txt").read_text()
    assert "undid [13]" in out
    assert (ws / "notes.txt").read_text() == "draft\n"

    # the re-entered cleaning step was reused: it connected once in the whole session
    assert counter.count == 1
    assert "sharklib: [18] reused run of" in err and "1 output restored" in err
    assert recorded[17]["reused"] and recorded[18]["reused"]
    assert (ws / "work" / "clean.csv").read_text().startswith("site,count\neast,1\n")

    # :history lists mutations only; --all adds the inspect ones; :diff shows the append
    hist = out.split("[1] ")[0]
    assert "sort -r clean.csv > reversed.csv" in hist and "wc -l" not in hist
    assert "(undone)" not in hist and "undone" in hist
    assert "wc -l work/clean.csv  [inspect]" in out
    assert "+oops" in out

    # signed sidecars beside what the prompt made; show reads them
    assert (ws / "work" / "summary.txt.intoto.jsonl").exists()
    show = subprocess.run([sys.executable, "-m", "sharklib", "show", "work/summary.txt"],
                          cwd=ws, env=env, capture_output=True, text=True, check=False)
    assert show.returncode == 0, show.stderr
    assert "summary.py" in show.stdout
    # after :undo, :checkout and a reuse, the file on disk and its sidecar still agree
    verify = subprocess.run([sys.executable, "-m", "sharklib", "verify", "work/summary.txt"],
                            cwd=ws, env=env, capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # the export holds exactly the two steps the summary depends on
    doc = (ws / "pipeline.md").read_text()
    assert "python steps/clean.py data/raw.csv > work/clean.csv" in doc
    assert "python steps/summary.py work/clean.csv > work/summary.txt" in doc
    for dropped in ("sort -r", "echo draft", "oops", "head -2", "rm "):
        assert dropped not in doc
    assert "file:data/raw.csv data/raw.csv sha256:" in doc
    assert "```shark-build:session" in doc

    # ... and rebuilds it in a clean copy holding only the primary inputs
    clean = tmp_path / "clean"
    for rel in ("data/raw.csv", "steps/clean.py", "steps/summary.py", "pipeline.md"):
        (clean / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ws / rel, clean / rel)
    run = subprocess.run([sys.executable, "-m", "sharklib", "pipeline", "run", "pipeline.md"],
                         cwd=clean, env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert sha(clean / "work" / "summary.txt") == sha(ws / "work" / "summary.txt")

    # a resumed session: history, graph, variables and numbering go on
    again = run_shell(ws, "echo \"label=$LABEL\"\ncp work/summary.txt final.txt\n:history\n"
                          ":graph final.txt\n", env)
    assert again.returncode == 0, again.stderr
    assert "resumed session" in again.stderr
    assert "label=total" in again.stdout
    assert "[22]" in again.stdout
    assert "sort -r clean.csv" in again.stdout  # the earlier session's history
    assert "final.txt <- [22] cp work/summary.txt final.txt" in again.stdout
    assert "data/raw.csv (primary input)" in again.stdout

    # --list names it; --new starts another
    listing = subprocess.run([sys.executable, "-m", "sharklib", "shell", "--list"], cwd=ws,
                             env=env, capture_output=True, text=True, check=False)
    assert listing.stdout.startswith("* ") and "22 commands" in listing.stdout
    fresh = run_shell(ws, ":history --all\n", env, "--new")
    assert "no mutating commands yet" in fresh.stdout
