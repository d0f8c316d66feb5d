"""A base install (no extras): every feature that needs one says which ``pip install`` to run.

The extras are installed in the test venv, so their absence is simulated: a
directory put first on ``PYTHONPATH`` holds a package of the same name whose
import raises ``ImportError``, exactly what Python raises for a package that is
not installed. Before, ``export --format prov-json`` ended in an internal error
("please report it"), and an ``s3://`` remote without s3fs likewise.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from viewkit import Pipeline, shark

REPO_ROOT = Path(__file__).resolve().parents[2]
ONE_LINE = "sharklib: error: {what} needs {dist}, which is not installed: pip install 'sharklib[{extra}]'"


def _hide(tmp_path: Path, *modules: str) -> dict[str, str]:
    """Environment in which ``modules`` cannot be imported (a simulated missing install)."""
    hidden = tmp_path / "hidden-extras"
    for name in modules:
        pkg = hidden / name
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").write_text(
            f'raise ModuleNotFoundError("No module named {name!r} (simulated missing install)")\n')
    return {"PYTHONPATH": f"{hidden}:{REPO_ROOT}"}


def _one_line(proc, what: str, dist: str, extra: str) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [ONE_LINE.format(what=what, dist=dist, extra=extra)], \
        proc.stderr
    assert "Traceback" not in proc.stderr and "please report" not in proc.stderr


@pytest.mark.parametrize(("fmt", "name", "module", "dist"), [
    ("prov-json", "prov-json", "prov", "prov"),
    ("prov", "prov-json", "prov", "prov"),
    ("ro-crate", "ro-crate", "rocrate", "rocrate"),
    ("rocrate", "ro-crate", "rocrate", "rocrate"),
    ("openlineage", "openlineage", "openlineage", "openlineage-python"),
])
def test_an_export_without_its_extra_names_the_pip_command(
        pipeline: Pipeline, tmp_path: Path, fmt: str, name: str, module: str, dist: str) -> None:
    out = tmp_path / "out"
    proc = shark("export", str(pipeline.report), "--format", fmt, "-o", str(out),
                 env=_hide(tmp_path, module))
    _one_line(proc, f"export --format {name}", dist, "export")
    assert not out.exists()


def test_the_usual_spellings_are_aliases(pipeline: Pipeline, tmp_path: Path) -> None:
    for alias, canonical in (("in-toto", "intoto"), ("prov", "prov-json")):
        a = shark("export", str(pipeline.report), "--format", alias)
        b = shark("export", str(pipeline.report), "--format", canonical)
        assert a.returncode == b.returncode == 0, a.stderr + b.stderr
        assert a.stdout == b.stdout if alias == "in-toto" else \
            json.loads(a.stdout).keys() == json.loads(b.stdout).keys()
    r = shark("export", str(pipeline.report), "--format", "rocrate", "-o", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c" / "ro-crate-metadata.json").is_file()
    # in-toto needs no extra: nothing to hide, nothing to install
    r = shark("export", str(pipeline.report), "--format", "in-toto",
              env=_hide(tmp_path, "prov", "rocrate", "openlineage"))
    assert r.returncode == 0, r.stderr


def test_an_s3_remote_without_s3fs_names_the_pip_command(tmp_path: Path) -> None:
    proc = shark("cache", "push", cwd=tmp_path,
                 env={**_hide(tmp_path, "s3fs"), "SHARKLIB_CACHE": str(tmp_path / "cache"),
                      "SHARKLIB_CACHE_REMOTE": "s3://sharkbucket/cache"})
    _one_line(proc, "the remote cache s3://sharkbucket/cache", "s3fs", "remote")


def test_the_dask_executor_without_distributed_names_the_pip_command(tmp_path: Path) -> None:
    (tmp_path / "p.md").write_text("# p\n\n```shark-run:host\necho hi > a.txt\n```\n")
    proc = shark("pipeline", "run", "p.md", "--executor", "dask-local", cwd=tmp_path,
                 env=_hide(tmp_path, "distributed", "dask"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines()[-1] == ONE_LINE.format(
        what="the dask executor", dist="distributed", extra="dask"), proc.stderr
    assert not (tmp_path / "a.txt").exists()


def test_trace_proxy_without_proxy_py_names_the_pip_command(tmp_path: Path) -> None:
    if shutil.which("strace") is None and not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip("no tracer backend here (neither strace nor BTF for eBPF)")
    proc = shark("trace", "--proxy", "--", "true", cwd=tmp_path, env=_hide(tmp_path, "proxy"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        "sharklib: error: --proxy needs proxy.py (pip install 'sharklib[proxy]')"], proc.stderr
