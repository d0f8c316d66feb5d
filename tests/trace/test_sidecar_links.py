"""Inputs read from a directory of many files link to the sidecars beside them, and only those.

The record phase lists such a directory once instead of looking for a sidecar per input;
these tests pin what that listing must still find.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from trace_support import root, run_traced

from sharklib.attest import attestation_digest, read_bundle, sidecar_path
from sharklib.trace import session


def _many(directory: Path, n: int) -> None:
    directory.mkdir()
    old = time.time() - 3600
    for i in range(n):
        f = directory / f"f{i:02d}.txt"
        f.write_text(f"{i}\n")
        os.utime(f, (old, old))


def test_an_input_among_many_links_to_its_sidecar(tmp_path: Path, backend: str) -> None:
    data = tmp_path / "data"
    _many(data, 2 * session.LIST_DIR_FROM)
    made = run_traced(["sh", "-c", "echo seven > data/f07.txt"], backend, tmp_path)
    assert made.exit_status == 0
    side = sidecar_path(str(data / "f07.txt"))
    assert os.path.exists(side)
    head = attestation_digest(read_bundle(side).head.envelope)
    used = run_traced(["sh", "-c", "cat data/*.txt > all.txt"], backend, tmp_path)
    links = {os.path.basename(a.path): a.attestation for a in root(used).inputs
             if a.path.startswith(str(data) + os.sep) and a.path.endswith(".txt")}
    assert len(links) == 2 * session.LIST_DIR_FROM
    assert links["f07.txt"] == head
    assert {n for n, att in links.items() if att} == {"f07.txt"}


def test_sidecar_candidates_of_directories_with_and_without_sidecars(tmp_path: Path) -> None:
    bare, mixed = tmp_path / "bare", tmp_path / "mixed"
    n = session.LIST_DIR_FROM + 8
    _many(bare, n)
    _many(mixed, n)
    (mixed / "f03.txt.intoto.jsonl").write_text("{}\n")
    (mixed / "other.intoto.jsonl").write_text("{}\n")  # beside no input that was read
    paths = [str(p) for d in (bare, mixed) for p in sorted(d.iterdir())
             if not p.name.endswith(".jsonl")]
    few = [str(tmp_path / "alone.txt")]  # too few in its directory to list it: kept as is
    got = session._sidecar_candidates(paths + few + [str(mixed) + "/"])
    assert got == {str(mixed / "f03.txt"), *few}


def test_inputs_a_step_of_the_same_tree_wrote_link_to_it(tmp_path: Path, backend: str) -> None:
    """A directory listed for sidecars before any run of the tree was signed held none of the
    sidecars its upstream run was about to write: a later step reading many files the
    earlier step made in one traced command (``make``: one run per recipe) was left unlinked
    to it."""
    n = session.LIST_DIR_FROM + 8
    (tmp_path / "gen.py").write_text(
        "import os\nos.mkdir('gen')\n"
        f"for i in range({n}):\n    open(f'gen/f{{i}}.txt', 'w').write(str(i))\n")
    (tmp_path / "combine.py").write_text(
        "import glob\nopen('all.txt', 'w').write(''.join(open(p).read() "
        "for p in sorted(glob.glob('gen/*.txt'))))\n")
    (tmp_path / "Makefile").write_text(
        f"all.txt: gen/f0.txt\n\t{sys.executable} combine.py\n"
        f"gen/f0.txt:\n\t{sys.executable} gen.py\n")
    result = run_traced(["make", "-s"], backend, tmp_path)
    assert result.exit_status == 0
    gen = str(tmp_path / "gen") + os.sep
    readers = [r for r in result.runs if any(a.path.startswith(gen) for a in r.inputs)]
    assert readers, [r.argv for r in result.runs]
    for r in readers:
        linked = [a for a in r.inputs if a.path.startswith(gen) and a.path.endswith(".txt")]
        assert len(linked) == n, r.argv
        assert all(a.attestation for a in linked), [a.path for a in linked if not a.attestation]
