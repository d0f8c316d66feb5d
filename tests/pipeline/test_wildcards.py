"""Wildcards, quoting and document encodings, through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipekit import Cli, write


def test_gather_into_the_directory_it_matches_runs_again(project: Path, cli: Cli) -> None:
    for n in "ab":
        write(project / "parts" / f"{n}.txt", f"{n}\n")
    write(project / "m.md", "```shark-run:host\ncat parts/*.txt > parts/all.txt\n```\n")
    cli("run", "m.md", check=True)
    assert (project / "parts" / "all.txt").read_text() == "a\nb\n"
    write(project / "parts" / "c.txt", "c\n")
    proc = cli("run", "m.md", check=True)  # parts/all.txt is on disk now: not one of its inputs
    assert "1 ran" in proc.stdout, proc.stdout
    assert (project / "parts" / "all.txt").read_text() == "a\nb\nc\n"


def test_star_inside_a_quoted_script_is_not_a_map(project: Path, cli: Cli) -> None:
    for n, v in (("a", "3"), ("b", "1"), ("c", "2")):
        write(project / "raw" / f"{n}.txt", f"{v}\n")
    write(project / "m.md", "```shark-run:host\n"
          "sh -c 'cat raw/*.txt | sort -n' > results/sorted.txt\n```\n")
    proc = cli("run", "m.md")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (project / "results" / "sorted.txt").read_text() == "1\n2\n3\n"


def test_byte_order_mark_is_not_part_of_the_document(project: Path, cli: Cli) -> None:
    (project / "bom.md").write_bytes(b"\xef\xbb\xbf```shark-run:host\necho hello > out/a.txt\n```\n")
    proc = cli("run", "bom.md", check=True)
    assert "1 stage(s)" in proc.stdout, proc.stdout
    assert (project / "out" / "a.txt").read_text() == "hello\n"
    (project / "fm.md").write_bytes("\ufeff---\nword: bonjour\n---\n\n```shark-run:host\n"
                                    "echo %{word} > out/b.txt\n```\n".encode())
    cli("run", "fm.md", check=True)
    assert (project / "out" / "b.txt").read_text() == "bonjour\n"


def test_stem_collision_names_both_inputs_and_suggests_basename(project: Path, cli: Cli) -> None:
    write(project / "raw" / "a.csv", "1\n")
    write(project / "raw" / "a.tsv", "2\n")
    write(project / "m.md", "```shark-run:host\ncat raw/* > work/%{stem}.txt\n```\n")
    proc = cli("run", "m.md")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "raw/a.csv" in err and "raw/a.tsv" in err and "work/a.txt" in err, err
    assert "%{basename}" in err and "with %{stem} or" not in err, err


def test_options_that_would_be_ignored_are_errors(project: Path, cli: Cli,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    write(project / "m.md", "```shark-run:host\necho a > a.txt\n```\n")
    proc = cli("run", "--scheduler", "tcp://127.0.0.1:8786", "m.md")
    assert proc.returncode == 2 and "--scheduler only applies to --executor dask" in proc.stderr, \
        proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    monkeypatch.setenv("SHARKLIB_LOCAL_POOL", "bogus")
    proc = cli("run", "m.md")
    assert proc.returncode == 2 and "SHARKLIB_LOCAL_POOL='bogus'" in proc.stderr, \
        proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (project / "a.txt").exists()
