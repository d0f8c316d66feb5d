"""Fixtures for the native tracer: each test runs once per backend the machine has.

eBPF needs root (or CAP_BPF+CAP_PERFMON), the kernel's BTF and the built
object; ptrace needs strace. A backend that cannot run here is skipped with
the reason, never passed silently.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sharklib.trace import ebpf as ebpf_backend
from sharklib.trace import ptrace as ptrace_backend

PROGRAMS = Path(__file__).resolve().parent / "programs"


@pytest.fixture(params=["ebpf", "ptrace"])
def backend(request: pytest.FixtureRequest) -> str:
    why = (ebpf_backend.unavailable_reason() if request.param == "ebpf"
           else ptrace_backend.unavailable_reason())
    if why:
        pytest.skip(f"{request.param} backend unavailable: {why}")
    return str(request.param)


@pytest.fixture(scope="session")
def cprog(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """Compile ``tests/trace/programs/<name>.c`` once per session with gcc; return the binary."""
    if not shutil.which("gcc"):
        pytest.skip("gcc is not installed (Debian package gcc)")
    out = tmp_path_factory.mktemp("cprogs")
    built: dict[str, str] = {}

    def build(name: str) -> str:
        if name not in built:
            exe = out / name
            subprocess.run(["gcc", "-O1", "-pthread", "-o", str(exe), str(PROGRAMS / f"{name}.c")],
                           check=True)
            built[name] = str(exe)
        return built[name]

    return build


