"""``uses``/``impact`` over what two projects sharing one cache really recorded, and a damaged
ledger.

Project A makes ``out.csv`` from ``data/in.csv``; project B (another directory, the same
cache) reads A's ``out.csv`` by its absolute path. The ledger is per cache, so it knows both:
``uses`` of a directory means every file under it, and ``impact`` of A's input lists B's
result with B's project. A ledger SQLite cannot read gives one line naming the file and
``sharklib cache repair``, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def _shark(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
    env.update(SHARKLIB_HOME=os.environ["SHARKLIB_HOME"], COLUMNS="200")
    done = subprocess.run([sys.executable, "-m", "sharklib", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    if check:
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done


def _json(cwd: Path, *args: str) -> Any:
    return json.loads(_shark(cwd, *args, "--format", "json").stdout)


@pytest.fixture
def projects(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "alpha", tmp_path / "beta"
    for p in (a, b):
        (p / ".git").mkdir(parents=True)
    (a / "data").mkdir()
    (a / "data" / "in.csv").write_text("1\n2\n")
    (a / "data" / "other.csv").write_text("3\n")
    (a / "make.py").write_text("import sys\nrows = open('data/in.csv').read().split()\n"
                               "open('out.csv', 'w').write(','.join(rows))\n")
    (a / "count.py").write_text("print(len(open('data/other.csv').read()))\n")
    (b / "use.py").write_text("import sys\nopen('res.txt', 'w').write(open(sys.argv[1]).read())\n")
    _shark(a, "run", "-q", "make.py")
    _shark(a, "run", "-q", "count.py")
    _shark(b, "run", "-q", "use.py", str(a / "out.csv"))
    return a, b


def _commands(doc: dict[str, Any], key: str) -> set[str]:
    return {item["command"] for item in doc[key]}


def test_uses_of_a_directory_means_every_file_under_it(projects: tuple[Path, Path]) -> None:
    a, _b = projects
    for given in (".", "./", str(a)):
        doc = _json(a, "uses", given)
        readers = _commands(doc, "readers")
        assert {"python make.py", "python count.py"} <= readers, (given, readers)
        assert f"python use.py {a / 'out.csv'}" in readers, (given, readers)
    for given in ("data", "./data/", "data/"):
        doc = _json(a, "uses", given)
        assert _commands(doc, "readers") == {"python make.py", "python count.py"}, given
        assert {r["path"] for r in doc["results"]} >= {"out.csv", "res.txt"}, given
    doc = _json(a / "data", "uses", ".")
    assert _commands(doc, "readers") == {"python make.py", "python count.py"}


def test_impact_lists_results_in_other_projects(projects: tuple[Path, Path]) -> None:
    a, b = projects
    doc = _json(a, "impact", "data/in.csv")
    steps = {s["command"]: s for s in doc["steps"]}
    use = f"python use.py {a / 'out.csv'}"
    assert set(steps) == {"python make.py", use}, steps
    assert steps[use]["project"] == "beta" and steps[use]["root"] == str(b)
    assert steps["python make.py"]["project"] == "alpha"
    assert [o["path"] for o in steps[use]["outputs"]] == ["res.txt"]
    table = _shark(a, "impact", "data/in.csv").stdout
    assert "beta" in table and "res.txt" in table, table


def _damage_ledger_pages(index: Path) -> None:
    """Overwrite the pages of the ledger's tables: the index opens, its ledger queries fail."""
    import sqlite3

    db = sqlite3.connect(index)
    size = db.execute("PRAGMA page_size").fetchone()[0]
    pages = [n for (n,) in db.execute("SELECT rootpage FROM sqlite_master WHERE type='table' "
                                      "AND name LIKE 'ledger%' OR name LIKE 'ledger_%by%'")]
    db.close()
    with open(index, "r+b") as fh:
        for n in pages:
            fh.seek((n - 1) * size)
            fh.write(b"\xff" * size)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "ledger pages"])
def test_a_damaged_ledger_is_one_line_naming_the_file_and_repair(
        projects: tuple[Path, Path], damage: str) -> None:
    a, _b = projects
    index = Path(os.environ["SHARKLIB_HOME"]) / "cache" / "index.sqlite"
    _shark(a, "log")  # the ledger filled, the WAL checkpointed by the last close
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    data = index.read_bytes()
    if damage == "garbage":
        index.write_bytes(b"not a database " * 300)
    elif damage == "truncated":  # a valid header and schema, the pages after them gone
        index.write_bytes(data[: len(data) // 2])
    else:
        _damage_ledger_pages(index)
    for args in (("log",), ("uses", "data/in.csv"), ("impact", "data/in.csv"), ("report",)):
        r = _shark(a, *args, check=False)
        assert r.returncode != 0, (args, r.stdout)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr, (args, r.stderr)
        assert str(index) in lines[0] and "sharklib cache repair" in lines[0], (args, lines)


def test_a_run_without_a_sidecar_shows_the_signer_of_its_record(tmp_path: Path) -> None:
    """A step whose only output is a log outside the project keeps no sidecar, but its cache
    entry is signed: ``log`` names that signer, before and after ``sharklib cache repair``."""
    p = tmp_path / "p"
    (p / ".git").mkdir(parents=True)
    (p / "s.py").write_text("import sys\nprint('progress', file=sys.stderr)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
    env.update(SHARKLIB_HOME=os.environ["SHARKLIB_HOME"], COLUMNS="200")
    with open(tmp_path / "e.log", "w") as log:
        r = subprocess.run([sys.executable, "-m", "sharklib", "run", "s.py"], cwd=p, env=env,
                           stderr=log, timeout=120)
    assert r.returncode == 0 and "progress" in (tmp_path / "e.log").read_text()

    def signer() -> dict[str, Any]:
        [event] = _json(p, "log")["events"]
        return event["signed_by"]  # type: ignore[no-any-return]

    assert signer()["state"] == "trusted" and signer()["name"] == "own", signer()
    index = Path(os.environ["SHARKLIB_HOME"]) / "cache" / "index.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    r = _shark(p, "cache", "repair")
    assert "indexed 1 run" in r.stdout, r.stdout
    assert signer()["state"] == "trusted" and signer()["name"] == "own", signer()
