"""The fan-out/combine step: workers write partial results into a temporary directory, the
parent combines them into the final output and deletes the directory.

Such a step is one cacheable step whose inputs are what the workers read: it is reused while
those inputs are unchanged (counted through a line the script appends to a file in sharklib's
own home, a place sharklib never records as data), re-runs when a map only a worker read
changes, and its record names no deleted partial anywhere.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

COMBINE = r'''
import glob, os, sys, tempfile

def work(args):
    src, tmpdir = args
    with open(src) as f:
        total = sum(int(x) for x in f.read().split())
    part = os.path.join(tmpdir, os.path.basename(src) + ".part")
    with open(part, "w") as f:
        f.write(str(total))
    return part

if __name__ == "__main__":
    kind, method, where = sys.argv[1:4]
    with open(os.environ["COUNT_FILE"], "a") as c:
        c.write("ran\n")
    maps = sorted(glob.glob("maps/*.txt"))
    with tempfile.TemporaryDirectory(dir="." if where == "inside" else None) as d:
        jobs = [(m, d) for m in maps]
        if kind == "pool":
            import multiprocessing as mp
            with mp.get_context(method).Pool(2) as p:
                parts = p.map(work, jobs)
        elif kind == "executor":
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor
            with ProcessPoolExecutor(2, mp_context=mp.get_context(method)) as ex:
                parts = list(ex.map(work, jobs))
        else:
            import subprocess
            code = "import sys; sys.path.insert(0, '.'); from combine import work; work((sys.argv[1], sys.argv[2]))"
            for m in maps:
                subprocess.run([sys.executable, "-c", code, m, d], check=True)
            parts = [os.path.join(d, os.path.basename(m) + ".part") for m in maps]
        total = 0
        for part in parts:
            with open(part) as f:
                total += int(f.read())
    with open("final.txt", "w") as f:
        f.write(f"{total}\n")
'''

CASES = [("pool", "fork", "outside"), ("pool", "fork", "inside"),
         ("pool", "spawn", "outside"), ("pool", "spawn", "inside"),
         ("pool", "forkserver", "outside"), ("pool", "forkserver", "inside"),
         ("executor", "spawn", "inside"), ("executor", "fork", "outside"),
         ("executor", "forkserver", "outside"), ("subprocess", "-", "outside")]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    (proj / "maps").mkdir(parents=True)
    (proj / ".git").mkdir()
    for i in range(1, 5):
        (proj / "maps" / f"sp{i}.txt").write_text(f"{i} {i} {i}\n")
    (proj / "combine.py").write_text(COMBINE)
    return proj


def shark(project: Path, *args: str,
          python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")
           or k == "SHARKLIB_HOME"}
    env["COUNT_FILE"] = str(Path(os.environ["SHARKLIB_HOME"]) / "count")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([python, "-m", "sharklib", *args], cwd=project,
                          capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def executions() -> int:
    count = Path(os.environ["SHARKLIB_HOME"]) / "count"
    return len(count.read_text().splitlines()) if count.exists() else 0


def statements(sidecar: Path) -> list[dict]:
    out = []
    for line in sidecar.read_text().splitlines():
        env = json.loads(line)
        out.append(json.loads(base64.b64decode(env["payload"])))
    return out


def outside_temporaries(statement: dict) -> str:
    """The statement as text, without the lists of the run's temporaries."""
    st = copy.deepcopy(statement)
    for b in st["predicate"]["runDetails"].get("byproducts", []):
        b.get("annotations", {}).pop("temporaries", None)
    return json.dumps(st)


@pytest.mark.parametrize(("kind", "method", "where"), CASES)
def test_a_combine_step_is_one_cached_step_fed_by_what_its_workers_read(
        project: Path, kind: str, method: str, where: str) -> None:
    argv = ("run", "combine.py", kind, method, where)
    first = shark(project, *argv)
    assert "not cached" not in first.stderr and "warning" not in first.stderr, first.stderr
    assert (project / "final.txt").read_text() == "30\n"
    assert executions() == 1

    # every map a worker read is an input of the final output, and no partial appears anywhere
    # in the signed statements (decoded: the envelope holds them base64-encoded) but among
    # the run's temporaries: not as an input, an output, nor as a file the run removed
    signed = statements(project / "final.txt.intoto.jsonl")
    assert signed and all(".part" not in outside_temporaries(s) for s in signed), signed
    head = signed[0]
    deps = {d.get("uri") for d in head["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert {(project / "maps" / f"sp{i}.txt").as_uri() for i in range(1, 5)} <= deps, deps
    assert not [p for p in project.rglob("*.part*")], "the partials were deleted by the script"

    shark(project, *argv)
    assert executions() == 1, "an unchanged combine step is reused"
    assert (project / "final.txt").read_text() == "30\n"

    # a map only a worker read changes: the step runs again, as plain Python would
    (project / "maps" / "sp3.txt").write_text("10 10 10\n")
    shark(project, *argv)
    assert executions() == 2
    assert (project / "final.txt").read_text() == "51\n"

    why = shark(project, "why", "final.txt").stdout
    assert all(f"maps/sp{i}.txt" in why for i in range(1, 5)), why
    assert ".part" not in why
    verify = shark(project, "verify", "final.txt")
    assert "verified" in verify.stdout + verify.stderr
    graph = shark(project, "graph", "final.txt", "--format", "mermaid").stdout
    assert ".part" not in graph and graph.count("python combine.py") == 1, graph


def test_the_summary_counts_the_final_output_not_the_partials(project: Path) -> None:
    done = shark(project, "run", "combine.py", "pool", "fork", "inside")
    assert "recorded 1 output " in done.stderr, done.stderr


def test_a_partial_the_parent_keeps_is_still_an_output(project: Path) -> None:
    # the same workers, but the parent keeps their files: those are real outputs with sidecars
    keep = COMBINE.replace("with tempfile.TemporaryDirectory(dir=\".\" if where == \"inside\" "
                           "else None) as d:", "if True:\n        d = 'parts'; os.makedirs(d, "
                           "exist_ok=True)")
    assert keep != COMBINE
    (project / "combine.py").write_text(keep)
    shark(project, "run", "combine.py", "pool", "fork", "inside")
    assert (project / "parts" / "sp1.txt.part.intoto.jsonl").exists()
    (project / "parts" / "sp1.txt.part").unlink()
    shark(project, "run", "combine.py", "pool", "fork", "inside")
    assert executions() == 1, "reused: the kept partial is restored, not recomputed"
    assert (project / "parts" / "sp1.txt.part").read_text() == "3"



RENAME = r"""
import multiprocessing as mp, os, sys

def work(src):
    with open(src) as f:
        total = sum(int(x) for x in f.read().split())
    part = os.path.basename(src) + ".part"
    with open(part, "w") as f:
        f.write(f"{total}\n")
    return part

if __name__ == "__main__":
    with open(os.environ["COUNT_FILE"], "a") as c:
        c.write("ran\n")
    with mp.get_context(sys.argv[1]).Pool(2) as p:
        parts = p.map(work, ["maps/sp1.txt", "maps/sp2.txt"])
    os.rename(parts[0], "final.txt")
    os.remove(parts[1])
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_partial_the_parent_renames_into_place_carries_what_its_worker_read(
        project: Path, method: str) -> None:
    # the parent reads nothing: final.txt is the file a worker wrote, under a new name
    (project / "rename.py").write_text(RENAME)
    shark(project, "run", "rename.py", method)
    assert (project / "final.txt").read_text() == "3\n"
    signed = statements(project / "final.txt.intoto.jsonl")
    deps = {d.get("uri") for d in signed[0]["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert (project / "maps" / "sp1.txt").as_uri() in deps, deps
    assert all(".part" not in outside_temporaries(st) for st in signed), signed
    # the workers signed their partials before the parent renamed and deleted them: those
    # sidecars describe files that are gone, and go with them
    assert not list(project.glob("*.part*")), list(project.iterdir())
    why = shark(project, "why", "final.txt").stdout
    assert "maps/sp1.txt" in why and ".part" not in why, why
    verify = shark(project, "verify", "final.txt")
    assert "verified" in verify.stdout + verify.stderr

    shark(project, "run", "rename.py", method)
    assert executions() == 1, "an unchanged step is reused"
    (project / "maps" / "sp1.txt").write_text("5 5 5\n")
    shark(project, "run", "rename.py", method)
    assert executions() == 2, "a map only a worker read changed: the step runs again"
    assert (project / "final.txt").read_text() == "15\n"

GDAL_COMBINE = r'''
import glob, os, sys, tempfile
import multiprocessing as mp
from osgeo import gdal
gdal.UseExceptions()

def work(args):
    src, tmpdir = args
    ds = gdal.Open(src)
    band = ds.GetRasterBand(1).ReadAsArray()
    ds = None
    part = os.path.join(tmpdir, os.path.basename(src))
    out = gdal.GetDriverByName("GTiff").Create(part, 4, 4, 1, gdal.GDT_Float32)
    out.GetRasterBand(1).WriteArray(band * 2)
    out = None
    return part

if __name__ == "__main__":
    with open(os.environ["COUNT_FILE"], "a") as c:
        c.write("ran\n")
    maps = sorted(glob.glob("maps/*.tif"))
    with tempfile.TemporaryDirectory() as d:
        with mp.get_context("spawn").Pool(2) as p:
            parts = p.map(work, [(m, d) for m in maps])
        total = None
        for part in parts:
            ds = gdal.Open(part)
            arr = ds.GetRasterBand(1).ReadAsArray()
            ds = None
            total = arr if total is None else total + arr
    out = gdal.GetDriverByName("GTiff").Create("richness.tif", 4, 4, 1, gdal.GDT_Float32)
    out.GetRasterBand(1).WriteArray(total)
    out = None
'''


@pytest.mark.parametrize("bindings", ["debian", "newest"])
def test_a_gdal_combine_step_through_real_rasters(tmp_path: Path, bindings: str) -> None:
    from tests.capture_libs.capture_libs_support import gdal_python

    python = gdal_python(bindings)
    proj = tmp_path / "proj"
    (proj / "maps").mkdir(parents=True)
    (proj / ".git").mkdir()

    def gdal(code: str, *args: str) -> str:
        """Run ``code`` with the bindings under test, outside capture."""
        return subprocess.run([python, "-c", "import sys\nfrom osgeo import gdal\n"
                               "gdal.UseExceptions()\n" + code, *args], cwd=proj, check=True,
                              capture_output=True, text=True).stdout

    def species(i: int, value: float) -> None:
        gdal("import numpy as np\n"
             "ds = gdal.GetDriverByName('GTiff').Create(sys.argv[1], 4, 4, 1, gdal.GDT_Float32)\n"
             "ds.GetRasterBand(1).WriteArray(np.full((4, 4), float(sys.argv[2]), 'float32'))\n"
             "ds = None", f"maps/sp{i}.tif", str(value))

    for i in range(3):
        species(i, float(i))
    (proj / "richness.py").write_text(GDAL_COMBINE)

    def total() -> float:
        return float(gdal("ds = gdal.Open('richness.tif')\n"
                          "print(ds.GetRasterBand(1).ReadAsArray()[0, 0])"))

    first = shark(proj, "run", "richness.py", python=python)
    assert "warning" not in first.stderr, first.stderr
    assert executions() == 1 and total() == 6.0
    shark(proj, "run", "richness.py", python=python)
    assert executions() == 1, "reused"
    why = shark(proj, "why", "richness.tif", python=python).stdout
    assert all(f"maps/sp{i}.tif" in why for i in range(3)), why
    species(1, 5.0)  # only a worker reads this map
    shark(proj, "run", "richness.py", python=python)
    assert executions() == 2 and total() == 14.0
    assert "verified" in shark(proj, "verify", "richness.tif", python=python).stdout
