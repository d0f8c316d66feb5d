"""A reused ``sharklib run`` reads the key's memo, not the run index (issue 18: the reuse path).

The memo is a hint like an index entry: it is served only while the index is as it was when
the memo was written, only as its attestation signs it (a key trusted for reuse), and only
with the stream bytes that attestation names. Anything less sends the lookup to the index,
which decides as before. Executions are counted through a side effect (tests/runner/stepcount).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.runner.stepcount import executed, step_env

STEP = "import os\nopen(os.environ['COUNT_FILE'], 'a').write('{name}\\n')\nprint('{text}')\n"
MAGIC = b"sharklib-reuse-memo-v1\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    (root / "step.py").write_text(STEP.format(name="step", text="done"))
    (root / "other.py").write_text(STEP.format(name="other", text="other"))
    return root


def run(project: Path, script: str = "step.py", *pre: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, *pre, "-m", "sharklib", "run", script], cwd=project,
                          capture_output=True, text=True, env=step_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def imported_sqlite(proc: subprocess.CompletedProcess[str]) -> bool:
    return any(line.rsplit("|", 1)[-1].strip() in ("sqlite3", "_sqlite3")
               for line in proc.stderr.splitlines() if line.startswith("import time:"))


def imported_index(proc: subprocess.CompletedProcess[str]) -> bool:
    return any(line.rsplit("|", 1)[-1].strip() == "sharklib.cache.index"
               for line in proc.stderr.splitlines() if line.startswith("import time:"))


def cache() -> Path:
    return Path(os.environ["SHARKLIB_HOME"]) / "cache"


def memo_file() -> Path:
    [path] = [p for p in (cache() / "keys").glob("*/*") if p.read_bytes().startswith(MAGIC)]
    return path


def index_stamp() -> tuple[int, int, int]:
    st = os.stat(cache() / "index.sqlite")
    return st.st_ino, st.st_size, st.st_mtime_ns


def test_a_reused_step_reads_its_memo_not_the_index(project: Path) -> None:
    assert run(project).stdout == "done\n"
    before = index_stamp()
    again = run(project, "step.py", "-X", "importtime")
    assert again.stdout == "done\n" and "sharklib: reused run" in again.stderr, again.stderr
    assert executed() == ["step"]
    assert not imported_sqlite(again), "a reuse the memo proves imported sqlite3"
    assert index_stamp() == before, "the reuse wrote the index"
    assert not (cache() / "index.sqlite-wal").exists()
    # the use is counted all the same, once the journal is folded by a reader
    from sharklib.cache.index import RunIndex

    index = RunIndex(cache() / "index.sqlite")
    try:
        [row] = index.rows()
        assert row.uses == 1
    finally:
        index.close()


def test_a_memo_is_refused_once_the_index_changed_and_written_anew(project: Path) -> None:
    run(project)
    run(project, "other.py")  # the index changed: step.py's memo no longer holds
    assert executed() == ["other", "step"]
    slow = run(project, "step.py", "-X", "importtime")
    assert slow.stdout == "done\n" and "reused" in slow.stderr
    assert imported_sqlite(slow), "a memo older than the index was served"
    fast = run(project, "step.py", "-X", "importtime")
    assert fast.stdout == "done\n" and "reused" in fast.stderr and not imported_sqlite(fast)
    assert executed() == []


def _edit_memo(change) -> None:  # type: ignore[no-untyped-def]
    path = memo_file()
    memo = json.loads(zlib.decompress(path.read_bytes()[len(MAGIC):]))
    change(memo)
    path.write_bytes(MAGIC + zlib.compress(json.dumps(memo).encode()))


def _forge_stdout(memo: dict) -> None:  # type: ignore[type-arg]
    import base64

    memo["streams"] = {role: base64.b64encode(b"forged\n").decode() for role in memo["streams"]}


def _forge_statement(memo: dict) -> None:  # type: ignore[type-arg]
    statement = json.loads(memo["statement"])
    statement["predicate"]["entry"]["run"]["exit_status"] = 3
    memo["statement"] = json.dumps(statement, sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("forge", [_forge_stdout, _forge_statement], ids=["streams", "statement"])
def test_a_forged_memo_proves_nothing(project: Path, forge) -> None:  # type: ignore[no-untyped-def]
    run(project)
    run(project)
    _edit_memo(forge)
    proc = run(project)
    # served from the index, as signed: the forged bytes and status never reach the user
    assert proc.stdout == "done\n" and "reused" in proc.stderr and "forged" not in proc.stdout
    assert "quarantined" not in proc.stderr, proc.stderr
    assert executed() == ["step"]


def test_a_run_removed_from_the_index_is_not_served_from_its_memo(project: Path) -> None:
    run(project)
    run(project)
    from sharklib.cache.index import RunIndex

    index = RunIndex(cache() / "index.sqlite")
    try:
        index.remove([r.run_id for r in index.rows()])
    finally:
        index.close()
    proc = run(project)
    assert proc.stdout == "done\n" and "reused" not in proc.stderr
    assert executed() == ["step", "step"]


def test_a_memo_signed_by_a_key_no_longer_trusted_is_not_served(project: Path) -> None:
    run(project)
    run(project)
    config = Path(os.environ["SHARKLIB_HOME"]) / "config"
    (config / "keys" / "default.pem").unlink()  # a new own key: the old one is trusted no more
    proc = run(project)
    assert "reused" not in proc.stderr, proc.stderr
    assert executed() == ["step", "step"]


def test_quiet_reuse_from_the_memo_prints_only_what_the_step_printed(project: Path) -> None:
    run(project)
    proc = subprocess.run([sys.executable, "-m", "sharklib", "run", "-q", "step.py"],
                          cwd=project, capture_output=True, text=True, env=step_env(),
                          timeout=120)
    assert (proc.stdout, proc.stderr, proc.returncode) == ("done\n", "", 0)
    assert executed() == ["step"]


def test_outputs_in_place_are_served_from_the_memo_and_missing_ones_by_the_index(
        project: Path) -> None:
    (project / "write.py").write_text(
        "import os\nopen(os.environ['COUNT_FILE'], 'a').write('write\\n')\n"
        "open('out.txt', 'w').write('result')\nprint('wrote')\n")
    run(project, "write.py")
    fast = run(project, "write.py", "-X", "importtime")
    # the stat cache answers for the output in place (SQLite), the index is not opened
    assert fast.stdout == "wrote\n" and "reused" in fast.stderr and not imported_index(fast)
    (project / "out.txt").unlink()
    restored = run(project, "write.py")
    assert restored.stdout == "wrote\n" and "1 output restored" in restored.stderr, \
        restored.stderr
    assert (project / "out.txt").read_text() == "result"
    assert executed() == ["write"]
