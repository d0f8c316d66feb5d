"""The reuse decision against a real content store and index: record a run, then check it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sharklib.cache.entry import IndexEntry, StoredObject
from sharklib.cache.runcache import RunCache
from sharklib.errors import StoreError
from sharklib.hashing import sha256_bytes
from sharklib.model import Output
from sharklib.runner import proof
from sharklib.runner.reuse import check, record, safe_destination
from tests.cache.conftest import tamper_object


@pytest.fixture
def step(project: Path, write, make_run):  # type: ignore[no-untyped-def]
    """Record-ready Run of ``step.py data/in.txt`` that wrote out/result.txt."""
    def _step(out_text: str = "result\n", **kw):  # type: ignore[no-untyped-def]
        out = write(project / "out" / "result.txt", out_text)
        return make_run(project, ["step.py", "data/in.txt"], [project / "data" / "in.txt"],
                        [out], **kw)
    return _step


@pytest.fixture
def again(project: Path, cache: RunCache, key_for):  # type: ignore[no-untyped-def]
    """The reuse check for that step."""
    def _check(warnings: list[str] | None = None, **kw):  # type: ignore[no-untyped-def]
        return check(key_for(["step.py", "data/in.txt"], project), cwd=str(project),
                     root=str(project), cache=cache,
                     warn=(warnings if warnings is not None else []).append, **kw)
    return _check


def test_second_run_is_reused_and_outputs_restored(project, cache, write, step, again, make_run, key_for):  # type: ignore[no-untyped-def]
    run = step(duration=41.3)
    entry = record(run, root=str(project), cache=cache, stdout=b"42 sharks\n", stderr=b"note\n")
    assert entry is not None
    (project / "out" / "result.txt").unlink()
    d = again()
    assert d is not None
    assert (project / "out" / "result.txt").read_text() == "result\n"
    assert d.stdout == b"42 sharks\n" and d.stderr == b"note\n" and d.exit_status == 0
    assert d.restored == [str(project / "out" / "result.txt")]
    assert d.message.startswith("sharklib: reused run of ")
    assert "(saved 41." in d.message
    assert "1 output restored; inputs unchanged (1 checked)" in d.message
    row = cache.index.rows()[0]
    assert row.uses == 1 and row.saved > 40


def test_output_in_place_is_not_rewritten(project, cache, write, step, again, make_run, key_for):  # type: ignore[no-untyped-def]
    record(step(), root=str(project), cache=cache)
    ino = os.stat(project / "out" / "result.txt").st_ino
    d = again()
    assert d is not None and d.restored == [] and d.in_place == 1
    assert os.stat(project / "out" / "result.txt").st_ino == ino


def test_differing_output_is_restored(project, cache, write, step, again, make_run, key_for):  # type: ignore[no-untyped-def]
    record(step(), root=str(project), cache=cache)
    (project / "out" / "result.txt").write_text("edited by hand")
    d = again()
    assert d is not None and len(d.restored) == 1
    assert (project / "out" / "result.txt").read_text() == "result\n"


def test_touch_does_not_cause_rerun(project, cache, write, step, again, make_run, key_for):  # type: ignore[no-untyped-def]
    record(step(), root=str(project), cache=cache)
    later = time.time() + 5
    os.utime(project / "data" / "in.txt", (later, later))
    assert again() is not None


def test_changed_input_byte_causes_rerun(project, cache, write, step, again, make_run, key_for):  # type: ignore[no-untyped-def]
    record(step(), root=str(project), cache=cache)
    (project / "data" / "in.txt").write_text("hello sharkz\n")
    assert again() is None
    (project / "data" / "in.txt").write_text("hello sharks\n")  # back: reusable again
    assert again() is not None


def test_deleted_input_causes_rerun(project, cache, write, step, again, make_run, key_for):  # type: ignore[no-untyped-def]
    record(step(), root=str(project), cache=cache)
    (project / "data" / "in.txt").unlink()
    assert again() is None


def test_changed_local_module_causes_rerun(project, cache, write, step, again, make_run, key_for):  # type: ignore[no-untyped-def]
    helper = write(project / "helpers.py", "X = 1\n")
    record(step(modules=[helper]), root=str(project), cache=cache)
    assert again() is not None
    helper.write_text("X = 2\n")
    assert again() is None


def test_failed_runs_are_never_reused(project, cache, write, step, again, make_run, key_for):  # type: ignore[no-untyped-def]
    assert record(step(exit_status=1), root=str(project), cache=cache) is None
    # even an index entry for a failed run (e.g. from a remote) is never a candidate
    run = step(exit_status=3)
    cache.index.add(IndexEntry(key=run.run_key, run=run, root=str(project), objects=[]))  # type: ignore[arg-type]
    assert again() is None


def test_rerun_and_no_cache_flags(project, cache, write, step, again, make_run, key_for, monkeypatch):  # type: ignore[no-untyped-def]
    record(step(), root=str(project), cache=cache)
    monkeypatch.setenv("SHARKLIB_RERUN", "1")
    assert again() is None
    monkeypatch.delenv("SHARKLIB_RERUN")
    monkeypatch.setenv("SHARKLIB_NO_CACHE", "1")
    assert again() is None
    assert record(step(out_text="other"), root=str(project), cache=cache) is None
    assert cache.index.count() == 1


def test_distribution_versions_are_checked(project, cache, write, step, again, make_run, key_for):  # type: ignore[no-untyped-def]
    import importlib.metadata

    run = step()
    run.environment.distributions = {"click": "0.0.1"}
    record(run, root=str(project), cache=cache)
    assert again() is None
    run2 = step()
    run2.environment.distributions = {"click": importlib.metadata.version("click")}
    record(run2, root=str(project), cache=cache)
    assert again() is not None


def test_newest_matching_run_wins(project, cache, write, step, again, make_run, key_for):  # type: ignore[no-untyped-def]
    record(step(out_text="from A\n"), root=str(project), cache=cache)
    (project / "data" / "in.txt").write_text("input B\n")
    record(step(out_text="from B\n"), root=str(project), cache=cache)
    (project / "data" / "in.txt").write_text("hello sharks\n")  # back to A's input
    (project / "out" / "result.txt").unlink()
    d = again()
    assert d is not None and (project / "out" / "result.txt").read_text() == "from A\n"


def test_corrupt_object_is_quarantined_and_run_recomputed(project, cache, write, step, again, make_run, key_for):  # type: ignore[no-untyped-def]
    entry = record(step(), root=str(project), cache=cache)
    assert entry is not None
    sha = entry.outputs()[0].sha256
    tamper_object(cache.store, sha, b"bit rot")
    (project / "out" / "result.txt").unlink()
    warnings: list[str] = []
    assert again(warnings) is None
    assert len(warnings) == 1 and "quarantined" in warnings[0] and "running the step" in warnings[0]
    assert (cache.directory / "quarantine" / sha).exists()
    assert not (project / "out" / "result.txt").exists()
    # the recomputed run records the object again and the next check is a hit
    record(step(), root=str(project), cache=cache)
    assert again() is not None


def test_stdout_redirected_to_file_is_replayed_not_restored(project, cache, write, step, again, make_run, key_for):  # type: ignore[no-untyped-def]
    out = write(project / "counts.csv", "a,1\n")
    run = make_run(project, ["count.py"], [project / "data" / "in.txt"], [])
    run.outputs = [Output(path=str(out), sha256=sha256_bytes(b"a,1\n"), size=4, stream="stdout")]
    entry = record(run, root=str(project), cache=cache)
    assert entry is not None and entry.outputs() == [] and entry.stream("stdout") is not None
    out.write_text("")  # the shell truncates the redirect target before the step starts
    d = check(key_for(["count.py"], project), cwd=str(project), root=str(project), cache=cache)
    assert d is not None and d.stdout == b"a,1\n" and d.restored == []


def test_output_outside_root_is_not_cached(project, cache, write, step, again, make_run, key_for, tmp_path):  # type: ignore[no-untyped-def]
    elsewhere = write(tmp_path / "elsewhere" / "o.txt", "x")
    run = make_run(project, ["step.py", "data/in.txt"], [project / "data" / "in.txt"], [elsewhere])
    warnings: list[str] = []
    assert record(run, root=str(project), cache=cache, warn=warnings.append) is None
    assert "outside the project root" in warnings[0]
    assert cache.index.count() == 0


def test_file_changed_after_recording_is_not_cached(project, cache, write, step, again, make_run, key_for):  # type: ignore[no-untyped-def]
    run = step()
    (project / "out" / "result.txt").write_text("changed before record")
    warnings: list[str] = []
    assert record(run, root=str(project), cache=cache, warn=warnings.append) is None
    assert "changed since it was recorded" in warnings[0]


# -- hostile index entries -----------------------------------------------------------------
def _hostile(project: Path, cache: RunCache, path: str, make_run) -> None:  # type: ignore[no-untyped-def]
    run = make_run(project, ["step.py", "data/in.txt"], [project / "data" / "in.txt"], [])
    info = cache.store.put_bytes(b"root::0:0:owned\n")
    entry = IndexEntry(key=run.run_key, run=run, root=str(project),  # type: ignore[arg-type]
                       objects=[StoredObject("output", path, info.sha256, info.size)],
                       inputs=[("data/in.txt", run.inputs[0].sha256)])
    # signed by the user's own key: the path checks hold even for an entry the user trusts
    # (an unsigned one is never restored at all: tests/cache/test_forged_remote.py)
    proof.attach(entry)
    cache.index.add(entry)


@pytest.mark.parametrize("evil", ["../../etc/passwd", "/etc/passwd-sharklib-test", "..",
                                  "out/../../x"])
def test_entry_paths_outside_workspace_are_refused(project, cache, tmp_path, again, make_run, evil):  # type: ignore[no-untyped-def]
    _hostile(project, cache, evil, make_run)
    before = sorted(p.name for p in tmp_path.iterdir())
    warnings: list[str] = []
    assert again(warnings) is None
    assert len(warnings) == 1 and "refusing to restore" in warnings[0]
    assert "\n" not in warnings[0]
    assert not Path("/etc/passwd-sharklib-test").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_symlink_escape_is_refused(project, cache, tmp_path, again, make_run):  # type: ignore[no-untyped-def]
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "link").symlink_to(outside)
    _hostile(project, cache, "link/passwd", make_run)
    warnings: list[str] = []
    assert again(warnings) is None
    assert "symlink" in warnings[0]
    assert list(outside.iterdir()) == []


def test_safe_destination_allows_normal_paths(project):  # type: ignore[no-untyped-def]
    assert safe_destination(str(project), "a/b/c.txt") == str(project / "a" / "b" / "c.txt")
    assert (project / "a" / "b").is_dir()
    with pytest.raises(StoreError):
        safe_destination(str(project), "")


def test_restored_file_keeps_its_mode(project, cache, write, make_run, key_for):  # type: ignore[no-untyped-def]
    tool = write(project / "bin" / "tool.sh", "#!/bin/sh\necho hi\n")
    tool.chmod(0o755)
    record(make_run(project, ["mk.py"], [project / "data" / "in.txt"], [tool]),
           root=str(project), cache=cache)
    tool.unlink()
    assert check(key_for(["mk.py"], project), cwd=str(project), root=str(project),
                 cache=cache) is not None
    assert tool.stat().st_mode & 0o777 == 0o755


def test_record_reads_the_capture_session(project, cache, write, step, again, tmp_path):  # type: ignore[no-untyped-def]
    session = tmp_path / "session"
    (session / "runs").mkdir(parents=True)
    (session / "stdout").write_bytes(b"from the session\n")
    (session / "stderr").write_bytes(b"")
    assert record(step(), str(session), root=str(project), cache=cache) is not None
    d = again()
    assert d is not None and d.stdout == b"from the session\n" and d.stderr == b""
    # a stream too large to keep cannot be replayed: such a run is not cached
    (session / "stdout.truncated").write_bytes(b"")
    warnings: list[str] = []
    assert record(step(out_text="other\n"), str(session), root=str(project), cache=cache,
                  warn=warnings.append) is None
    assert warnings == ["stdout too large to replay; run not cached"]


def test_run_writing_into_git_is_not_cached(project, cache, write, make_run):  # type: ignore[no-untyped-def]
    # a reuse never restores into a version-control directory, so such a run is not cached
    hook = write(project / ".git" / "hooks" / "post-checkout", "#!/bin/sh\n")
    run = make_run(project, ["hook.py"], [project / "data" / "in.txt"], [hook])
    warnings: list[str] = []
    assert record(run, root=str(project), cache=cache, warn=warnings.append) is None
    [line] = warnings
    assert "inside .git/" in line and line.endswith("run not cached"), line
    assert cache.index.count() == 0


def test_unsigned_entry_is_never_restored(project, cache, tmp_path, again, make_run):  # type: ignore[no-untyped-def]
    # an entry without an attestation (edited, or from an older sharklib) proves nothing
    run = make_run(project, ["step.py", "data/in.txt"], [project / "data" / "in.txt"], [])
    info = cache.store.put_bytes(b"owned\n")
    cache.index.add(IndexEntry(key=run.run_key, run=run, root=str(project),  # type: ignore[arg-type]
                               objects=[StoredObject("output", "owned.txt", info.sha256, info.size)],
                               inputs=[("data/in.txt", run.inputs[0].sha256)]))
    warnings: list[str] = []
    assert again(warnings) is None
    assert warnings == []
    assert not (project / "owned.txt").exists()
