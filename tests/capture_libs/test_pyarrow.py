"""pyarrow opens files in C++, never through Python's ``open``: the patches must see them.

A tester found ``pd.read_parquet("t.parquet")`` recorded with no input (the run was reused
after the file changed and printed the old sum) and ``df.to_parquet("out.parquet")`` not
recorded as an output (``rm out.parquet`` and the reuse left it missing). Each test runs
an unmodified script under ``python -m sharklib run`` and compares with plain Python.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from capture_libs_support import Captured, data_inputs, file_sha256, run_captured

from tests.capture.conftest import clean_env
from tests.runner.stepcount import count_file, executed

pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install '.[test]')")
pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow.parquet is not importable")

COUNT = 'import os\nopen(os.environ["COUNT_FILE"], "a").write("ran\\n")\n'


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    return project


def _sharklib_run(project: Path, script: str = "step.py") -> subprocess.CompletedProcess[str]:
    env = clean_env({"COUNT_FILE": str(count_file())})
    p = subprocess.run([sys.executable, "-m", "sharklib", "run", script], cwd=project,
                       capture_output=True, text=True, env=env, timeout=180)
    assert p.returncode == 0, p.stderr
    return p


def _plain(project: Path, script: str = "step.py") -> subprocess.CompletedProcess[str]:
    env = clean_env({"COUNT_FILE": str(count_file())})
    p = subprocess.run([sys.executable, script], cwd=project, capture_output=True, text=True,
                       env=env, timeout=180)
    assert p.returncode == 0, p.stderr
    return p


def _table(values: list[int]) -> Any:
    return pa.table({"x": pa.array(values, pa.int64())})


def test_read_parquet_after_the_file_changed_runs_again(tmp_path: Path) -> None:
    pytest.importorskip("pandas", reason="pandas is not installed")
    project = _project(tmp_path)
    pq.write_table(_table([1, 2, 3]), project / "t.parquet")
    (project / "step.py").write_text(
        COUNT + 'import pandas as pd\nprint(pd.read_parquet("t.parquet")["x"].sum())\n')
    assert _sharklib_run(project).stdout == "6\n"
    assert _sharklib_run(project).stdout == "6\n"
    assert executed() == ["ran"], "an unchanged parquet input: the second run is a reuse"
    pq.write_table(_table([10, 20, 30]), project / "t.parquet")
    assert _plain(project).stdout == "60\n"
    executed()
    assert _sharklib_run(project).stdout == "60\n"
    assert executed() == ["ran"], "t.parquet changed: the step must run again"


def test_a_deleted_parquet_output_is_restored(tmp_path: Path) -> None:
    pytest.importorskip("pandas", reason="pandas is not installed")
    project = _project(tmp_path)
    (project / "step.py").write_text(
        COUNT + 'import pandas as pd\n'
        'pd.DataFrame({"x": [1, 2, 3]}).to_parquet("out.parquet")\nprint("written")\n')
    assert _sharklib_run(project).stdout == "written\n"
    out = project / "out.parquet"
    first = out.read_bytes()
    out.unlink()
    assert _sharklib_run(project).stdout == "written\n"
    assert executed() == ["ran"], "nothing changed: the second run is a reuse"
    assert out.exists(), "the reuse must restore out.parquet, as plain Python recreates it"
    assert out.read_bytes() == first
    assert pq.read_table(out)["x"].to_pylist() == [1, 2, 3]


def test_parquet_in_parquet_out_is_reused_when_nothing_changed(tmp_path: Path) -> None:
    project = _project(tmp_path)
    pq.write_table(_table([1, 2, 3]), project / "in.parquet")
    (project / "step.py").write_text(COUNT + """\
import pyarrow.parquet as pq
import pyarrow.compute as pc
t = pq.read_table("in.parquet")
pq.write_table(t.set_column(0, "x", pc.multiply(t["x"], 2)), "out.parquet")
""")
    for _ in range(3):
        _sharklib_run(project)
    assert executed() == ["ran"]
    assert pq.read_table(project / "out.parquet")["x"].to_pylist() == [2, 4, 6]
    (project / "out.parquet").unlink()
    _sharklib_run(project)
    assert executed() == []
    assert pq.read_table(project / "out.parquet")["x"].to_pylist() == [2, 4, 6]
    pq.write_table(_table([5]), project / "in.parquet")
    _sharklib_run(project)
    assert executed() == ["ran"]
    assert pq.read_table(project / "out.parquet")["x"].to_pylist() == [10]


# -- what each API records -------------------------------------------------------------------


def _check(c: Captured, inputs: list[Path], outputs: list[Path],
           listings: tuple[Path, ...] = ()) -> None:
    assert c.proc.returncode == 0, c.proc.stderr
    noise = [line for line in c.proc.stderr.splitlines()
             if not line.startswith("sharklib: created signing key")]
    assert noise == [], c.proc.stderr
    assert data_inputs(c) == {str(p) for p in inputs} | {f"{d}/" for d in listings}
    for p in inputs:
        assert c.inputs()[str(p)] == file_sha256(p)
    assert set(c.outputs()) == {str(p) for p in outputs}, c.run.outputs
    for p in outputs:
        assert c.outputs()[str(p)] == file_sha256(p), f"{p} not hashed after its last write"


def test_parquet_paths_as_pathlib_and_file_uri(tmp_path: Path) -> None:
    pq.write_table(_table([1, 2]), tmp_path / "a.parquet")
    pq.write_table(_table([3]), tmp_path / "b.parquet")
    c = run_captured(tmp_path, f"""
        from pathlib import Path
        import pyarrow.parquet as pq
        from pyarrow import fs
        a = pq.read_table(Path("a.parquet"))
        b = pq.ParquetFile("file://{tmp_path}/b.parquet").read()
        with pq.ParquetWriter(Path("w.parquet"), a.schema) as w:
            w.write_table(a)
            w.write_table(b)
        pq.write_table(b, "u.parquet", filesystem=fs.LocalFileSystem())
        """)
    _check(c, [tmp_path / "a.parquet", tmp_path / "b.parquet"],
           [tmp_path / "w.parquet", tmp_path / "u.parquet"])


def test_feather_csv_json_and_ipc(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("x\n1\n2\n")
    (tmp_path / "in.jsonl").write_text('{"x": 3}\n')
    c = run_captured(tmp_path, """
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.feather as feather
        import pyarrow.ipc as ipc
        import pyarrow.json as pjson
        from pathlib import Path
        t = pcsv.read_csv("in.csv")
        t = pa.concat_tables([t, pjson.read_json(Path("in.jsonl"))])
        feather.write_feather(t, "t.feather")
        back = feather.read_table("t.feather")
        pcsv.write_csv(back, "out.csv")
        with pcsv.CSVWriter("out2.csv", back.schema) as w:
            w.write_table(back)
        assert isinstance(w, pcsv.CSVWriter)
        with ipc.new_file("t.arrow", back.schema) as w:
            w.write_table(back)
        with ipc.new_stream(Path("t.arrows"), back.schema) as w:
            w.write_table(back)
        assert ipc.open_file(Path("t.arrow")).read_all().equals(back)
        assert ipc.open_stream("t.arrows").read_all().equals(back)
        with pa.OSFile("raw.bin", "wb") as f:
            f.write(b"raw")
        assert isinstance(f, pa.OSFile) and isinstance(pa.input_stream("raw.bin", compression=None), pa.OSFile)
        with pa.output_stream("s.bin") as f:
            f.write(b"stream")
        with pa.memory_map("t.arrow") as m:
            ipc.open_file(m).read_all()
        """)
    made = ["t.feather", "out.csv", "out2.csv", "t.arrow", "t.arrows", "raw.bin", "s.bin"]
    _check(c, [tmp_path / "in.csv", tmp_path / "in.jsonl"], [tmp_path / n for n in made])
    # files the run wrote and then read back are outputs, not inputs
    assert (tmp_path / "out.csv").read_text().splitlines() == ['"x"', "1", "2", "3"]


def test_dataset_directory_read_and_written(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow.dataset", reason="pyarrow.dataset is not importable")
    src = tmp_path / "src"
    (src / "k=1").mkdir(parents=True)
    (src / "k=2").mkdir()
    pq.write_table(_table([1, 2]), src / "k=1" / "part-0.parquet")
    pq.write_table(_table([3]), src / "k=2" / "part-0.parquet")
    c = run_captured(tmp_path, """
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq
        t = ds.dataset("src", format="parquet", partitioning="hive").to_table()
        seen = []
        ds.write_dataset(t, "dst", format="parquet", partitioning=["k"],
                         partitioning_flavor="hive", file_visitor=lambda f: seen.append(f.path))
        assert len(seen) == 2, seen
        assert pq.ParquetDataset("src").read().num_rows == 3
        assert ds.dataset(t).to_table().num_rows == 3  # in memory: nothing to record, no warning
        union = ds.dataset([ds.dataset("src/k=1/part-0.parquet"), ds.dataset("src/k=2")])
        assert union.to_table().num_rows == 3
        """)
    inputs = [src / "k=1" / "part-0.parquet", src / "k=2" / "part-0.parquet"]
    outputs = sorted((tmp_path / "dst").rglob("*.parquet"))
    assert len(outputs) == 2
    _check(c, inputs, outputs, listings=(src, src / "k=1", src / "k=2"))


def test_a_file_added_to_a_dataset_directory_runs_the_step_again(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow.dataset", reason="pyarrow.dataset is not importable")
    project = _project(tmp_path)
    (project / "parts").mkdir()
    pq.write_table(_table([1]), project / "parts" / "a.parquet")
    (project / "step.py").write_text(
        COUNT + 'import pyarrow.dataset as ds\nprint(ds.dataset("parts").to_table().num_rows)\n')
    assert _sharklib_run(project).stdout == "1\n"
    assert _sharklib_run(project).stdout == "1\n"
    assert executed() == ["ran"]
    pq.write_table(_table([2]), project / "parts" / "b.parquet")
    assert _sharklib_run(project).stdout == "2\n"
    assert executed() == ["ran"]


def test_a_written_dataset_directory_gets_no_sidecars_and_reads_back(tmp_path: Path) -> None:
    """Readers take a dataset folder wholesale: a ``.intoto.jsonl`` in it was read as a part
    file ("Parquet magic bytes not found"), in the next step and in plain Python alike."""
    project = _project(tmp_path)
    (project / "write.py").write_text(COUNT + """\
import pyarrow as pa
import pyarrow.parquet as pq
t = pa.table({"k": [1, 1, 2], "x": [1, 2, 3]})
pq.write_to_dataset(t, "parts", partition_cols=["k"], basename_template="p-{i}.parquet")
print("written")
""")
    (project / "read.py").write_text(
        'import pyarrow.dataset as ds\n'
        'print(ds.dataset("parts", partitioning="hive").to_table()["x"].to_pylist())\n')
    assert _sharklib_run(project, "write.py").stdout == "written\n"
    parts = sorted(p.relative_to(project).as_posix() for p in (project / "parts").rglob("*")
                   if p.is_file())
    assert parts == ["parts/k=1/p-0.parquet", "parts/k=2/p-0.parquet"]
    assert _sharklib_run(project, "read.py").stdout == "[1, 2, 3]\n"
    assert _plain(project, "read.py").stdout == "[1, 2, 3]\n"
    (project / "parts" / "k=2" / "p-0.parquet").unlink()
    assert _sharklib_run(project, "write.py").stdout == "written\n"
    assert executed() == ["ran"], "nothing the step read changed: a reuse restores the part"
    assert (project / "parts" / "k=2" / "p-0.parquet").exists()
