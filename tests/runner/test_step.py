"""One Step path: trace is reused like everything else, one launcher, one decision, --explain.

Executions are counted through a side effect outside what sharklib records:
a line appended to a file under ``/dev/shm`` (``/dev`` is never an input or
output of a step), not through sharklib's messages.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sharklib.runner import plan_command, run_command
from sharklib.runner.step import Step

PY = shlex.quote(sys.executable)


@pytest.fixture
def counter() -> Iterator[Path]:
    if not os.access("/dev/shm", os.W_OK):
        pytest.skip("no writable /dev/shm to count executions in")
    path = Path("/dev/shm") / f"sharklib-step-{uuid.uuid4().hex}"
    path.write_text("")
    yield path
    path.unlink(missing_ok=True)


def runs(counter: Path) -> int:
    return len(counter.read_text().splitlines())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()  # the project root marker
    (tmp_path / "in.txt").write_text("hello\n")
    (tmp_path / "helper.py").write_text("def shout(s):\n    return s.upper()\n")
    old = time.time() - 60
    for name in ("in.txt", "helper.py"):
        os.utime(tmp_path / name, (old, old))
    return tmp_path


def sharklib(*args: str, cwd: Path, env: dict[str, str] | None = None,
             stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sharklib", *args], cwd=cwd, text=True,
                          capture_output=True, env=env, stdin=stdin, check=False)


def _tracer_or_skip() -> None:
    from sharklib.trace.session import choose_backend

    try:
        choose_backend("auto")
    except Exception as exc:
        pytest.skip(f"no native tracer here: {exc}")


# -- sharklib trace is a step like any other ---------------------------------------------------
def test_trace_of_an_unchanged_command_is_reused_and_an_edit_reruns_it(
        project: Path, counter: Path) -> None:
    _tracer_or_skip()
    cmd = ["sh", "-c", f"echo x >> {counter}; cat in.txt > out.txt"]
    first = sharklib("trace", "-q", "--", *cmd, cwd=project)
    assert first.returncode == 0, first.stderr
    assert runs(counter) == 1 and (project / "out.txt").read_text() == "hello\n"
    explain = sharklib("trace", "--explain", "--", *cmd, cwd=project)
    assert explain.returncode == 0 and "would be reused" in explain.stdout, explain
    (project / "out.txt").unlink()
    second = sharklib("trace", "-q", "--", *cmd, cwd=project)
    assert second.returncode == 0, second.stderr
    assert runs(counter) == 1, "an unchanged traced command ran again"
    assert (project / "out.txt").read_text() == "hello\n"  # restored from the cache
    (project / "in.txt").write_text("changed\n")
    explain = sharklib("trace", "--explain", "--", *cmd, cwd=project)
    assert "would run: input in.txt changed (recorded " in explain.stdout, explain
    assert runs(counter) == 1  # --explain runs nothing
    third = sharklib("trace", "-q", "--", *cmd, cwd=project)
    assert third.returncode == 0 and runs(counter) == 2
    assert (project / "out.txt").read_text() == "changed\n"


# -- one launcher ----------------------------------------------------------------------------
def test_a_missing_program_is_one_line_and_127_everywhere(project: Path) -> None:
    lines = {}
    for args in (["run", "-m", "no_such_prog_x"], ["env", "--", "no_such_prog_x"],
                 ["trace", "--", "no_such_prog_x"]):
        done = sharklib(*args, cwd=project)
        assert done.returncode == 127, (args, done.stderr)
        lines[args[0]] = done.stderr.strip()
    stage = subprocess.run(
        [sys.executable, "-c",
         "import sys; from sharklib.runner import run_command; "
         "sys.exit(run_command('no_such_prog_x --flag > out.txt', shell=True).exit_status)"],
        cwd=project, text=True, capture_output=True, check=False)
    assert stage.returncode == 127, stage.stderr
    lines["stage"] = stage.stderr.strip()
    assert set(lines.values()) == {"sharklib: error: command not found: no_such_prog_x"}, lines


# -- one decision: the plan's prediction is what the run does; --explain says why ----------
def test_plan_and_explain_agree_with_the_run_over_a_corpus_of_edits(
        project: Path, counter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "step.py").write_text(
        "import sys\nfrom helper import shout\n"
        f"open({str(counter)!r}, 'a').write('x\\n')\n"
        "open('out.txt', 'w').write(shout(open('in.txt').read()) + ' '.join(sys.argv[1:]))\n")
    old = time.time() - 60
    os.utime(project / "step.py", (old, old))
    base = f"{PY} step.py"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    def both(cmd: str) -> tuple[str, str, bool]:
        plan = plan_command(cmd, cwd=str(project))
        said = Step(cmd, shell=True, cwd=project, capture="python").explain().text()
        before = runs(counter)
        result = run_command(cmd, shell=True, cwd=project, capture="python")
        assert result.exit_status == 0
        ran = runs(counter) > before
        assert ran == (plan.action == "run"), (cmd, plan)
        assert ran == ("would run" in said), (cmd, said)
        return plan.reason, said, ran

    both(base)
    reason, said, ran = both(base)
    assert not ran and reason == "inputs unchanged" and "would be reused" in said

    os.utime(project / "in.txt")  # touched, same content
    reason, said, ran = both(base)
    assert not ran, reason

    (project / "in.txt").write_text("other\n")
    reason, said, ran = both(base)
    assert ran and reason.startswith("input in.txt changed (recorded "), reason
    assert "input in.txt changed (recorded " in said

    (project / "helper.py").write_text("def shout(s):\n    return s.upper()  # louder\n")
    reason, said, ran = both(base)
    assert ran and reason == "code changed: helper.py", reason

    reason, said, ran = both(base + " --flag")
    assert ran and reason.startswith("new: no past run"), reason
    assert "no past run with this key" in said and "command line differs" in said, said

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    reason, said, ran = both(base)
    # the plan's reason names the key difference to the same command's last run, too
    assert ran and reason == \
        "new key: environment differs: env:OMP_NUM_THREADS (recorded 1, now 2)", reason
    assert "OMP_NUM_THREADS" in said, said
    reason, said, ran = both(base)
    assert not ran


def test_explain_runs_nothing_and_names_the_first_reason(project: Path, counter: Path) -> None:
    (project / "step.py").write_text(
        "from helper import shout\n"
        f"open({str(counter)!r}, 'a').write('x\\n')\n"
        "open('out.txt', 'w').write(shout(open('in.txt').read()))\n")
    first = sharklib("run", "--explain", "step.py", cwd=project)
    assert first.returncode == 0 and first.stdout.strip() == \
        "sharklib: step.py: would run: no past run with this key", first
    assert runs(counter) == 0 and not (project / "out.txt").exists()
    done = sharklib("run", "-q", "step.py", cwd=project)
    assert done.returncode == 0 and runs(counter) == 1, done.stderr
    again = sharklib("run", "--explain", "step.py", cwd=project)
    assert "step.py: would be reused (run " in again.stdout, again
    env_explain = sharklib("env", "--explain", "--", sys.executable, "step.py", cwd=project)
    assert env_explain.returncode == 0 and "would be reused" in env_explain.stdout, env_explain
    (project / "helper.py").write_text("def shout(s):\n    return s\n")
    changed = sharklib("run", "--explain", "step.py", cwd=project)
    assert changed.stdout.strip() == "sharklib: step.py: would run: code changed: helper.py"
    assert runs(counter) == 1


# -- downloads in the same corpus: revalidation, no validator, pins ----------------------------
class _Server:
    """A loopback HTTP server whose one file may carry an ETag (304 on a matching If-None-Match)."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        state = self
        self.body = b"x,y\n1,2\n"
        self.etag: str | None = '"v1"'

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if state.etag and self.headers.get("If-None-Match") == state.etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(state.body)))
                if state.etag:
                    self.send_header("ETag", state.etag)
                self.end_headers()
                self.wfile.write(state.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/table.csv"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    yield srv
    srv.close()


def test_plan_and_explain_agree_with_the_run_on_downloads_and_pins(
        project: Path, counter: Path, server: _Server) -> None:
    (project / "fetch.py").write_text(
        "import urllib.request\n"
        f"open({str(counter)!r}, 'a').write('x\\n')\n"
        f"data = urllib.request.urlopen({server.url!r}).read()\n"
        "open('table.csv', 'wb').write(data)\n")
    cmd = f"{PY} fetch.py"

    def both(pins: dict[str, str] | None = None) -> tuple[str, str, bool]:
        from sharklib.runner import StageSpec, plan_commands

        plan = plan_commands([StageSpec(cmd, str(project), pins=pins)])[0]
        said = Step(cmd, shell=True, cwd=project, capture="python", pins=pins).explain().text()
        before = runs(counter)
        result = run_command(cmd, shell=True, cwd=project, capture="python", pins=pins)
        assert result.exit_status == 0
        ran = runs(counter) > before
        assert ran == (plan.action == "run"), (plan, ran)
        assert ran == ("would run" in said), (said, ran)
        return plan.reason, said, ran

    both()
    reason, said, ran = both()
    assert not ran, reason  # revalidated: the server answers 304 to the recorded ETag
    server.etag = None  # a server that gives no validator: nothing proves the bytes unchanged
    both()  # (the recorded ETag no longer matches: runs, and is recorded without a validator)
    reason, said, ran = both()
    assert ran and reason == f"download {server.url} not revalidated: no ETag/Last-Modified"
    assert said.endswith(f"would run: download {server.url} not revalidated: "
                         "no ETag/Last-Modified"), said
    import hashlib

    pin = hashlib.sha256(server.body).hexdigest()
    reason, said, ran = both({server.url: pin})
    assert not ran, reason  # pinned: trusted without asking the server
    reason, said, ran = both({server.url: "0" * 64})
    assert ran and reason == f"download {server.url} differs from its pin", reason
