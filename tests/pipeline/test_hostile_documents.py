"""Hostile documents: each ends quickly with one line naming the document line (exit 2).

A downloaded method.md is untrusted input. Deeply nested front matter ended in a
RecursionError traceback; a billion-laughs alias chain, nine lists of ten values
(10^9 combinations) and one very long command line hung ``pipeline plan`` (RSS to
gigabytes; tokenising one long word was quadratic). The timeout marks are a
generous guard against a hang, not a speed assertion.
"""

from __future__ import annotations

import pytest
from pipekit import Cli, write

pytestmark = pytest.mark.timeout(120)

RUN = "```shark-run:host\necho %{x} > o.txt\n```\n"


def _one_line_error(cli: Cli, line: int, *words: str) -> None:
    proc = cli("plan", "m.md")
    assert proc.returncode == 2, proc.stdout + proc.stderr[-2000:]
    err = proc.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err[-2000:]
    assert f"m.md:{line}:" in err, err
    for w in words:
        assert w in err, err


def test_deeply_nested_front_matter(project, cli) -> None:  # type: ignore[no-untyped-def]
    write(project / "m.md", "---\nx: " + "[" * 5000 + "]" * 5000 + "\n---\n" + RUN)
    _one_line_error(cli, 2, "nests deeper than")


def test_deeply_nested_block_mappings(project, cli) -> None:  # type: ignore[no-untyped-def]
    fm = "".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "v: 1\n"
    write(project / "m.md", "---\nx: 1\n" + fm + "---\n" + RUN)
    _one_line_error(cli, 66, "nests deeper than")


def test_billion_laughs_aliases(project, cli) -> None:  # type: ignore[no-untyped-def]
    fm = "x: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    prev = "a"
    for name in "bcdefghi":
        fm += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
        prev = name
    write(project / "m.md", "---\n" + fm + "---\n" + RUN)
    _one_line_error(cli, 2, "expands to more than")


def test_an_alias_inside_its_own_anchor(project, cli) -> None:  # type: ignore[no-untyped-def]
    write(project / "m.md", "---\nx: 1\nloop: &l [1, *l]\n---\n" + RUN)
    _one_line_error(cli, 2, "refers to itself")


def test_a_product_of_lists_of_a_billion(project, cli) -> None:  # type: ignore[no-untyped-def]
    fm = "".join(f"v{i}: [{', '.join(str(j) for j in range(10))}]\n" for i in range(9))
    cmd = " ".join(f"%{{v{i}}}" for i in range(9))
    write(project / "m.md", f"---\n{fm}---\n```shark-run:host\necho {cmd} > o.txt\n```\n")
    _one_line_error(cli, 2, "more than 10000 combinations", "%{v0} (10)")


def test_many_templated_lines_times_combinations(project, cli) -> None:  # type: ignore[no-untyped-def]
    fm = "a: [" + ", ".join(str(i) for i in range(100)) + "]\nb: [" + \
        ", ".join(str(i) for i in range(100)) + "]\n"
    lines = "".join(f"echo {i} %{{a}} %{{b}} > out/{i}-%{{a}}-%{{b}}.txt\n" for i in range(20))
    write(project / "m.md", f"---\n{fm}---\n```shark-run:host\n{lines}```\n")
    _one_line_error(cli, 2, "would make more than 100000 stages")


@pytest.mark.parametrize("shape", ["words", "path", "quoted"])
def test_one_very_long_command_line(project, cli, shape: str) -> None:  # type: ignore[no-untyped-def]
    body = {"words": "a " * 250_000, "path": "d/" * 100_000 + "x",
            "quoted": '"' + "a" * 500_000 + '"'}[shape]
    write(project / "m.md", f"# m\n\n```shark-run:host\necho {body} > o.txt\n```\n")
    _one_line_error(cli, 4, "characters long, above the limit", "move it into a script")


def test_a_long_continued_command_is_measured_whole(project, cli) -> None:  # type: ignore[no-untyped-def]
    parts = " \\\n".join("x" * 1000 for _ in range(40))
    write(project / "m.md", f"```shark-run:host\necho {parts} > o.txt\n```\n")
    _one_line_error(cli, 2, "characters long")


def test_a_long_path_word_under_the_limit_plans(project, cli) -> None:  # type: ignore[no-untyped-def]
    """30 KB of d/d/d/...: not a path the kernel could open, not followed to the root."""
    write(project / "m.md", "```shark-run:host\necho " + "d/" * 15_000 + "x > o.txt\n```\n")
    proc = cli("plan", "m.md")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "1 stage(s): 1 to run" in proc.stdout
