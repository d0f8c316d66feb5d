"""The DAG built from a document: maps, gathers, combinations, mentions, observed reads."""

from __future__ import annotations

from pathlib import Path

from pipekit import Cli, write

from sharklib.pipeline import load_pipeline


def _deps(pipe, line: int) -> set[int]:  # type: ignore[no-untyped-def]
    return {pipe.stages[d].line for s in pipe.stages if s.line == line for d in s.deps}


def test_map_then_map_then_gather(project: Path) -> None:
    for n in ("a", "b", "c"):
        write(project / "raw" / f"{n}.txt", n)
    doc = write(project / "m.md", "# m\n\n```shark-run:host\n"
                "python clean.py raw/* > work/clean/%{stem}.csv\n"
                "python stats.py work/clean/*.csv -o work/stats/%{basename}.json\n"
                "python gather.py work/stats > report.txt\n```\n")
    pipe = load_pipeline(doc)
    by_line: dict[int, list] = {}  # type: ignore[type-arg]
    for s in pipe.stages:
        by_line.setdefault(s.line, []).append(s)
    assert [len(by_line[n]) for n in (4, 5, 6)] == [3, 3, 1]
    clean = {s.item: s for s in by_line[4]}
    assert clean["raw/b.txt"].command == "python clean.py raw/b.txt > work/clean/b.csv"
    assert clean["raw/b.txt"].writes == {str(project / "work/clean/b.csv")}
    stats = {s.item: s for s in by_line[5]}
    st_b = stats["work/clean/b.csv"]
    assert st_b.writes == {str(project / "work/stats/b.csv.json")}
    assert st_b.deps == {clean["raw/b.txt"].index}
    assert by_line[6][0].deps == {s.index for s in by_line[5]}
    assert all(p.action == "run" for p in pipe.plans)


def test_adding_a_file_adds_one_stage(project: Path) -> None:
    for n in ("a", "b"):
        write(project / "raw" / f"{n}.txt", n)
    doc = write(project / "m.md", "```shark-run:host\ncp raw/* out/%{basename}\ncat out > all.txt\n```\n")
    before = {s.command for s in load_pipeline(doc).stages}
    write(project / "raw" / "c.txt", "c")
    after = {s.command for s in load_pipeline(doc).stages}
    assert after - before == {"cp raw/c.txt out/c.txt"}


def test_combinations_from_list_values(project: Path) -> None:
    doc = write(project / "m.md", "---\nspecies: [shark, ray]\nyear: 2024\nunused: [1, 2, 3]\n---\n"
                "```shark-run:host\necho %{species} %{year} > out/%{species}.txt\n"
                "cat out/%{species}.txt > final-%{species}.txt\necho same > same.txt\n```\n")
    pipe = load_pipeline(doc)
    cmds = sorted(s.command for s in pipe.stages)
    assert cmds == sorted(["echo shark 2024 > out/shark.txt", "echo ray 2024 > out/ray.txt",
                           "cat out/shark.txt > final-shark.txt", "cat out/ray.txt > final-ray.txt",
                           "echo same > same.txt"])
    final = next(s for s in pipe.stages if s.command.endswith("final-ray.txt"))
    assert {pipe.stages[d].command for d in final.deps} == {"echo ray 2024 > out/ray.txt"}


def test_first_mention_of_a_new_path_writes_it(project: Path) -> None:
    write(project / "make.py", "")
    doc = write(project / "m.md", "```shark-run:host\npython use.py out/r.csv > s.txt\n```\n\n"
                "```shark-run:host\npython make.py out/r.csv\nsed s/a/b/g data.txt\n```\n")
    pipe = load_pipeline(doc)
    # document order decides: the first stage mentioning the missing file is its writer
    assert _deps(pipe, 6) == {2}
    assert pipe.stages[2].deps == set()


def test_import_destination_links_readers(project: Path) -> None:
    doc = write(project / "m.md", "```shark-import\nhttps://example.org/x.csv data/x.csv\n```\n\n"
                "```shark-run:host\npython step.py data/x.csv > out.txt\n```\n")
    pipe = load_pipeline(doc)
    assert pipe.stages[0].kind == "import"
    assert pipe.stages[1].deps == {0}


def test_undeclared_reads_observed_by_capture_link_stages(project: Path, cli: Cli) -> None:
    write(project / "a.py", "open('secret.txt', 'w').write('s')\n")
    write(project / "b.py", "print(open('secret.txt').read())\n")
    doc = write(project / "m.md", "```shark-run:host\npython a.py\npython b.py > b.txt\n```\n")
    first = load_pipeline(doc)
    assert first.stages[1].deps == set()  # nothing in the text links them
    cli("run", "m.md", "-j", "1", check=True)
    second = load_pipeline(doc)
    assert second.stages[1].deps == {0}, "capture saw b.py read what a.py wrote"
    assert str(project / "secret.txt") in second.stages[0].writes
