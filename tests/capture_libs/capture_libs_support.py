"""Helpers for the library-patch tests: run real scripts under capture, serve bytes on loopback."""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import http.server
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from sharklib.model import Run

REPO = Path(__file__).resolve().parents[2]
SHIM = Path(__file__).resolve().parent / "shim"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class Captured:
    """One script run under ``python -m sharklib run`` and the Run its process recorded."""

    proc: subprocess.CompletedProcess[str]
    run: Run
    cwd: Path

    def inputs(self) -> dict[str, str]:
        return {a.path: a.sha256 for a in self.run.inputs}

    def outputs(self) -> dict[str, str]:
        return {o.path: o.sha256 for o in self.run.outputs}


def run_captured(cwd: Path, script: str, *args: str, shim: bool = True,
                 timeout: float = 120, python: str = sys.executable) -> Captured:
    """Write ``script`` to ``cwd/script.py`` and run it under capture; return its top-level Run.

    ``python``: the interpreter (of a venv with sharklib installed) that runs ``sharklib run``.
    """
    path = cwd / "script.py"
    path.write_text(textwrap.dedent(script))
    session = cwd.parent / f"{cwd.name}-session"
    session.mkdir(exist_ok=True)
    env = dict(os.environ)
    env["SHARKLIB_SESSION"] = str(session)
    if shim:
        env["SHARKLIB_TEST_LIBS_SHIM"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(SHIM)] * shim + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    proc = subprocess.run([python, "-m", "sharklib", "run", "-q", "script.py", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    runs = []
    for f in sorted((session / "runs").glob("*.json")):
        runs.append(Run.from_dict(json.loads(f.read_text())))
    top = [r for r in runs if r.parent is None]
    assert len(top) == 1, f"expected one top-level run, got {len(top)}\n{proc.stderr}"
    return Captured(proc=proc, run=top[0], cwd=cwd)


def gdal_python(bindings: str) -> str:
    """The interpreter whose GDAL bindings a test runs against, or skip saying why.

    ``debian``: this venv's, built against Debian's libgdal (scripts/prepare.d/20-gdal-python.sh),
    the oldest supported. ``newest``: ``.venv-gdal``'s, the newest GDAL wheel on PyPI
    (scripts/prepare.d/30-gdal-wheel.sh).
    """
    import pytest

    py = sys.executable if bindings == "debian" else str(REPO / ".venv-gdal" / "bin" / "python")
    probe = subprocess.run([py, "-c", "from osgeo import gdal, ogr; print(gdal.__version__)"],
                           capture_output=True, text=True, check=False) \
        if os.path.exists(py) else None
    if probe is None or probe.returncode != 0:
        pytest.skip(f"GDAL bindings ({bindings}) are not installed for {py} "
                    f"(scripts/prepare.d builds them in CI)")
    return py


def data_inputs(captured: Captured) -> set[str]:
    """Data inputs of the run, minus the script itself."""
    return {p for p in captured.inputs() if not p.endswith("/script.py")}


# -- a loopback HTTP server ----------------------------------------------------------------

PAYLOAD = bytes((i * 7 + i // 251) % 256 for i in range(300_000))
BIG = hashlib.sha256(b"seed").digest() * (8 * 1024 * 1024 // 32)  # 8 MiB, streamed in chunks
ETAG = '"sharklib-test-etag"'
LAST_MODIFIED = email.utils.formatdate(1_700_000_000, usegmt=True)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _head(self, status: int, length: int | None, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("ETag", ETAG)
        self.send_header("Last-Modified", LAST_MODIFIED)
        self.send_header("Content-Type", "application/octet-stream")
        if length is not None:
            self.send_header("Content-Length", str(length))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def do_HEAD(self) -> None:
        self._head(200, len(PAYLOAD))

    def do_GET(self) -> None:
        self.path = self.path.split("?", 1)[0]  # a query (a token, a signature) names the same file
        if self.path == "/data.bin":
            self._head(200, len(PAYLOAD))
            self.wfile.write(PAYLOAD)
        elif self.path == "/big.bin":
            self._head(200, None, {"Transfer-Encoding": "chunked"})
            view = memoryview(BIG)
            for i in range(0, len(view), 65536):
                chunk = view[i:i + 65536]
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + bytes(chunk) + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/gzip.txt":
            body = gzip.compress(PAYLOAD)
            self._head(200, len(body), {"Content-Encoding": "gzip"})
            self.wfile.write(body)
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/data.bin")
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"mov")
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
