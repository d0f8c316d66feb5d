"""Planning many stages from the index's reuse facts: signatures, migration, damage, keys.

Real stages (recorded by the Python capture), a real index on disk, real files.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from sharklib.cache.facts import FACTS_VERSION
from sharklib.cache.index import SCHEMA_VERSION, RunIndex
from sharklib.cache.runcache import RunCache
from sharklib.config import cache_dir
from sharklib.errors import StoreError
from sharklib.hashing import statcache
from sharklib.runner import plan_command, plan_commands, run_command
from sharklib.runner.planner import Plan, StageSpec, _mark_on_disk, stage_keys
from sharklib.runner.stagekey import stage_key

PY = shlex.quote(sys.executable)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHARKLIB_HOME", str(tmp_path / "home"))
    # the racy window (2 s after a file's last change) passes at once, so signatures may be
    # kept without sleeping; test_fresh_files_get_no_signature puts it back
    monkeypatch.setattr(statcache, "RACY_NS", 0)
    root = tmp_path / "p"
    root.mkdir()
    (root / ".git").mkdir()
    (root / "in.txt").write_text("hello\n")
    (root / "up.py").write_text("import sys\nprint(open(sys.argv[1]).read().upper(), end='')\n")
    old = time.time() - 60  # outside the racy window: signatures may be kept
    for name in ("in.txt", "up.py"):
        os.utime(root / name, (old, old))
    return root


CMD = f"{PY} up.py in.txt > out.txt"


def _index() -> sqlite3.Connection:
    return sqlite3.connect(cache_dir() / "index.sqlite")


def _sigs() -> list[str | None]:
    with _index() as db:
        return [r[0] for r in db.execute("SELECT sigs FROM run_facts")]


def _recorded(project: Path) -> None:
    res = run_command(CMD, shell=True, cwd=project, capture="python")
    assert res.exit_status == 0 and res.recorded


def test_signatures_are_kept_and_spare_the_stat_cache(project: Path) -> None:
    _recorded(project)
    assert _sigs() == [None]
    assert plan_command(CMD, cwd=str(project)).action == "reuse"  # verified through digests
    kept = _sigs()[0]
    assert kept and str((project / "in.txt").stat().st_ino) in kept
    # with the signature kept, an unchanged input is proved by one stat: no stat cache at all
    rc = RunCache.from_env(str(project))
    rc.statcache.path = project / "no-such-dir" / "statcache.sqlite"
    rc.statcache.verified = None  # type: ignore[assignment]  # any call would fail loudly
    try:
        plans = plan_commands([StageSpec(CMD, str(project))], cache=rc)
    finally:
        rc.close()
    assert plans[0].action == "reuse" and plans[0].on_disk is True


def test_touch_refreshes_the_signature_and_reuses(project: Path) -> None:
    _recorded(project)
    plan_command(CMD, cwd=str(project))
    before = _sigs()[0]
    old = time.time() - 30
    os.utime(project / "in.txt", (old, old))  # a touch: new mtime and ctime, same bytes
    assert plan_command(CMD, cwd=str(project)).action == "reuse"
    after = _sigs()[0]
    assert after and after != before
    assert plan_command(CMD, cwd=str(project)).action == "reuse"


def test_fresh_files_get_no_signature(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statcache, "RACY_NS", 3600 * 10**9)  # every file changed "just now"
    _recorded(project)
    assert plan_command(CMD, cwd=str(project)).action == "reuse"
    assert _sigs() == [None]  # proved through digests, but no signature may stand for them


def test_changed_byte_with_mtime_put_back_is_a_change(project: Path) -> None:
    _recorded(project)
    plan_command(CMD, cwd=str(project))
    st = (project / "in.txt").stat()
    (project / "in.txt").write_text("HELLO\n")  # same size
    os.utime(project / "in.txt", ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime, new ctime
    plan = plan_command(CMD, cwd=str(project))
    assert plan.action == "run" and plan.reason.startswith("input in.txt changed (recorded ")


def test_deleted_input_and_deleted_output(project: Path) -> None:
    _recorded(project)
    plan_command(CMD, cwd=str(project))
    (project / "out.txt").unlink()
    plan = plan_command(CMD, cwd=str(project))
    assert plan.action == "reuse" and plan.on_disk is False  # restored by the runner, not skipped
    (project / "in.txt").unlink()
    assert plan_command(CMD, cwd=str(project)).action == "run"


def test_failed_run_has_no_facts(project: Path) -> None:
    (project / "bad.py").write_text("raise SystemExit(3)\n")
    cmd = f"{PY} bad.py"
    run_command(cmd, shell=True, cwd=project, capture="python")
    with _index() as db:
        assert db.execute("SELECT COUNT(*) FROM run_facts").fetchone()[0] == 0
    assert plan_command(cmd, cwd=str(project)).action == "run"


def _make_old(index: Path) -> None:
    """Turn an index into what sharklib wrote before reuse facts existed."""
    with sqlite3.connect(index) as db:
        db.execute("DROP TRIGGER runs_need_facts")
        db.execute("DROP TABLE run_facts")
        db.execute("DROP TABLE facts_missing")
        db.execute("PRAGMA user_version=0")


def test_an_older_index_is_migrated_lazily(project: Path) -> None:
    _recorded(project)
    _make_old(cache_dir() / "index.sqlite")
    plan = plan_command(CMD, cwd=str(project))
    assert plan.action == "reuse", plan.reason
    with _index() as db:
        assert db.execute("SELECT COUNT(*) FROM run_facts").fetchone()[0] == 1
        assert db.execute("SELECT COUNT(*) FROM facts_missing").fetchone()[0] == 0
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_run_indexed_by_an_older_sharklib_is_seen(project: Path) -> None:
    _recorded(project)
    with _index() as db:
        db.execute("DELETE FROM run_facts")  # as if an older sharklib had added the run
        (rid,) = db.execute("SELECT run_id FROM runs").fetchone()
        db.execute("INSERT INTO facts_missing (run_id, key) SELECT run_id, key FROM runs")
    assert plan_command(CMD, cwd=str(project)).run_id == rid
    # an insert by older code fires the trigger: the marker is made by the database itself
    with _index() as db:
        db.execute("PRAGMA foreign_keys=ON")
        row = db.execute("SELECT * FROM runs").fetchone()
        cols = [d[0] for d in db.execute("SELECT * FROM runs").description]
        newer = dict(zip(cols, row, strict=True))
        newer["run_id"] = "f" * 32
        newer["created"] += 1
        db.execute(f"INSERT INTO runs ({','.join(newer)}) VALUES ({','.join('?' * len(newer))})",
                   tuple(newer.values()))
        assert db.execute("SELECT run_id FROM facts_missing").fetchall() == [("f" * 32,)]
    assert plan_command(CMD, cwd=str(project)).run_id == "f" * 32


def test_damaged_facts_are_derived_again_and_damaged_entries_refused(project: Path) -> None:
    _recorded(project)
    with _index() as db:
        db.execute("UPDATE run_facts SET facts=?, sigs=?", ("2\0garbage", "x"))
    assert plan_command(CMD, cwd=str(project)).action == "reuse"
    with _index() as db:
        assert db.execute("SELECT facts FROM run_facts").fetchone()[0].startswith(f"{FACTS_VERSION}\0")
        (key,) = db.execute("SELECT key FROM runs").fetchone()
        db.execute("UPDATE run_facts SET facts=?", ("1\0-5",))
        db.execute("UPDATE runs SET entry='{not json'")
    index = RunIndex(cache_dir() / "index.sqlite")
    try:
        with pytest.raises(StoreError) as err:
            index.reuse_facts([key])
    finally:
        index.close()
    assert "\n" not in str(err.value) and "index.sqlite" in str(err.value)


@pytest.mark.parametrize("command", [
    "python step.py in.txt > out.txt", "echo 'héllo wörld' > ü.txt", "printf '\\t\"q\"\\n'",
    "cat caf\udce9.txt", "/bin/echo absolute", "", "x" * 5000,
])
def test_vectorised_keys_equal_the_model(project: Path, command: str) -> None:
    for tag in (None, "envA"):
        specs = [StageSpec(command, str(project), True, tag), StageSpec(command, str(project), True, tag)]
        keys, roots = stage_keys(specs)
        parts, root = stage_key(command, shell=True, cwd=str(project), env_tag=tag)
        assert keys == [parts.digest()] * 2 and roots == [root] * 2
    argv = ["python", "step.py", "in.txt"]
    keys, _ = stage_keys([StageSpec(argv, str(project), False)])
    assert keys == [stage_key(argv, shell=False, cwd=str(project))[0].digest()]


def test_outputs_on_disk_from_one_listing(tmp_path: Path) -> None:
    d = tmp_path / "out"
    d.mkdir()
    names = [f"f{i:04d}.txt" for i in range(300)]
    for n in names:
        (d / n).write_text(n)
    (d / "f0007.txt").unlink()
    (d / "f0008.txt").unlink()
    (d / "f0008.txt").symlink_to(d / "nowhere")  # dangling: not on disk
    (d / "f0009.txt").unlink()
    (d / "f0009.txt").symlink_to(d / "f0001.txt")
    plans: list[Plan | None] = [Plan("reuse", "", outputs=[str(d / n)]) for n in names]
    plans.append(Plan("reuse", "", outputs=[str(tmp_path / "single.txt")]))
    plans.append(Plan("run", "new", outputs=[str(d / "f0007.txt")]))
    _mark_on_disk(plans)
    for p in plans[:-1]:
        assert p is not None and p.on_disk == os.path.exists(p.outputs[0]), p.outputs
    assert plans[-1] is not None and plans[-1].on_disk is None


def _record_stage(project: Path, command: str, **extra: object) -> str:
    """Index a run of ``command`` as the stage path would (real files, the stage's run key)."""
    import uuid

    from sharklib.hashing import sha256_file
    from sharklib.model import Artifact, Output, Run
    from sharklib.runner.reuse import record

    (project / "out.txt").write_text("HELLO\n")
    sha, size = sha256_file(project / "in.txt")
    osha, osize = sha256_file(project / "out.txt")
    now = time.time()
    run = Run(run_id=uuid.uuid4().hex, argv=["/bin/sh", "-c", command], cwd=str(project),
              started=now - 3, ended=now, exit_status=0,
              inputs=[Artifact(str(project / "in.txt"), sha, size)],
              outputs=[Output(str(project / "out.txt"), osha, osize)],
              run_key=stage_key(command, shell=True, cwd=str(project))[0].digest())
    for name, value in extra.items():
        setattr(run, name, value)
    assert record(run, root=str(project)) is not None
    return run.run_id


def test_a_changed_distribution_is_an_environment_change(project: Path) -> None:
    from sharklib.model import Environment

    cmd = "cat in.txt > out.txt"
    rid = _record_stage(project, cmd, environment=Environment(distributions={"pytest": "0.0.1"}))
    plan = plan_command(cmd, cwd=str(project))
    assert plan.action == "run" and plan.run_id == rid
    assert plan.reason.startswith("environment changed: pytest 0.0.1 -> ")


def test_an_untrusted_download_is_not_reused(project: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from sharklib.model import Download

    monkeypatch.setenv("SHARKLIB_DOWNLOAD_POLICY", "strict")
    cmd = "cat in.txt > out.txt"
    _record_stage(project, cmd, downloads=[Download("https://example.org/moving.csv", "0" * 64)])
    assert plan_command(cmd, cwd=str(project)).reason == ("download https://example.org/moving.csv "
                                                       "not pinned (download policy strict)")
    monkeypatch.setenv("SHARKLIB_DOWNLOAD_POLICY", "trust")
    assert plan_command(cmd, cwd=str(project)).action == "reuse"
