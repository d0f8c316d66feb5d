"""One loaded eBPF tracer shared by commands started from threads of one process.

A pipeline run loads the tracer once; every stage's process tree must still
be recorded exactly, and only under its own command, however the stages
interleave (including descendants forked before their root was claimed).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import subprocess
from pathlib import Path

import pytest

from sharklib.trace import ebpf
from sharklib.trace.service import active, shared_tracing
from sharklib.trace.session import trace_command


@pytest.fixture
def ebpf_only() -> None:
    why = ebpf.unavailable_reason()
    if why:
        pytest.skip(f"eBPF backend unavailable: {why}")


def _one(work: Path, i: int) -> tuple[int, set[str], set[str], list[str]]:
    # dash forks cat (not the last command) and execs cp in place: both kinds of tree
    res = trace_command(["/bin/sh", "-c", f"cat in{i} > out{i}; cp in{i} copy{i}"], cwd=str(work),
                        sign=False, stdout=subprocess.DEVNULL)
    assert res.exit_status == 0, res.messages
    assert not res.incomplete, res.incomplete
    ins = {os.path.basename(a.path) for r in res.runs for a in r.inputs}
    outs = {os.path.basename(o.path) for r in res.runs for o in r.outputs}
    execs = [os.path.basename(e.path) for r in res.runs for e in r.execs]
    return i, ins, outs, execs


def test_many_commands_from_threads_each_get_exactly_their_own_tree(
        tmp_path: Path, ebpf_only: None) -> None:
    for i in range(90):
        (tmp_path / f"in{i}").write_text(str(i) * 10)
    with shared_tracing() as service:
        assert service is not None and active() is service
        with cf.ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda i: _one(tmp_path, i), range(90)))
    assert active() is None
    for i, ins, outs, execs in results:
        assert ins == {f"in{i}"}, (i, ins)
        assert outs == {f"out{i}", f"copy{i}"}, (i, outs)
        assert "cat" in execs and "cp" in execs, (i, execs)


def test_processes_started_outside_a_command_are_not_recorded(tmp_path: Path,
                                                              ebpf_only: None) -> None:
    (tmp_path / "secret").write_text("x")
    (tmp_path / "data").write_text("y")
    with shared_tracing():
        subprocess.run(["cat", "secret"], cwd=tmp_path, stdout=subprocess.DEVNULL, check=True)
        _, ins, outs, _ = _one_named(tmp_path)
    assert ins == {"data"} and outs == {"data.out"}


def _one_named(work: Path) -> tuple[int, set[str], set[str], list[str]]:
    res = trace_command(["/bin/sh", "-c", "cat data > data.out"], cwd=str(work), sign=False)
    ins = {os.path.basename(a.path) for r in res.runs for a in r.inputs}
    outs = {os.path.basename(o.path) for r in res.runs for o in r.outputs}
    return 0, ins, outs, []


def test_nested_shared_tracing_reuses_the_outer_service(ebpf_only: None) -> None:
    with shared_tracing() as outer, shared_tracing() as inner:
        assert outer is inner is active()
    assert active() is None
