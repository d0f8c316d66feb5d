"""``:export`` of a result that started with a download: the download becomes a pinned import."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from shellkit import run_shell, shell_env


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "sites.csv").write_text("site,count\nnorth,3\nsouth,4\nnorth,1\n")
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.timeout(600)
def test_download_exported_as_pinned_import(traced: None, workspace: Path, server: str,
                                            tmp_path: Path) -> None:
    env = shell_env()
    url = f"{server}/sites.csv"
    script = (f"python -c \"import urllib.request as u; u.urlretrieve('{url}', "
              "'data/sites.csv')\"\n"
              "python steps/summary.py data/sites.csv > counts.txt\n"
              "cat counts.txt\n"
              ":export dl.md counts.txt\n")
    res = run_shell(workspace, script, env)
    assert res.returncode == 0, res.stderr
    assert "north\t4\nsouth\t4\n" in res.stdout
    doc = (workspace / "dl.md").read_text()
    digest = hashlib.sha256((workspace / "data" / "sites.csv").read_bytes()).hexdigest()
    assert f"{url} data/sites.csv sha256:{digest}" in doc
    assert "urlretrieve" not in doc  # the download is an import, not a command

    clean = tmp_path / "clean"
    (clean / "steps").mkdir(parents=True)
    shutil.copy(workspace / "steps" / "summary.py", clean / "steps" / "summary.py")
    shutil.copy(workspace / "dl.md", clean / "dl.md")
    run = subprocess.run([sys.executable, "-m", "sharklib", "pipeline", "run", "dl.md"],
                         cwd=clean, env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (clean / "counts.txt").read_bytes() == (workspace / "counts.txt").read_bytes()


@pytest.mark.timeout(600)
def test_multi_line_commands_export_as_typed(traced: None, tmp_path: Path) -> None:
    """A command typed over several lines (a newline inside quotes, a ``for`` loop) runs in the
    exported pipeline as it ran at the prompt: same bytes in a clean copy."""
    ws = tmp_path / "project"
    ws.mkdir()
    env = shell_env()
    script = ("printf 'a\nb\\n' > f.txt\n"
              "for i in 1 2; do\n  echo $i >> g.txt\ndone\n"
              "cat f.txt g.txt > h.txt\n"
              ":export rebuild.md h.txt\n")
    res = run_shell(ws, script, env)
    assert res.returncode == 0, res.stderr
    assert (ws / "h.txt").read_text() == "a\nb\n1\n2\n"
    assert "wrote rebuild.md: 3 commands" in res.stdout, res.stdout + res.stderr

    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copy(ws / "rebuild.md", clean / "rebuild.md")
    run = subprocess.run([sys.executable, "-m", "sharklib", "pipeline", "run", "rebuild.md"],
                         cwd=clean, env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (clean / "h.txt").read_bytes() == (ws / "h.txt").read_bytes()
