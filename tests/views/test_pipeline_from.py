"""pipeline from: the Markdown's commands, run by hand in a clean directory, rebuild the same bytes."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner
from markdown_it import MarkdownIt
from viewkit import Pipeline

from sharklib.cli.pipeline_from import from_command
from sharklib.hashing import sha256_file


def test_markdown_rebuilds_the_same_digests(pipeline: Pipeline, tmp_path: Path) -> None:
    md_path = tmp_path / "rebuild.md"
    result = CliRunner().invoke(from_command, [str(pipeline.report), "-o", str(md_path)])
    assert result.exit_code == 0, result.output
    text = md_path.read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["target"] == "results/report.txt"
    assert front["target_sha256"] == "sha256:" + pipeline.runs[2].outputs[0].sha256

    body = text.split("---\n", 2)[2]  # front matter is not Markdown (as sharklib.pipeline reads it)
    tokens = MarkdownIt().parse(body)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens)
                if t.type == "heading_open" and t.tag == "h2"]
    assert headings == ["Inputs", "Step 1: `clean.py` writes `data/clean.csv`",
                        "Step 2: `stats.py` writes `results/stats.json`",
                        "Step 3: `report.py` writes `results/report.txt`"]
    fences = [t for t in tokens if t.type == "fence"]
    imports = [f for f in fences if f.info == "shark-import"]
    runs = [f for f in fences if f.info == "shark-run:host"]
    assert len(imports) == 1 and len(runs) == 3

    # a clean directory with the same code and the pinned primary inputs, nothing else
    clean = tmp_path / "clean"
    clean.mkdir()
    for script in pipeline.scripts.values():
        shutil.copy(script, clean / script.name)
    lines = imports[0].content.splitlines()
    assert len(lines) == 1
    for line in lines:
        source, dest, pin = shlex.split(line)
        assert source.startswith("file:")
        src = pipeline.root / source[len("file:"):]
        assert "sha256:" + sha256_file(src)[0] == pin, "pin must match the input"
        (clean / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, clean / dest)
    (clean / "results").mkdir(exist_ok=True)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    for block in runs:
        subprocess.run(["bash", "-euc", block.content], cwd=clean, env=env, check=True)

    for run in pipeline.runs:
        for out in run.outputs:
            rebuilt = clean / os.path.relpath(out.path, pipeline.root)
            assert sha256_file(rebuilt)[0] == out.sha256, rebuilt
    assert "Expected: `results/report.txt` sha256 `" + pipeline.runs[2].outputs[0].sha256 in text


def test_commands_use_recorded_cwd_and_relative_paths(tmp_path: Path) -> None:
    """A step recorded in a subdirectory with absolute argv runs as `cd sub && ...`."""
    from viewkit import record_step

    root = tmp_path / "proj"
    (root / "sub").mkdir(parents=True)
    data = root / "in.txt"
    data.write_text("hello\n")
    script = root / "sub" / "copy.py"
    script.write_text("import sys\nopen(sys.argv[2], 'w').write(open(sys.argv[1]).read())\n")
    out = root / "sub" / "out.txt"
    record_step(["/usr/bin/python3.11", "copy.py", str(data), str(out)], root / "sub", script,
                [data], [out], git_commit="", run=False) if out.write_text("hello\n") else None
    from sharklib.views.pipeline_md import pipeline_from

    text = pipeline_from(str(out), root=str(root))
    assert "cd sub && python copy.py ../in.txt out.txt" in text
    assert f"file:in.txt in.txt sha256:{sha256_file(data)[0]}" in text


def test_document_reads_with_the_pipeline_parser(pipeline: Pipeline, tmp_path: Path) -> None:
    """The generated document is a pipeline ``sharklib.pipeline`` itself can read."""
    import importlib.util

    import pytest

    if importlib.util.find_spec("sharklib.pipeline.document") is None:
        pytest.skip("sharklib.pipeline (the Markdown pipeline reader) is not available")
    from sharklib.pipeline.document import read_document
    from sharklib.views.pipeline_md import pipeline_from

    md = pipeline.root / "rebuild.md"
    pipeline_from(str(pipeline.report), str(md))
    doc = read_document(md)
    assert [(b.kind, b.env) for b in doc.blocks] == [("import", None)] + [("run", "host")] * 3
    assert doc.variables["target"] == "results/report.txt"
    from sharklib.pipeline.imports import parse_source

    for _, line in doc.blocks[0].lines:
        assert parse_source(shlex.split(line)[0]).kind == "file"


def test_pipeline_from_through_the_cli(pipeline: Pipeline) -> None:
    import pytest
    from viewkit import shark

    r = shark("pipeline", "from", str(pipeline.report))
    if r.returncode == 2 and "No such command" in r.stderr:
        pytest.skip("the `sharklib pipeline` group is not available")
    assert r.returncode == 0, r.stderr
    assert "```shark-run:host\npython stats.py data/clean.csv results/stats.json\n```" in r.stdout


def test_a_python_c_step_is_named_by_its_command_and_rebuilds(tmp_path: Path) -> None:
    from viewkit import shark

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "a.txt").write_text("ab\n")
    code = "open('b.txt', 'w').write(open('a.txt').read().upper())"
    assert shark("run", "-q", "-c", code, cwd=src).returncode == 0
    r = shark("pipeline", "from", "b.txt", "-o", str(dst / "rebuild.md"), cwd=src)
    assert r.returncode == 0, r.stderr
    text = (dst / "rebuild.md").read_text()
    assert "## Step 1: `python -c` writes `b.txt`" in text and "<string>" not in text
    assert ", code sha256 `" in text
    shutil.copy(src / "a.txt", dst / "a.txt")
    command = text.split("```shark-run:host\n", 1)[1].split("\n```", 1)[0]
    subprocess.run(command, shell=True, cwd=dst, check=True)
    assert (dst / "b.txt").read_text() == "AB\n"
