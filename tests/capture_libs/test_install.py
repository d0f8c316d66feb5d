"""How the patches are installed: lazily, only under capture, never at the program's expense."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from capture_libs_support import PAYLOAD, REPO, run_captured, sha256

LIBRARIES = ["requests", "httpx", "urllib.request", "fsspec", "osgeo", "rasterio", "fiona",
             "pyogrio", "h5py", "netCDF4", "sqlite3"]


def _python(code: str, cwd: Path, env_extra: dict[str, str] | None = None,
            pythonpath: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_") or k == "SHARKLIB_HOME"}
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_install_imports_none_of_the_libraries(tmp_path: Path) -> None:
    proc = _python(f"""
        import sys
        import sharklib.capture.libs as libs
        libs.install()
        libs.install()
        wanted = {LIBRARIES!r}
        print([m for m in wanted if m in sys.modules])
        print([m for m in sys.modules if m.startswith("sharklib.capture.libs.")])
        print(sorted(libs.applied), "wrapt" in sys.modules)
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    # only the import-hook finder itself; no patch module, no library, not even wrapt
    assert proc.stdout.split("\n")[:3] == ["[]", "['sharklib.capture.libs.import_hooks']",
                                            "[] False"]


def test_hooked_module_keeps_its_real_loader(tmp_path: Path) -> None:
    proc = _python("""
        import sharklib.capture.libs as libs
        libs.install()
        import sqlite3
        import importlib.machinery as m
        print(getattr(sqlite3.connect, "__wrapped__", None) is not None,
              type(sqlite3.__loader__) is m.SourceFileLoader,
              sqlite3.__spec__.loader is sqlite3.__loader__)
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True True True"


def test_patches_absent_when_capture_is_off(tmp_path: Path) -> None:
    """The bootstrap on PYTHONPATH without SHARKLIB_CAPTURE: nothing of sharklib is loaded."""
    proc = _python("""
        import sqlite3, sys, urllib.request
        import requests.adapters, wrapt
        print("sharklib" in sys.modules, "sharklib.capture.libs" in sys.modules)
        print(isinstance(requests.adapters.HTTPAdapter.build_response, wrapt.FunctionWrapper),
              isinstance(urllib.request.OpenerDirector.open, wrapt.FunctionWrapper),
              type(sqlite3.connect).__name__)
    """, tmp_path, pythonpath=str(REPO / "sharklib" / "_bootstrap"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["False False", "False False builtin_function_or_method"]


def test_patch_applies_to_a_library_imported_before_install(tmp_path: Path) -> None:
    proc = _python("""
        import sqlite3
        import sharklib.capture.libs as libs
        libs.install()
        print(getattr(sqlite3.connect, "__wrapped__", None) is not None, sorted(libs.applied))
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True ['sqlite3']"


def test_without_a_recorder_patched_calls_pass_through(tmp_path: Path, http_server: str) -> None:
    proc = _python(f"""
        import hashlib, sqlite3, urllib.request
        import sharklib.capture.libs as libs
        libs.install()
        import requests
        body = requests.get("{http_server}/data.bin").content
        raw = requests.get("{http_server}/data.bin", stream=True).raw
        with urllib.request.urlopen("{http_server}/data.bin") as r:
            other = r.read()
        con = sqlite3.connect("x.db")
        print(hashlib.sha256(body).hexdigest() == hashlib.sha256(other).hexdigest(),
              type(raw).__name__, type(con) is sqlite3.Connection, sorted(libs.applied))
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ("True HTTPResponse True "
                                   "['requests.adapters', 'sqlite3', 'urllib.request']")


def test_a_failing_patch_warns_once_and_the_call_still_works(tmp_path: Path) -> None:
    """Break sharklib's own path helper: the library call must go on, with one warning line."""
    c = run_captured(tmp_path, """
        import sharklib.capture.libs.recording as recording
        def broken(*args, **kwargs):
            raise RuntimeError("simulated sharklib bug")
        recording.local_path = broken
        import sqlite3
        import sharklib.capture.libs.sqlite3_io as sq
        sq.local_path = broken
        for i in range(3):
            con = sqlite3.connect("db%d.sqlite" % i)
            con.execute("create table t (x)")
            con.close()
        print("still running")
    """)
    assert c.proc.returncode == 0
    assert c.proc.stdout == "still running\n"
    warnings = [line for line in c.proc.stderr.splitlines() if "warning" in line]
    assert warnings == ["sharklib: warning: sqlite3.connect: simulated sharklib bug"]


def test_library_errors_reach_the_program_unchanged(tmp_path: Path, http_server: str) -> None:
    script = f"""
        import sqlite3, urllib.error, urllib.request
        import requests
        try:
            urllib.request.urlopen("{http_server}/missing")
        except urllib.error.HTTPError as exc:
            print("urllib", exc.code, type(exc).__name__)
        r = requests.get("{http_server}/missing")
        print("requests", r.status_code, len(r.content))
        try:
            sqlite3.connect("no/such/dir/x.db")
        except sqlite3.OperationalError as exc:
            print("sqlite3", exc)
        import h5py
        h5py.File("absent.h5", "r")
    """
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    plain = _python(script, plain_dir)
    cap_dir = tmp_path / "captured"
    cap_dir.mkdir()
    c = run_captured(cap_dir, script)
    assert c.proc.returncode == plain.returncode == 1
    assert c.proc.stdout == plain.stdout
    assert "FileNotFoundError" in plain.stderr
    assert c.proc.stderr.splitlines()[-1] == plain.stderr.splitlines()[-1]
    assert len(c.run.downloads) == 1 and c.run.downloads[0].status == 404


def test_the_capture_core_installs_the_patches(tmp_path: Path, http_server: str) -> None:
    """Without the test shim: ``python -m sharklib run`` itself must install the patches."""
    c = run_captured(tmp_path, f"""
        import urllib.request
        data = urllib.request.urlopen("{http_server}/data.bin").read()
    """, shim=False)
    assert c.proc.returncode == 0, c.proc.stderr
    assert [d.sha256 for d in c.run.downloads] == [sha256(PAYLOAD)], (
        "sharklib.capture.bootstrap.install() does not call sharklib.capture.libs.install()")


def test_pyarrow_patch_does_not_import_wrapt(tmp_path: Path) -> None:
    """pandas imports pyarrow in every script: its patch must not bring wrapt's imports along.

    wrapt 2.x imports asyncio, ssl and importlib.metadata, tens of milliseconds of every
    captured pandas script's run. The patched functions and methods keep their names, their
    documentation and what they return, called on an instance or through the class.
    """
    import pytest

    pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install '.[test]')")
    proc = _python("""
        import sys
        import sharklib.capture.libs as libs
        libs.install()
        import pyarrow as pa, pyarrow.ipc as ipc, pyarrow.parquet as pq
        t = pa.table({"x": [1, 2]})
        with ipc.RecordBatchFileWriter("t.arrow", t.schema) as w:
            w.write_table(t)
        reader = ipc.RecordBatchFileReader.__new__(ipc.RecordBatchFileReader)
        ipc.RecordBatchFileReader.__init__(reader, pa.memory_map("t.arrow"))
        print(sorted(libs.applied), "wrapt" in sys.modules, "asyncio" in sys.modules)
        print(pa.memory_map.__name__, ipc.RecordBatchFileWriter.close.__name__,
              pq.ParquetFile.__init__.__wrapped__ is not None, bool(pa.memory_map.__doc__))
        print(reader.read_all().equals(t), ipc.open_file("t.arrow").read_all().num_rows)
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == [
        "['pyarrow', 'pyarrow.ipc', 'pyarrow.parquet'] False False",
        "memory_map close True True", "True 2"]
