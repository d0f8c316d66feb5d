"""Steps are labelled as the user wrote them, not by the shell or CPython bootstrap that ran them."""

from __future__ import annotations

from pathlib import Path

from viewkit import shark

DOC = """# labels

```shark-import
file:vendor/ref.csv data/ref.csv
```

```shark-run:host
python step.py data/ref.csv > out.txt
```
"""

POOL = """
import multiprocessing as mp
def work(i):
    open(f"part{i}.txt", "w").write(str(i))
    return i
if __name__ == "__main__":
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(work, range(2))
"""


def test_a_pipeline_stage_is_labelled_by_its_command(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "ref.csv").write_text("a,b\n")
    (tmp_path / "step.py").write_text("import sys\nprint(open(sys.argv[1]).read().upper())\n")
    (tmp_path / "p.md").write_text(DOC)
    r = shark("pipeline", "run", "p.md", cwd=tmp_path, env={"PATH": _venv_path()})
    assert r.returncode == 0, r.stdout + r.stderr
    shown = shark("show", "out.txt", cwd=tmp_path).stdout
    assert "python step.py data/ref.csv > out.txt ·" in shown, shown
    assert "import file:vendor/ref.csv -> data/ref.csv ·" in shown, shown
    graph = shark("graph", "out.txt", "--format", "mermaid", cwd=tmp_path).stdout
    assert "sh -c" not in graph and "python step.py data/ref.csv" in graph, graph


def test_a_spawn_worker_is_labelled_by_its_program(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "pool.py").write_text(POOL)
    r = shark("run", "pool.py", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    shown = shark("show", "part1.txt", cwd=tmp_path).stdout
    assert "pool.py worker (multiprocessing spawn) ·" in shown, shown
    assert "spawn_main" not in shown


def _venv_path() -> str:
    import os
    import sys

    return os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
