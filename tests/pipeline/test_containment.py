"""A downloaded pipeline document must not read or write outside its own directory.

Written as the author of a hostile ``method.md`` would: publish to ``../x`` or an
absolute path, import through a symlinked directory, import the signing key or
``/etc/passwd`` with ``file:``. Each is refused before anything runs, in one line
naming the document line (exit 2); the user can let ``file:`` read elsewhere with
``--allow-outside DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pipekit import Cli, write


def _refused(proc, line: int, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert err.count("\n") == 0, err
    assert f"m.md:{line}:" in err, err
    for w in words:
        assert w in err, err


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    return d


@pytest.mark.parametrize("dest", ["../escaped.txt", "ABS"])
def test_publish_outside_the_document_directory_is_refused(project: Path, cli: Cli,
                                                           outside: Path, dest: str) -> None:
    target = outside / "abs.txt" if dest == "ABS" else project.parent / "escaped.txt"
    write(project / "m.md", "# m\n\n```shark-run:host\necho hi > out.txt\n```\n\n"
          f"```shark-publish\nout.txt {target if dest == 'ABS' else dest}\n```\n")
    proc = cli("run", "m.md")
    _refused(proc, 8, "publish destination", "outside the document's directory")
    assert not target.exists()
    assert not (project / "out.txt").exists(), "refused before anything ran"


def test_publish_through_a_symlinked_directory_is_refused(project: Path, cli: Cli,
                                                          outside: Path) -> None:
    (project / "published").symlink_to(outside, target_is_directory=True)
    write(project / "m.md", "```shark-run:host\necho hi > out.txt\n```\n\n"
          "```shark-publish\nout.txt published/out.txt\n```\n")
    proc = cli("run", "m.md")
    _refused(proc, 6, "publish destination", f"resolves to {outside}")
    assert not (outside / "out.txt").exists()


def test_publish_of_a_file_outside_is_refused(project: Path, cli: Cli, outside: Path) -> None:
    (outside / "secret.txt").write_text("secret\n")
    write(project / "m.md", f"```shark-publish\n{outside}/secret.txt pub/secret.txt\n```\n")
    _refused(cli("run", "m.md"), 2, "publish source")
    assert not (project / "pub").exists()


def test_a_symlink_planted_by_a_stage_is_caught_when_publishing(project: Path, cli: Cli,
                                                                outside: Path) -> None:
    write(project / "m.md", "```shark-run:host\necho hi > out.txt\n"
          f"ln -sfn {outside} pub\n```\n\n```shark-publish\nout.txt pub/\n```\n")
    proc = cli("run", "m.md")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "publish destination" in proc.stderr and "m.md:7:" in proc.stderr, proc.stderr
    assert not (outside / "out.txt").exists()


def test_import_destination_through_a_symlinked_directory_is_refused(project: Path, cli: Cli,
                                                                     outside: Path) -> None:
    write(project / "vendor" / "table.csv", "a,b\n")
    (project / "data").symlink_to(outside, target_is_directory=True)
    write(project / "m.md", "```shark-import\nfile:vendor/table.csv data/table.csv\n```\n")
    proc = cli("run", "m.md")
    _refused(proc, 2, "import destination", f"resolves to {outside}")
    assert not (outside / "table.csv").exists()


@pytest.mark.parametrize("what", ["passwd", "key", "link", "dotdot"])
def test_file_import_from_outside_the_tree_is_refused(project: Path, cli: Cli, outside: Path,
                                                      shark_home: Path, what: str) -> None:
    key = shark_home / "config" / "keys" / "default.pem"
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text("-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n")
    (outside / "x.csv").write_text("x\n")
    if what == "link":
        (project / "vendor").mkdir()
        (project / "vendor" / "innocent.csv").symlink_to(key)
    source = {"passwd": "file:/etc/passwd", "key": f"file:{key}",
              "link": "file:vendor/innocent.csv", "dotdot": "file:../outside/x.csv"}[what]
    write(project / "m.md", f"# m\n\n```shark-import\n{source} data/got.txt\n```\n")
    proc = cli("run", "m.md")
    _refused(proc, 4, "file source", "--allow-outside")
    assert not (project / "data" / "got.txt").exists()


def test_allow_outside_lets_a_file_import_read_that_directory_only(project: Path, cli: Cli,
                                                                   outside: Path) -> None:
    (outside / "x.csv").write_text("x\n")
    write(project / "m.md", f"```shark-import\nfile:{outside}/x.csv data/x.csv\n```\n")
    proc = cli("run", "m.md", "--allow-outside", str(outside))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (project / "data" / "x.csv").read_text() == "x\n"
    other = project.parent / "other"
    other.mkdir()
    proc = cli("run", "m.md", "--allow-outside", str(other))
    _refused(proc, 2, "file source")


def test_find_links_outside_is_refused(project: Path, cli: Cli, outside: Path) -> None:
    write(project / "m.md", "```shark-build:py\nrequirements: [nothing-here==1.0]\n"
          f"find_links: [{outside}]\nno_index: true\n```\n\n"
          "```shark-run:py\npython -c 'print(1)' > o.txt\n```\n")
    _refused(cli("plan", "m.md"), 1, "find_links directory")


def test_inside_paths_still_work(project: Path, cli: Cli) -> None:
    write(project / "vendor" / "t.csv", "t\n")
    write(project / "m.md", "```shark-import\nfile:vendor/t.csv data/t.csv\n```\n\n"
          "```shark-run:host\ncat data/t.csv > out/r.txt\n```\n\n"
          "```shark-publish\nout/r.txt published/\n```\n")
    proc = cli("run", "m.md")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (project / "published" / "r.txt").read_text() == "t\n"
    assert os.path.exists(project / "published" / "r.txt.intoto.jsonl")
