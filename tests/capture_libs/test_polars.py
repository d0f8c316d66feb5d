"""polars reads and writes files in Rust, never through Python's ``open``.

Unpatched, ``pl.read_parquet("t.parquet")`` was recorded with no input (a reuse after the
file changed printed the old result) and ``write_parquet`` outputs were not outputs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from capture_libs_support import data_inputs, file_sha256, run_captured

from tests.capture.conftest import clean_env
from tests.runner.stepcount import count_file, executed

pl = pytest.importorskip("polars", reason="polars is not installed (pip install '.[test]')")

COUNT = 'import os\nopen(os.environ["COUNT_FILE"], "a").write("ran\\n")\n'


def _run(project: Path) -> str:
    env = clean_env({"COUNT_FILE": str(count_file())})
    p = subprocess.run([sys.executable, "-m", "sharklib", "run", "step.py"], cwd=project,
                       capture_output=True, text=True, env=env, timeout=180)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_polars_parquet_read_after_rewrite_and_deleted_output(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    pl.DataFrame({"x": [1, 2, 3]}).write_parquet(project / "t.parquet")
    (project / "step.py").write_text(COUNT + """\
import polars as pl
df = pl.read_parquet("t.parquet")
df.with_columns(pl.col("x") * 2).write_parquet("out.parquet")
print(df["x"].sum())
""")
    assert _run(project) == "6\n"
    (project / "out.parquet").unlink()
    assert _run(project) == "6\n"
    assert executed() == ["ran"]
    assert pl.read_parquet(project / "out.parquet")["x"].to_list() == [2, 4, 6]
    pl.DataFrame({"x": [10, 20, 30]}).write_parquet(project / "t.parquet")
    assert _run(project) == "60\n"
    assert executed() == ["ran"]
    assert pl.read_parquet(project / "out.parquet")["x"].to_list() == [20, 40, 60]


def test_polars_csv_scan_glob_and_directory(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("x\n1\n2\n")
    (tmp_path / "parts").mkdir()
    for i in range(2):
        pl.DataFrame({"x": [i]}).write_parquet(tmp_path / "parts" / f"p{i}.parquet")
    c = run_captured(tmp_path, """
        import polars as pl
        from pathlib import Path
        a = pl.read_csv(Path("in.csv"))
        b = pl.scan_parquet("parts/*.parquet").collect()
        c = pl.read_parquet("parts")
        pl.concat([a, b, c]).write_csv("out.csv")
        pl.scan_csv("in.csv").sink_parquet("sunk.parquet")
        """)
    assert c.proc.returncode == 0, c.proc.stderr
    parts = [tmp_path / "parts" / f"p{i}.parquet" for i in range(2)]
    assert data_inputs(c) == {str(tmp_path / "in.csv"), *map(str, parts),
                              f"{tmp_path / 'parts'}/"}
    for p in parts:
        assert c.inputs()[str(p)] == file_sha256(p)
    assert set(c.outputs()) == {str(tmp_path / "out.csv"), str(tmp_path / "sunk.parquet")}
    assert c.outputs()[str(tmp_path / "out.csv")] == file_sha256(tmp_path / "out.csv")
