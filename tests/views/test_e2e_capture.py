"""End to end on a pipeline really captured by ``python -m sharklib run`` (three unmodified scripts)."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from viewkit import shark

from sharklib.hashing import sha256_file

CLEAN = """import os, sys
rows = [l.strip().split(",") for l in open(sys.argv[1]) if l.strip()]
tmp = sys.argv[2] + ".tmp"
with open(tmp, "w") as fh:
    for r in rows[1:]:
        if r[1] != "NA":
            fh.write(f"{r[0]},{float(r[1]):.3f}\\n")
os.replace(tmp, sys.argv[2])
"""
STATS = """import json, sys
vals = [float(l.split(",")[1]) for l in open(sys.argv[1])]
json.dump({"n": len(vals), "mean": sum(vals) / len(vals)}, open(sys.argv[2], "w"))
"""
REPORT = """import json, sys
stats = json.load(open(sys.argv[2]))
with open(sys.argv[3], "w") as fh:
    fh.write(f"rows={sum(1 for _ in open(sys.argv[1]))} mean={stats['mean']}\\n")
"""
STEPS = [("clean.py", ["data/raw.csv", "data/clean.csv"]),
         ("stats.py", ["data/clean.csv", "results/stats.json"]),
         ("report.py", ["data/clean.csv", "results/stats.json", "results/report.txt"])]


@pytest.fixture
def captured(tmp_path: Path) -> Path:
    if importlib.util.find_spec("sharklib.capture") is None:
        pytest.skip("sharklib.capture (python -m sharklib run) is not available")
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    (root / "results").mkdir()
    (root / "data" / "raw.csv").write_text("id,value\n1,2.5\n2,NA\n3,4.25\n")
    for name, body in (("clean.py", CLEAN), ("stats.py", STATS), ("report.py", REPORT)):
        (root / name).write_text(body)
    for script, args in STEPS:
        r = subprocess.run([sys.executable, "-m", "sharklib", "run", script, *args], cwd=root,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    assert (root / "results" / "report.txt.intoto.jsonl").exists()
    return root


def test_views_on_a_captured_pipeline(captured: Path, tmp_path: Path) -> None:
    report = captured / "results" / "report.txt"
    show = shark("show", str(report))
    assert show.returncode == 0, show.stderr
    assert "clean.py" in show.stdout and "data/raw.csv" in show.stdout
    assert shark("verify", str(report)).returncode == 0
    deps = json.loads(shark("why", str(report), "--json").stdout)
    assert deps["steps"] == 3
    assert {Path(i["path"]).name for i in deps["inputs"]} == {"clean.csv", "stats.json", "raw.csv"}
    graph = json.loads(shark("graph", str(report), "--format", "json").stdout)
    assert sorted(n["kind"] for n in graph["nodes"]).count("step") == 3
    # editing an intermediate file is caught by verify and shown as stale
    original = (captured / "data" / "clean.csv").read_bytes()
    (captured / "data" / "clean.csv").write_text("9,9\n")
    assert shark("verify", str(report)).returncode == 1
    assert "STALE" in shark("show", str(report)).stdout
    (captured / "data" / "clean.csv").write_bytes(original)

    from sharklib.views.pipeline_md import pipeline_from

    text = pipeline_from(str(report), root=str(captured))
    from markdown_it import MarkdownIt

    fences = [t for t in MarkdownIt().parse(text.split("---\n", 2)[2]) if t.type == "fence"]
    clean = tmp_path / "clean"
    clean.mkdir()
    for name in ("clean.py", "stats.py", "report.py"):
        shutil.copy(captured / name, clean / name)
    for line in next(f for f in fences if f.info == "shark-import").content.splitlines():
        source, dest, _pin = shlex.split(line)
        (clean / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(captured / source[len("file:"):], clean / dest)
    (clean / "results").mkdir(exist_ok=True)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    runs = [f for f in fences if f.info == "shark-run:host"]
    assert len(runs) == 3
    for block in runs:
        subprocess.run(["bash", "-euc", block.content], cwd=clean, env=env, check=True)
    for rel in ("data/clean.csv", "results/stats.json", "results/report.txt"):
        assert sha256_file(clean / rel)[0] == sha256_file(captured / rel)[0], rel


def test_why_says_python_c_code_is_in_the_command_line(tmp_path: Path) -> None:
    r = shark("run", "-q", "-c", "open('made.txt', 'w').write('1')", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    deps = json.loads(shark("why", "made.txt", "--json", cwd=tmp_path).stdout)
    assert [(c["role"], c["state"]) for c in deps["code"]] == [("script", "inline")]
    text = shark("why", "made.txt", cwd=tmp_path).stdout
    assert "the code is in the command line" in text and "missing" not in text


def test_a_directory_listing_is_shown_and_named_with_its_slash(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    for n in ("a", "b"):
        (tmp_path / "parts" / f"{n}.txt").write_text(n)
    code = "import os; open('all.txt', 'w').write(' '.join(sorted(os.listdir('parts'))))"
    r = shark("run", "-q", "-c", code, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    shown = shark("show", "all.txt", cwd=tmp_path).stdout
    assert "parts/ sha256:" in shown, shown
    why = shark("why", "all.txt", cwd=tmp_path).stdout
    assert "parts/ sha256:" in why, why
    mermaid = shark("graph", "all.txt", "--format", "mermaid", cwd=tmp_path).stdout
    assert '"parts/"' in mermaid, mermaid
    sidecar = (tmp_path / "all.txt.intoto.jsonl").read_text().splitlines()[0]
    statement = json.loads(base64.b64decode(json.loads(sidecar)["payload"]))
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    listing = [d for d in deps if d["uri"].endswith("/parts/")]
    assert [d["name"] for d in listing] == ["parts/"], deps


def test_a_directory_listing_exports_in_every_format(tmp_path: Path) -> None:
    # GDAL lists a raster's directory for side-car files; any script may os.listdir: the input
    # `dir/` is no file, and --with-data must not try to copy it into a crate
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "a.txt").write_text("a")
    code = "import os; open('all.txt', 'w').write(' '.join(sorted(os.listdir('parts'))))"
    assert shark("run", "-q", "-c", code, cwd=tmp_path).returncode == 0
    assert shark("export", "all.txt", "--format", "intoto", cwd=tmp_path).returncode == 0
    for fmt in ("prov-json", "openlineage"):
        r = shark("export", "all.txt", "--format", fmt, cwd=tmp_path)
        assert r.returncode == 0 and "parts/" in r.stdout, (fmt, r.stderr)
    r = shark("export", "all.txt", "--format", "ro-crate", "-o", "crate", "--with-data",
              cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    from rocrate.rocrate import ROCrate

    # a listing is not payload (its data is its names): identified by its absolute URI
    listing = ROCrate(str(tmp_path / "crate")).dereference((tmp_path / "parts").as_uri() + "/")
    assert listing is not None and listing.type == "Dataset" and listing["name"] == "parts/"
    assert (tmp_path / "crate" / "all.txt").read_text() == "a.txt"
