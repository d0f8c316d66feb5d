"""The bundled example pipeline: plain and captured give the same files; lineage folds into sidecars."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python-pipeline"
STEPS = [["simulate.py", "data"], ["aggregate.py", "data"], ["report.py", "data", "report.md"]]


def _copy(dst: Path) -> Path:
    shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns("data", "report.md*", "__pycache__"))
    return dst


def test_pipeline_plain_equals_captured_and_lineage_folds(tmp_path: Path, run_plain, run_captured) -> None:
    plain, cap = _copy(tmp_path / "plain"), _copy(tmp_path / "cap")
    for step in STEPS:
        p = run_plain(step, cwd=plain)
        c = run_captured(step, cwd=cap)
        assert (c.returncode, c.stdout, c.stderr) == (p.returncode, p.stdout, p.stderr) == (0, p.stdout, "")
    for rel in ("data/observations.csv", "data/sites.json", "data/abundance.csv", "report.md"):
        assert (plain / rel).read_bytes() == (cap / rel).read_bytes()
        assert (cap / (rel + ".intoto.jsonl")).is_file()
    assert not list((cap / "data").glob(".abundance-*")), "the temp file is not an output"

    from sharklib.attest import read_bundle, verify_file

    bundle = read_bundle(cap / "report.md.intoto.jsonl")
    subjects = [[s["name"] for s in e.statement["subject"]] for e in bundle.entries]
    # report ← abundance ← (sites, observations): simulate.py wrote both outputs from the
    # same (no) inputs, so one attestation names both; three envelopes, each once
    assert len(bundle.entries) == 3
    assert len({e.digest for e in bundle.entries}) == 3
    assert subjects[0] == ["report.md"]
    assert sorted(n.split("/")[-1] for names in subjects[1:] for n in names) == [
        "abundance.csv", "observations.csv", "sites.json"]
    sites = read_bundle(cap / "data/sites.json.intoto.jsonl")
    observations = read_bundle(cap / "data/observations.csv.intoto.jsonl")
    assert sites.head.digest == observations.head.digest
    head = bundle.head.statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    inputs = [d for d in head if d["annotations"]["role"] == "input"]
    assert [Path(d["uri"]).name for d in inputs] == ["abundance.csv"]
    abundance_sidecar = read_bundle(cap / "data/abundance.csv.intoto.jsonl")
    assert inputs[0]["annotations"]["attestation"] == abundance_sidecar.head.digest
    assert verify_file(cap / "report.md").ok

    agg = read_bundle(cap / "data/abundance.csv.intoto.jsonl").head.statement
    byproduct = agg["predicate"]["runDetails"]["byproducts"][0]["annotations"]
    assert byproduct["temporaries"] == []
    assert agg["predicate"]["buildDefinition"]["externalParameters"]["argv"][1:] == ["aggregate.py", "data"]


def test_sharklib_env_captures_every_python_step(tmp_path: Path, capture_env) -> None:
    cap = _copy(tmp_path / "cap")
    script = " && ".join(f"{sys.executable} {' '.join(s)}" for s in STEPS)
    exe = Path(sys.executable).parent / "sharklib"
    p = subprocess.run([str(exe), "env", "--", "sh", "-c", script], cwd=cap, capture_output=True,
                       text=True, env=capture_env())
    assert p.returncode == 0, p.stderr
    assert "sharklib: recorded" not in p.stderr
    line = (cap / "report.md.intoto.jsonl").read_text().splitlines()
    assert len(line) == 3  # report, abundance, (sites + observations)
    json.loads(line[0])
    shell = subprocess.run([str(exe), "env", "--shell"], capture_output=True, text=True, env=capture_env())
    assert "export SHARKLIB_CAPTURE=1" in shell.stdout and "export PYTHONPATH=" in shell.stdout
