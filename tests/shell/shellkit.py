"""Helpers for the shell tests: a workspace's files, a connection counter, the shell as a subprocess."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

CLEAN = """\
import os, socket, sys
# the side effect that counts executions: one connection to the test's counter
with socket.create_connection(("127.0.0.1", int(os.environ["SHELL_TEST_PORT"]))) as s:
    s.sendall(b"clean\\n")
rows = [l.strip() for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
print(rows[0])
for row in sorted(rows[1:]):
    site, count = row.split(",")
    print(f"{site.strip().lower()},{int(count)}")
"""

SUMMARY = """\
import sys
rows = [l.strip().split(",") for l in open(sys.argv[1], encoding="utf-8")][1:]
total = {}
for site, count in rows:
    total[site] = total.get(site, 0) + int(count)
for site in sorted(total):
    print(f"{site}\\t{total[site]}")
"""


def tracer_reason() -> str | None:
    """Why no native tracer can record here (None when one can)."""
    from sharklib.trace import ebpf, ptrace

    e, p = ebpf.unavailable_reason(), ptrace.unavailable_reason()
    return None if e is None or p is None else f"eBPF: {e}; ptrace: {p}"


class Counter:
    """A loopback TCP server counting connections: a command's executions, seen from outside."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.recv(64)
                self.count += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def shell_env(counter: Counter | None = None) -> dict[str, str]:
    """The environment a user's terminal would give: the test venv's python first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", os.defpath)
    env["SHELL"] = "/bin/bash"
    if counter is not None:
        env["SHELL_TEST_PORT"] = str(counter.port)
    return env


def make_workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "project"
    (ws / "data").mkdir(parents=True)
    (ws / "steps").mkdir()
    (ws / "data" / "raw.csv").write_text(
        "site,count\nNorth,3\nsouth,4\nEast,1\nnorth,2\nSouth,5\n", encoding="utf-8")
    (ws / "steps" / "clean.py").write_text(CLEAN, encoding="utf-8")
    (ws / "steps" / "summary.py").write_text(SUMMARY, encoding="utf-8")
    return ws


def run_shell(ws: Path, script: str, env: dict[str, str], *args: str,
              timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``sharklib shell`` in ``ws`` reading ``script`` from a pipe (a scripted session)."""
    return subprocess.run([sys.executable, "-m", "sharklib", "shell", *args], cwd=ws, env=env,
                          input=script, capture_output=True, text=True, timeout=timeout,
                          check=False)
