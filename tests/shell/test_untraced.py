"""Where no native tracer can run: Python lines are recorded by the Python capture, others run
unrecorded, and the shell says so once."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest


def test_python_capture_only(workspace: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    import sharklib.trace.session as trace_session
    from sharklib.errors import SharkError
    from sharklib.shell.session import Shell

    def refuse(requested: str) -> str:
        # the boundary that cannot be reproduced here: a machine without eBPF and strace
        raise SharkError("cannot trace here: eBPF: not permitted; ptrace: strace is not installed")

    monkeypatch.setattr(trace_session, "choose_backend", refuse)
    monkeypatch.chdir(workspace)
    shell = Shell(str(workspace), new=True, out=io.StringIO())
    try:
        assert shell.mode == "python"
        py = shell.execute("python -c \"open('made.txt', 'w').write('1')\"")
        sh = shell.execute("echo a > other.txt")
        shell.execute("ls")
    finally:
        shell.close()
    err = capsys.readouterr().err
    assert err.count("the native tracer cannot run here") == 1
    assert "other commands run unrecorded" in err
    assert py.kind == "mutate" and [c.path for c in py.changes] == ["made.txt"]
    assert sh.kind == "untraced" and os.path.exists(workspace / "other.txt")
