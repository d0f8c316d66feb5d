"""Where ``-o`` writes: the path the user named, whole, and never over their files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from viewkit import Pipeline, shark

WRITERS = [["graph", "{report}", "--format", "html", "-o"],
           ["export", "{report}", "--format", "prov-json", "-o"],
           ["export", "{report}", "--format", "ro-crate", "-o"],
           ["export", "{report}", "--format", "ro-crate", "-o", "{zip}"],
           ["keys", "export", "-o"],
           ["pipeline", "from", "{report}", "-o"]]


def _args(template: list[str], pipeline: Pipeline, out: Path) -> list[str]:
    args = [a.format(report=pipeline.report, zip=f"{out}.zip") for a in template]
    return args if "{zip}" in template else [*args, str(out)]


@pytest.mark.parametrize("template", WRITERS, ids=lambda a: "-".join(a[:1] + a[2:4]))
def test_unwritable_out_is_one_line_naming_it(pipeline: Pipeline, tmp_path: Path,
                                              template: list[str]) -> None:
    """A missing directory was 'graph failed: FileNotFoundError: ...sharklib-XXXX.tmp', exit 1."""
    out = tmp_path / "no" / "such" / "dir" / "g.out"
    args = _args(template, pipeline, out)
    r = shark(*args)
    named = args[-1]
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr == (f"sharklib: error: {named}: cannot write here: "
                        f"no such directory {out.parent}\n"), r.stderr
    assert not (tmp_path / "no").exists()


def test_out_in_read_only_directory(pipeline: Pipeline, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = shark("graph", str(pipeline.report), "--format", "json", "-o", str(ro / "g.json"))
    finally:
        ro.chmod(0o755)
    assert r.returncode == 2 and r.stderr == (
        f"sharklib: error: {ro / 'g.json'}: cannot write here: permission denied\n"), r.stderr


def test_ro_crate_refuses_a_non_empty_directory(pipeline: Pipeline, tmp_path: Path) -> None:
    """``--with-data`` used to replace the user's busy/data/raw.csv with the crate's copy."""
    busy = tmp_path / "busy"
    (busy / "data").mkdir(parents=True)
    (busy / "data" / "raw.csv").write_text("my own work\n")
    r = shark("export", str(pipeline.report), "--format", "ro-crate", "--with-data", "-o", str(busy),
              cwd=pipeline.root)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and str(busy) in r.stderr and "non-empty" in r.stderr
    assert (busy / "data" / "raw.csv").read_text() == "my own work\n"
    assert sorted(p.name for p in busy.rglob("*")) == ["data", "raw.csv"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".sharklib")] == []

    # a file in the way is refused too; an empty directory or a new one is written whole
    (tmp_path / "afile").write_text("x")
    r = shark("export", str(pipeline.report), "--format", "ro-crate", "-o", str(tmp_path / "afile"))
    assert r.returncode == 2 and "is not a directory" in r.stderr
    assert (tmp_path / "afile").read_text() == "x"
    for target in (tmp_path / "empty", tmp_path / "new"):
        if target.name == "empty":
            target.mkdir()
        r = shark("export", str(pipeline.report), "--format", "ro-crate", "--with-data",
                  "-o", str(target))
        assert r.returncode == 0, r.stderr
        meta = json.loads((target / "ro-crate-metadata.json").read_text())
        assert any(e.get("@type") == "CreateAction" for e in meta["@graph"])
        assert (target / "data" / "raw.csv").read_bytes() == pipeline.raw.read_bytes()
    # exporting again over the earlier crate is refused (remove it first): nothing changes
    before = (tmp_path / "new" / "ro-crate-metadata.json").read_bytes()
    r = shark("export", str(pipeline.report), "--format", "ro-crate", "-o", str(tmp_path / "new"))
    assert r.returncode == 2 and "non-empty" in r.stderr
    assert (tmp_path / "new" / "ro-crate-metadata.json").read_bytes() == before
