"""One signed statement for several outputs of a run, each output keeping exactly its inputs.

A captured script that reads ``a``, writes ``o1``, reads ``b``, writes ``o2``,
reads ``c`` and writes ``o3`` signs one statement naming all three outputs;
each output's lineage (show, why, verify, downstream links) still holds only
the inputs read before it was finished.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from viewkit import shark

from sharklib.attest import (
    attest_run,
    load_signing_key,
    read_bundle,
    sidecar_path,
    sign_statement,
    verify_file,
    write_bundle,
)
from sharklib.attest.lineage import load_lineage
from sharklib.attest.sign_run import group_outputs
from sharklib.errors import SidecarError
from sharklib.hashing import sha256_bytes
from sharklib.model import Artifact, Output, Run, run_to_statement, statement_subjects
from sharklib.views.countersign import countersign_file
from sharklib.views.why import dependencies

STEP = """import sys
for name, out in (("a", "o1"), ("b", "o2"), ("c", "o3")):
    text = open(f"in/{name}.txt").read()
    with open(f"out/{out}.txt", "w") as fh:
        fh.write(text.upper())
"""
READER = """import sys
with open(sys.argv[-1], "w") as fh:
    for p in sys.argv[1:-1]:
        fh.write(open(p).read())
"""


def _capture(cwd: Path, *argv: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_") or k == "SHARKLIB_HOME"}
    env.pop("PYTHONPATH", None)
    p = subprocess.run([sys.executable, "-m", "sharklib", "run", "-q", "--no-cache", *argv],
                       cwd=cwd, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    for name in "abc":
        (tmp_path / "in" / f"{name}.txt").write_text(name * 3)
    (tmp_path / "step.py").write_text(STEP)
    (tmp_path / "reader.py").write_text(READER)
    _capture(tmp_path, "step.py")
    return tmp_path


def _names(paths: list[str], root: Path) -> list[str]:
    return [os.path.relpath(p, root) for p in paths]


def test_one_statement_names_every_output_with_its_own_inputs(project: Path) -> None:
    heads = [read_bundle(sidecar_path(str(project / "out" / f"o{i}.txt"))).head for i in (1, 2, 3)]
    assert len({h.digest for h in heads}) == 1, "one attestation heads all three sidecars"
    statement = heads[0].statement
    subjects = {s["name"]: s["annotations"] for s in statement["subject"]}
    assert subjects == {"out/o1.txt": {"size": 3, "inputs": [[0, 1]]},
                        "out/o2.txt": {"size": 3, "inputs": [[0, 2]]},
                        "out/o3.txt": {"size": 3}}  # read everything: no selection needed
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert [Path(d["uri"]).name for d in deps if d["annotations"]["role"] == "input"] == [
        "a.txt", "b.txt", "c.txt"]
    _, outputs = statement_subjects(statement)
    assert [_names(o.inputs or [], project) for o in outputs] == [
        ["in/a.txt"], ["in/a.txt", "in/b.txt"], ["in/a.txt", "in/b.txt", "in/c.txt"]]


@pytest.mark.parametrize("i", [1, 2, 3])
def test_each_output_shows_verifies_and_explains_only_its_inputs(project: Path, i: int) -> None:
    target = project / "out" / f"o{i}.txt"
    expected = [f"in/{n}.txt" for n in "abc"[:i]]
    lineage = load_lineage(target)
    head = lineage.head
    assert head.output.path == str(target) and [o.path for o in head.outputs] == [str(target)]
    assert _names([a.path for a in head.inputs], project) == expected
    assert [d["path"] for d in dependencies(lineage).to_dict()["inputs"]] == [
        str(project / p) for p in expected]
    assert verify_file(target).ok
    shown = shark("show", str(target), cwd=project)
    assert shown.returncode == 0, shown.stderr
    for n in "abc":
        assert (f"in/{n}.txt" in shown.stdout) == (f"in/{n}.txt" in expected)
    verified = shark("verify", str(target), cwd=project)
    assert verified.returncode == 0 and "verified" in verified.stdout, verified.stdout


def test_a_changed_later_input_does_not_fail_an_earlier_output(project: Path) -> None:
    (project / "in" / "c.txt").write_text("changed")
    assert verify_file(project / "out" / "o1.txt").ok
    assert verify_file(project / "out" / "o2.txt").ok
    report = verify_file(project / "out" / "o3.txt")
    assert not report.ok and any("c.txt: input of" in p for p in report.problems)
    (project / "out" / "o2.txt").write_text("edited")  # a sibling output, not in o1's lineage
    assert verify_file(project / "out" / "o1.txt").ok


def test_downstream_involves_only_the_outputs_it_read(project: Path) -> None:
    _capture(project, "reader.py", "out/o1.txt", "r1.txt")
    _capture(project, "reader.py", "out/o1.txt", "out/o3.txt", "r13.txt")
    one = load_lineage(project / "r1.txt")
    (up,) = [s for s in one.steps.values() if s is not one.head]
    assert _names([o.path for o in up.outputs], project) == ["out/o1.txt"]
    assert _names([a.path for a in up.inputs], project) == ["in/a.txt"]
    both = load_lineage(project / "r13.txt")
    (up,) = [s for s in both.steps.values() if s is not both.head]
    assert _names([o.path for o in up.outputs], project) == ["out/o1.txt", "out/o3.txt"]
    assert _names([a.path for a in up.inputs], project) == ["in/a.txt", "in/b.txt", "in/c.txt"]
    assert len(read_bundle(sidecar_path(str(project / "r13.txt"))).entries) == 2
    for target in ("r1.txt", "r13.txt"):
        assert verify_file(project / target).ok
    (project / "in" / "c.txt").write_text("changed")  # read before o3, not before o1
    assert verify_file(project / "r1.txt").ok
    assert not verify_file(project / "r13.txt").ok


def test_a_published_copy_under_another_name_finds_its_subject(project: Path,
                                                                tmp_path_factory) -> None:
    elsewhere = tmp_path_factory.mktemp("published")
    shutil.copy(project / "out" / "o2.txt", elsewhere / "final.txt")
    shutil.copy(sidecar_path(str(project / "out" / "o2.txt")),
                sidecar_path(str(elsewhere / "final.txt")))
    lineage = load_lineage(elsewhere / "final.txt")
    assert lineage.head.output.path == str(project / "out" / "o2.txt")
    assert _names([a.path for a in lineage.head.inputs], project) == ["in/a.txt", "in/b.txt"]
    # but it does not *verify* as final.txt: the signature vouches for o2.txt (issue 15, item 5:
    # a lab-signed draft copied to the published name passed a rule on that name)
    v = verify_file(elsewhere / "final.txt")
    assert not v.ok
    assert any("final.txt: not a subject of its attestation (it records o2.txt)" in p
               for p in v.problems), v.problems
    shutil.copy(project / "out" / "o2.txt", elsewhere / "o2.txt")  # same name elsewhere: fine
    shutil.copy(sidecar_path(str(project / "out" / "o2.txt")),
                sidecar_path(str(elsewhere / "o2.txt")))
    assert verify_file(elsewhere / "o2.txt").ok


def _run(root: Path, n: int) -> Run:
    inputs, outputs = [], []
    for i in range(n):
        src, dst = root / f"in{i}.txt", root / f"out{i}.txt"
        for p, text in ((src, f"in {i}"), (dst, f"out {i}")):
            p.write_text(text)
        inputs.append(Artifact(str(src), sha256_bytes(src.read_bytes()), src.stat().st_size))
        outputs.append(Output(str(dst), sha256_bytes(dst.read_bytes()), dst.stat().st_size,
                              inputs=[a.path for a in inputs]))
    return Run(run_id="r" * 32, argv=["python", "s.py"], cwd=str(root), started=1.0, ended=2.0,
               exit_status=0, inputs=inputs, outputs=outputs)


def test_outputs_are_grouped_at_most_max_subjects_per_statement(tmp_path: Path) -> None:
    run = _run(tmp_path, 5)
    groups = group_outputs(run, limit=2)
    assert [[Path(o.path).name for o in g] for g in groups] == [
        ["out0.txt", "out1.txt"], ["out2.txt", "out3.txt"], ["out4.txt"]]
    statement = run_to_statement(run, groups[1])
    inputs = [d for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]
              if d["annotations"]["role"] == "input"]
    assert len(inputs) == 4 and statement["subject"][0]["annotations"]["inputs"] == [[0, 3]]
    attest_run(run)
    heads = [read_bundle(sidecar_path(o.path)).head.digest for o in run.outputs]
    assert len(set(heads)) == 1  # five outputs fit in one statement by default
    for o in run.outputs:
        assert verify_file(o.path).ok


def test_statements_of_earlier_versions_are_still_read(tmp_path: Path) -> None:
    """One subject, per-output facts in the byproduct: how sidecars were written before."""
    run = _run(tmp_path, 2)
    out = run.outputs[1]
    statement = run_to_statement(run, out)
    annotations = statement["subject"][0].pop("annotations")
    assert annotations == {"size": out.size}
    byproduct = statement["predicate"]["runDetails"]["byproducts"][0]["annotations"]
    byproduct.update(outputPath=out.path, outputSize=out.size, outputStream="stdout")
    write_bundle(sidecar_path(out.path), [sign_statement(statement, load_signing_key())])
    lineage = load_lineage(out.path)
    assert (lineage.head.output.size, lineage.head.output.stream) == (out.size, "stdout")
    assert [a.path for a in lineage.head.inputs] == [a.path for a in run.inputs]
    assert verify_file(out.path).ok


def test_a_malformed_inputs_selection_is_a_one_line_error(tmp_path: Path) -> None:
    run = _run(tmp_path, 2)
    statement = run_to_statement(run, run.outputs)
    statement["subject"][0]["annotations"]["inputs"] = [[0, 9]]
    write_bundle(sidecar_path(run.outputs[0].path), [sign_statement(statement, load_signing_key())])
    with pytest.raises(SidecarError) as exc:
        load_lineage(run.outputs[0].path)
    assert exc.value.line == 1 and "not a range of the 2 inputs" in str(exc.value)
    payload = json.loads(base64.b64decode(
        json.loads(Path(sidecar_path(run.outputs[0].path)).read_text())["payload"]))
    assert payload["subject"][0]["annotations"]["inputs"] == [[0, 9]]


def test_parallel_verification_agrees_on_grouped_lineages(project: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from sharklib.attest import parallel_load

    _capture(project, "reader.py", "out/o1.txt", "out/o2.txt", "r12.txt")
    (project / "in" / "c.txt").write_text("changed")  # outside r12's lineage
    (project / "in" / "b.txt").write_text("changed")  # inside it
    results = []
    for threshold in (10**15, 1):
        monkeypatch.setattr(parallel_load, "PARALLEL_BYTES", threshold)
        v = verify_file(project / "r12.txt")
        up = [s.step for s in v.steps if s.step is not v.lineage.head]
        results.append((v.problems, [[o.path for o in s.outputs] for s in up],
                        [[a.path for a in s.inputs] for s in up]))
    assert results[0] == results[1]
    problems, outputs, inputs = results[0]
    assert len(problems) == 1 and "b.txt: input of" in problems[0]
    assert _names(outputs[0], project) == ["out/o1.txt", "out/o2.txt"]
    assert _names(inputs[0], project) == ["in/a.txt", "in/b.txt"]


def test_identical_sidecars_share_one_file_and_are_replaced_not_edited(project: Path) -> None:
    """Byte-identical sidecars of one run in one directory are hard links of one file."""
    sides = [Path(sidecar_path(str(project / "out" / f"o{i}.txt"))) for i in (1, 2, 3)]
    stats = [s.stat() for s in sides]
    assert len({st.st_ino for st in stats}) == 1 and stats[0].st_nlink == 3
    assert not list((project / "out").glob(".sharklib-*")), "no temporary file left behind"
    before = sides[0].read_bytes()
    _capture(project, "step.py")  # again, over the existing sidecars
    after = [s.stat() for s in sides]
    assert len({st.st_ino for st in after}) == 1 and after[0].st_ino != stats[0].st_ino
    assert sides[0].read_bytes() != before  # a new run, a new attestation
    other = project / "other.pem"
    other.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    countersign_file(project / "out" / "o2.txt", key_path=str(other))
    assert sides[1].stat().st_ino != sides[0].stat().st_ino  # replaced, not edited in place
    assert len(json.loads(sides[1].read_text().splitlines()[0])["signatures"]) == 2
    assert len(json.loads(sides[0].read_text().splitlines()[0])["signatures"]) == 1
    for i in (1, 2, 3):
        assert verify_file(project / "out" / f"o{i}.txt").ok
