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
