"""Running pipelines end to end through the real CLI, runner and capture."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from pipekit import Cli, write

from sharklib.pipeline.plan import planner_available

REPO = Path(__file__).resolve().parents[2]
NO_PLANNER = "runner.plan_command not available yet"


def test_bundled_example_runs_and_signs(tmp_path: Path) -> None:
    src = REPO / "examples" / "method"
    proj = tmp_path / "method"
    shutil.copytree(src, proj, ignore=shutil.ignore_patterns("work", "results", "published",
                                                             "reference", "*.intoto.jsonl"))
    proc = Cli(proj)("run", "method.md", check=True)
    m = re.search(r"11 stage\(s\): (\d+) ran, (\d+) reused, 0 failed", proc.stdout)
    assert m and int(m[1]) + int(m[2]) == 11, proc.stdout
    report = (proj / "results" / "report.md").read_text()
    assert "| Sphyrna lewini | CR | 22 | 2 |" in report
    assert (proj / "results" / "check.txt").read_text().startswith("7 species reported, 0 without")
    assert (proj / "published" / "report.md").read_text() == report
    sidecar = proj / "published" / "report.md.intoto.jsonl"
    assert sidecar.exists(), "the published file travels with its sidecar"
    assert len(sidecar.read_text().splitlines()) > 1, "the sidecar carries the upstream lineage"
    for name in ("east-lagoon", "north-reef", "south-channel", "west-drop-off"):
        assert json.loads((proj / "work" / "summary" / f"{name}.json").read_text())["site"] == name


@pytest.mark.parametrize("pool", ["threads", "processes"])
def test_failure_stops_dependants_and_lets_others_finish(project: Path, cli: Cli, pool: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARKLIB_LOCAL_POOL", pool)
    write(project / "m.md", "# m\n\n```shark-run:host\n"
          "python -c 'import sys; sys.stderr.write(\"boom: bad row 7\\n\"); sys.exit(3)' > a.txt\n"
          "cat a.txt > b.txt\n"
          "echo independent > c.txt\n```\n")
    proc = cli("run", "m.md", "-j", "2")
    assert proc.returncode == 1
    out = proc.stdout
    assert "m.md:4: exit 3" in out
    assert "boom: bad row 7" in out, "the tail of the failing stage's stderr is shown"
    assert "1 not run (upstream failed)" in out
    assert (project / "c.txt").read_text() == "independent\n"
    assert not (project / "b.txt").exists()


def test_dry_run_executes_nothing(project: Path, cli: Cli) -> None:
    write(project / "m.md", "```shark-run:host\necho hi > out/hi.txt\n```\n")
    proc = cli("run", "--dry-run", "m.md", check=True)
    assert "echo hi > out/hi.txt" in proc.stdout
    assert not (project / "out").exists()
    proc = cli("plan", "m.md", check=True)
    if not planner_available():
        assert "no reuse information" in proc.stdout


def test_parallel_stages_and_ordering(project: Path, cli: Cli) -> None:
    for i in range(6):
        write(project / "in" / f"s{i}.txt", f"{i}\n")
    write(project / "m.md", "```shark-run:host\n"
          "python -c 'import sys; print(int(open(sys.argv[1]).read()) * 10)' in/* > mid/%{stem}.txt\n"
          "cat mid/s0.txt mid/s1.txt mid/s2.txt mid/s3.txt mid/s4.txt mid/s5.txt > total.txt\n```\n")
    cli("run", "-j", "3", "m.md", check=True)
    assert (project / "total.txt").read_text().split() == [str(i * 10) for i in range(6)]


def test_template_combinations_run(project: Path, cli: Cli) -> None:
    write(project / "m.md", "---\nregion: [north, south]\n---\n```shark-run:host\n"
          "echo %{region} > out/%{region}.txt\n```\n")
    cli("run", "m.md", check=True)
    assert (project / "out" / "north.txt").read_text() == "north\n"
    assert (project / "out" / "south.txt").read_text() == "south\n"


@pytest.mark.skipif(not planner_available(), reason=NO_PLANNER)
def test_unchanged_pipeline_executes_nothing(project: Path, cli: Cli) -> None:
    for n in "abc":
        write(project / "raw" / f"{n}.txt", n)
    write(project / "step.py", "import sys\nprint(open(sys.argv[1]).read().upper())\n")
    write(project / "m.md", "```shark-run:host\npython step.py raw/* > up/%{stem}.txt\n"
          "ls up > all.txt\n```\n")
    cli("run", "m.md", check=True)
    proc = cli("run", "--dry-run", "m.md", check=True)
    assert "0 to run, 4 to reuse" in proc.stdout
    proc = cli("run", "m.md", check=True)
    assert "0 ran" in proc.stdout


@pytest.mark.skipif(not planner_available(), reason=NO_PLANNER)
def test_adding_one_input_runs_one_stage_plus_the_reduce(project: Path, cli: Cli) -> None:
    for n in "abc":
        write(project / "raw" / f"{n}.txt", n)
    write(project / "step.py", "import sys\nprint(open(sys.argv[1]).read().upper())\n")
    write(project / "gather.py", "import os, sys\nprint(sorted(n for n in os.listdir(sys.argv[1]) "
          "if n.endswith('.txt')))\n")
    write(project / "m.md", "```shark-run:host\npython step.py raw/* > up/%{stem}.txt\n"
          "python gather.py up > all.txt\n```\n")
    cli("run", "m.md", check=True)
    write(project / "raw" / "d.txt", "d")
    proc = cli("run", "m.md", check=True)
    assert "2 ran" in proc.stdout and "3 reused" in proc.stdout


def test_a_wildcard_with_one_output_is_a_gather_over_every_match(project: Path, cli: Cli) -> None:
    """``cat sums/*.txt > all.txt`` runs once over every match, as a shell would run it.

    The stage waits for the map writing the matches, never reads their sidecars (a shell's
    ``*`` would), and adding an input runs one map stage and the gather again.
    """
    for n in "abc":
        write(project / "raw" / f"{n}.txt", f"{n}\n")
    write(project / "m.md", "```shark-run:host\n"
          "python -c 'import sys; print(open(sys.argv[1]).read().strip() * 2)' raw/*.txt"
          " > sums/%{stem}.txt\n"
          "cat sums/*.txt > all.txt\n```\n")
    proc = cli("run", "m.md", check=True)
    assert "4 stage(s): 4 ran" in proc.stdout, proc.stdout
    assert (project / "all.txt").read_text() == "aa\nbb\ncc\n"
    # a `python -c` stage is reused like any other: its code is in its command line
    proc = cli("run", "m.md", check=True)
    assert "0 ran, 4 reused" in proc.stdout, proc.stdout
    write(project / "raw" / "d.txt", "d\n")
    proc = cli("run", "m.md", check=True)
    assert "2 ran, 3 reused" in proc.stdout, proc.stdout
    assert (project / "all.txt").read_text() == "aa\nbb\ncc\ndd\n"


def test_a_stage_reads_an_empty_standard_input(project: Path) -> None:
    # locally as on a cluster's worker: never the terminal or the pipe the pipeline was fed
    import os
    import subprocess
    import sys

    write(project / "m.md", "```shark-run:host\nwc -c > n.txt\n```\n")
    proc = subprocess.run([sys.executable, "-m", "sharklib", "pipeline", "run", "m.md"],
                          cwd=project, input="bytes the pipeline was fed\n", capture_output=True,
                          text=True, timeout=240, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (project / "n.txt").read_text().strip() == "0"


@pytest.mark.parametrize("pool", ["threads", "processes"])
def test_only_stages_that_printed_keep_log_files(project: Path, cli: Cli, pool: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Two empty log files per trivial stage were two inodes per stage in the cache directory;
    a stage that printed, or failed, keeps both (the failure's 'full log' line names them)."""
    from sharklib.config import cache_dir

    monkeypatch.setenv("SHARKLIB_LOCAL_POOL", pool)
    write(project / "m.md", "```shark-run:host\n"
          "echo quiet > q.txt\n"
          "echo loud\n"
          "python -c 'import sys; sys.exit(4)' > f.txt\n```\n")
    proc = cli("run", "m.md", "-j", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [logs] = list((cache_dir() / "pipelines").glob("*/logs"))
    names = sorted(p.name for p in logs.iterdir())
    assert names == ["stage-1.err", "stage-1.out", "stage-2.err", "stage-2.out"], names
    assert (logs / "stage-1.out").read_text() == "loud\n"
    assert f"full log: {logs / 'stage-2'}.err" in proc.stdout.replace("\n", "")
