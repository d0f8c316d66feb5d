"""Faults: missing commands, signals, daemons, floods; refusing where no backend can run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from trace_support import inputs, root, run_traced

from sharklib.errors import TraceError
from sharklib.trace import choose_backend

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "sharklib", "trace", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)  # type: ignore[call-overload]


def test_command_not_found(tmp_path: Path, backend: str) -> None:
    res = run_traced(["no-such-command-xyz"], backend, tmp_path)
    assert res.exit_status == 127
    assert res.messages == ["command not found: no-such-command-xyz"]
    proc = _cli("--backend", backend, "--", "no-such-command-xyz", cwd=tmp_path)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 127
    assert err.strip() == "sharklib: error: command not found: no-such-command-xyz"


def test_script_with_a_missing_interpreter(tmp_path: Path, backend: str) -> None:
    script = tmp_path / "bad.sh"
    script.write_text("#!/nonexistent/interpreter\n")
    script.chmod(0o755)
    res = run_traced([str(script)], backend, tmp_path)
    assert res.exit_status != 0 and res.sidecars == []
    if backend == "ebpf":
        assert (res.exit_status, res.messages) == (
            127, [f"cannot execute {script}: No such file or directory"])


def test_exit_on_a_signal_is_faithful(tmp_path: Path, backend: str) -> None:
    res = run_traced(["sh", "-c", "echo x > before.txt; kill -TERM $$"], backend, tmp_path)
    assert (res.exit_status, res.signal) == (128 + signal.SIGTERM, signal.SIGTERM)
    assert root(res).exit_status == -signal.SIGTERM
    assert (tmp_path / "before.txt.intoto.jsonl").exists()
    proc = _cli("--backend", backend, "--", "sh", "-c", "kill -SEGV $$", cwd=tmp_path)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGSEGV


def test_signals_are_forwarded_to_the_command(tmp_path: Path, backend: str) -> None:
    proc = _cli("--backend", backend, "--", "sh", "-c", "echo up > started; exec sleep 60",
                cwd=tmp_path)
    deadline = time.monotonic() + 30
    while not (tmp_path / "started").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM


def test_daemon_outliving_the_command(tmp_path: Path, backend: str) -> None:
    res = run_traced(["sh", "-c", "(sleep 2; echo late > late.txt) & echo early > early.txt"],
                     backend, tmp_path)
    assert res.exit_status == 0
    run = root(res)
    assert any("outlived the command" in w for w in run.warnings), run.warnings
    assert {os.path.basename(o.path) for o in run.outputs} == {"early.txt"}


def test_flood_of_repeated_opens(tmp_path: Path, backend: str,
                                 cprog: Callable[[str], str]) -> None:
    """A million opens of one file: one input, no loss, no hang."""
    (tmp_path / "f.txt").write_text("x")
    n = 1_000_000 if backend == "ebpf" else 100_000
    res = run_traced([cprog("flood"), "f.txt", "same", str(n)], backend, tmp_path)
    assert res.exit_status == 0
    assert res.dropped == 0 and res.messages == []
    assert inputs(root(res), tmp_path) == {"f.txt"}


def test_flood_of_distinct_events_never_lies(tmp_path: Path, backend: str,
                                             cprog: Callable[[str], str]) -> None:
    """Create+remove 100,000 times: every event is news. All arrive, or the loss is an error."""
    n = 100_000 if backend == "ebpf" else 20_000
    res = run_traced([cprog("flood"), "t.tmp", "churn", str(n)], backend, tmp_path)
    assert res.exit_status == 0
    if res.dropped:
        assert res.sidecars == [] and res.runs == []
        assert res.messages[0].startswith(f"the tracer lost {res.dropped} events")
    else:
        assert res.messages == []
        assert root(res).temporaries == [str(tmp_path / "t.tmp")]


def test_refuses_with_one_line_where_nothing_can_trace(tmp_path: Path) -> None:
    """As an unprivileged user without strace on PATH, neither backend can run."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to become an unprivileged user")
    env = {"PATH": "/nonexistent", "HOME": str(tmp_path), "SHARKLIB_HOME": str(tmp_path)}
    os.chmod(tmp_path, 0o777)
    proc = subprocess.run([shutil.which("setpriv") or "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           sys.executable, "-m", "sharklib", "trace", "--", "/bin/true"],
                          cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sharklib: error: cannot trace here: eBPF:")
    assert "strace is not installed" in lines[0]


def test_requested_backend_unavailable_is_one_line() -> None:
    os.environ["PATH"], saved = "/nonexistent", os.environ["PATH"]
    try:
        with pytest.raises(TraceError, match="ptrace backend unavailable: strace is not installed"):
            choose_backend("ptrace")
    finally:
        os.environ["PATH"] = saved


def test_ctrl_c_reaches_the_traced_command(tmp_path: Path, backend: str) -> None:
    """The terminal's SIGINT goes to the whole process group: the command must still take it."""
    status = subprocess.run(["grep", "SigIgn", "/proc/self/status"], capture_output=True,
                            text=True, check=True).stdout.split()[1]
    res = run_traced(["sh", "-c", "grep SigIgn /proc/self/status > ign.txt"], backend, tmp_path)
    assert res.exit_status == 0
    assert (tmp_path / "ign.txt").read_text().split()[1] == status  # as untraced
    proc = _cli("--backend", backend, "--", "sh", "-c", "echo up > started; exec sleep 60",
                cwd=tmp_path, start_new_session=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "started").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGINT
