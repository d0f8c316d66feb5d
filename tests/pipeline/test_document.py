"""Parsing: blocks keep their lines, front matter, and every kind of bad input names its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipekit import write

from sharklib.errors import PipelineError
from sharklib.pipeline import load_pipeline
from sharklib.pipeline.document import read_document


def test_blocks_keep_lines_and_other_blocks_are_ignored(project: Path) -> None:
    doc = write(project / "m.md", "---\nname: x\n---\n# T\n\nprose\n\n```python\nprint(1)\n```\n\n"
                "```shark-run:host\necho a > a.txt\n\n# comment\necho b \\\n  > b.txt\n```\n\n"
                "```shark-unknown\nzzz\n```\n")
    d = read_document(doc)
    assert [b.kind for b in d.blocks] == ["run"]
    assert d.blocks[0].line == 12
    assert d.blocks[0].lines[0] == (13, "echo a > a.txt")
    assert d.variables == {"name": "x"}
    assert any("unknown block 'shark-unknown'" in n and ":20:" in n for n in d.notes)
    pipe = load_pipeline(doc)
    assert [(s.line, s.command) for s in pipe.stages] == [(13, "echo a > a.txt"), (16, "echo b > b.txt")]


def _error(project: Path, text: str) -> PipelineError:
    doc = write(project / "bad.md", text)
    with pytest.raises(PipelineError) as info:
        load_pipeline(doc)
    assert info.value.path == str(doc)
    return info.value


@pytest.mark.parametrize(("text", "line", "words"), [
    ("# x\n\n```shark-run:host\necho 'unterminated > a\n```\n", 4, "malformed command"),
    ("# x\n\n```shark-run\necho a\n```\n", 3, "needs an environment"),
    ("# x\n\n```shark-run:host\necho a > a.txt\n", 3, "never closed"),
    ("# x\n\n```shark-run:host\necho a \\\n```\n", 4, "continuation"),
    ("---\na: [1, 2\n---\n", 2, "not valid YAML"),
    ("# x\n\n```shark-run:host\n\necho %{nope} > a.txt\n```\n", 5, "undefined template variable"),
    ("# x\n\n```shark-import\nhttps://example.org/a.csv\n```\n", 4, "no destination"),
    ("# x\n\n```shark-import\nftp://example.org/a.csv a.csv\n```\n", 4, "unknown import source"),
    ("# x\n\n```shark-run:host\ncat nothing/here/* > x.txt\n```\n", 4, "matches no file"),
    ("# x\n\n```shark-run:host\necho a > out.txt\necho b > out.txt\n```\n", 5, "two stages write out.txt"),
    ("# x\n\n```shark-run:host\ncat b.txt > a.txt\ncat a.txt > b.txt\n```\n", None, "cycle"),
    ("# x\n\n```shark-run:conda\necho a\n```\n", 4, "environment 'conda' is not defined"),
    ("# x\n\n```shark-run:host\necho %{stem} > x.txt\n```\n", 4, "only work in a map"),
    ("# x\n\n```shark-build:py\npython: '3.11'\nrequirements: numpy\n```\n", 3, "requirements must be a list"),
    ("# x\n\n```shark-publish\nresult.csv\n```\n", 4, "publish line takes"),
])
def test_bad_input_names_the_line(project: Path, text: str, line: int | None, words: str) -> None:
    err = _error(project, text)
    assert words in err.message
    if line is not None:
        assert err.line == line
    else:
        assert err.line in (4, 5)


def test_map_writing_one_path_for_every_input(project: Path) -> None:
    for n in "ab":
        write(project / "raw" / f"{n}.txt", n)
    err = _error(project, "# x\n\n```shark-run:host\n"
                 "python s.py raw/* > out/%{stem}.txt 2> log.txt\n```\n")
    assert err.line == 4 and "every stage of this map writes log.txt" in err.message


def test_a_wildcard_whose_copies_would_write_one_path_is_one_gather(project: Path) -> None:
    for n in "ab":
        write(project / "raw" / f"{n}.txt", n)
    write(project / "raw" / "a.txt.intoto.jsonl", "{}")
    doc = write(project / "m.md", "# x\n\n```shark-run:host\ncat raw/* > all.txt\n```\n")
    [stage] = load_pipeline(doc).stages
    assert stage.command == "cat raw/a.txt raw/b.txt > all.txt"  # no sidecar, unlike a shell's *
    assert {Path(p).name for p in stage.reads} >= {"a.txt", "b.txt"}
    assert {Path(p).name for p in stage.writes} == {"all.txt"}


def test_huge_document_is_refused_before_parsing(project: Path) -> None:
    doc = project / "huge.md"
    with open(doc, "w") as f:
        line = "prose " * 16 + "\n"
        f.write(line * (50 * 1024 * 1024 // len(line) + 1))
    assert doc.stat().st_size >= 50 * 1024 * 1024
    with pytest.raises(PipelineError) as info:
        read_document(doc)
    assert info.value.line == 1 and "MB" in info.value.message


def test_not_utf8_names_the_line(project: Path) -> None:
    doc = project / "bin.md"
    doc.write_bytes(b"# ok\nline two\n\xff\xfe bad\n")
    with pytest.raises(PipelineError) as info:
        read_document(doc)
    assert info.value.line == 3


def test_cli_prints_one_line_error(project: Path, cli) -> None:  # type: ignore[no-untyped-def]
    write(project / "bad.md", "# x\n\n```shark-run:host\necho a > o.txt\necho b > o.txt\n```\n")
    proc = cli("run", "bad.md")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "bad.md:5: two stages write o.txt" in proc.stderr
    assert not (project / "o.txt").exists()


def test_import_destination_must_stay_in_the_project(project: Path) -> None:
    err = _error(project, "```shark-import\nhttps://example.org/a.csv ../../etc/a.csv\n```\n")
    assert err.line == 2 and "outside the document's directory" in err.message


def test_corrupt_state_is_ignored_with_a_note(project: Path) -> None:
    from sharklib.pipeline.state import state_dir

    doc = write(project / "m.md", "```shark-run:host\necho a > a.txt\n```\n")
    d = state_dir(doc)
    d.mkdir(parents=True)
    (d / "state.json").write_bytes(b"\x00{not json")
    pipe = load_pipeline(doc)
    assert any("ignoring corrupt pipeline state" in n for n in pipe.notes)
    assert len(pipe.stages) == 1


# -- the parse memo ------------------------------------------------------------------------
def _parse_in_fresh_process(doc: Path) -> tuple[str, bool, bool]:
    """Blocks and notes of ``doc`` as a new interpreter reads them, and whether it imported
    the Markdown parser and the YAML loader to do so."""
    import subprocess
    import sys

    code = ("import sys; from sharklib.pipeline.document import read_document; "
            f"d = read_document({str(doc)!r}); "
            "print(repr((d.variables, d.front_matter_line, d.blocks, d.notes))); "
            "print('markdown_it' in sys.modules, 'yaml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    return out[0], out[1].split()[0] == "True", out[1].split()[1] == "True"


def test_a_parsed_document_is_not_parsed_again(project: Path) -> None:
    doc = write(project / "m.md", "---\nregion: [n, s]\n---\n# T\n\n```shark-run:host\n"
                "echo %{region} > %{region}.txt\n```\n\n```shark-odd\nx\n```\n")
    first, md1, yaml1 = _parse_in_fresh_process(doc)
    again, md2, yaml2 = _parse_in_fresh_process(doc)
    assert (md1, yaml1) == (True, True) and (md2, yaml2) == (False, False)
    assert again == first
    write(doc, doc.read_text().replace("echo", "printf"))  # edited: parsed again
    edited, md3, _ = _parse_in_fresh_process(doc)
    assert md3 and "printf" in edited and edited != first


def test_front_matter_json_cannot_hold_is_read_every_time(project: Path) -> None:
    doc = write(project / "m.md", "---\nday: 2024-05-01\n---\n```shark-run:host\necho %{day}\n```\n")
    first, _, _ = _parse_in_fresh_process(doc)
    again, md, yaml = _parse_in_fresh_process(doc)
    assert again == first and "datetime.date(2024, 5, 1)" in again
    assert (md, yaml) == (False, True)
    assert [s.command for s in load_pipeline(doc).stages] == ["echo 2024-05-01"]


def test_a_damaged_memo_is_ignored(project: Path) -> None:
    from sharklib.pipeline.state import state_dir

    doc = write(project / "m.md", "```shark-run:host\necho a > a.txt\n```\n")
    first = read_document(doc)
    memo = state_dir(doc) / "parsed.json"
    assert memo.exists()
    for junk in (b"{not json", b'{"key": 1}', memo.read_bytes().replace(b'"run"', b'"nope"')):
        memo.write_bytes(junk)
        again = read_document(doc)
        assert (again.blocks, again.notes, again.variables) == (first.blocks, first.notes,
                                                              first.variables)
