"""The shipped BPF object: built by scripts/prepare.d/10-bpf.sh, committed, loadable."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sharklib.trace import ebpf
from sharklib.trace.events import Event
from sharklib.trace.ptrace import StraceParser

REPO = Path(__file__).resolve().parents[2]
BTF = Path("/sys/kernel/btf/vmlinux")


def test_committed_object_matches_a_fresh_build_or_loads(tmp_path: Path) -> None:
    bpftool = shutil.which("bpftool") or ("/usr/sbin/bpftool" if os.path.exists("/usr/sbin/bpftool")
                                          else None)
    if not (shutil.which("clang") and bpftool and BTF.exists() and shutil.which("llvm-strip")):
        pytest.skip("needs clang, llvm-strip, bpftool and /sys/kernel/btf/vmlinux to build")
    with open(tmp_path / "vmlinux.h", "wb") as fh:
        subprocess.run([bpftool, "btf", "dump", "file", str(BTF), "format", "c"], stdout=fh,
                       check=True)
    out = tmp_path / "tracer.bpf.o"
    subprocess.run(["clang", "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86",
                    f"-I{tmp_path}", "-c", str(ebpf.OBJECT.parent / "tracer.bpf.c"),
                    "-o", str(out)], check=True)
    subprocess.run(["llvm-strip", "-g", str(out)], check=True)
    assert ebpf.OBJECT.stat().st_size < 200_000
    if out.read_bytes() == ebpf.OBJECT.read_bytes():
        return
    # Another kernel's BTF gives other bytes; the shipped CO-RE object must still load here.
    why = ebpf.unavailable_reason()
    if why:
        pytest.fail("the shipped tracer.bpf.o differs from a fresh build and cannot be "
                    f"loaded to check it ({why}); rebuild: SHARKLIB_BPF_REBUILD=1 "
                    "scripts/prepare.d/10-bpf.sh")
    tracer = ebpf.EbpfTracer()
    tracer.start(watch_pid=0)
    tracer.finish()
    tracer.close()


def test_object_loads_attaches_and_detaches() -> None:
    why = ebpf.unavailable_reason()
    if why:
        pytest.skip(why)
    events: list[Event] = []
    tracer = ebpf.EbpfTracer(events.append)
    tracer.start(watch_pid=0)  # follow nothing: only load and attach
    tracer.finish()
    tracer.close()
    assert events == [] and tracer.dropped == 0


def _hx(raw: bytes) -> str:
    return "".join(f"\\x{c:02x}" for c in raw)


def test_strace_parser_recovers_odd_names_exactly() -> None:
    """Lines in the shape strace -xx -yy -X raw prints them (as seen in a real run)."""
    got: list[Event] = []
    p = StraceParser(got.append, "/start")
    name = b"a\tb\nc\xff"
    hn, hd = _hx(name), _hx(b"/tmp/st")
    p.feed_line(f'100 execve("{_hx(b"/bin/cat")}", ["{_hx(b"cat")}", "{hn}"], 0x7ffd '
                "/* 3 vars */) = 0")
    p.feed_line(f'100 openat(-100<{hd}>, "{hn}", 0) = 3<{hd}{_hx(b"/")}{hn}>')
    p.feed_line(f'100 renameat2(-100<{hd}>, "{hn}", -100<{hd}>, "{_hx(b"z")}", 0x1) = 0')
    p.feed_line("100 +++ killed by SIGSEGV (core dumped) +++")
    odd = os.fsdecode(b"/tmp/st/" + name)
    assert [(e.kind, e.path) for e in got] == [
        ("exec", "/bin/cat"), ("open", odd), ("rename", odd), ("exit", "")]
    assert got[0].argv == ["cat", os.fsdecode(name)]
    assert got[2].path2 == "/tmp/st/z"
    assert got[-1].status == 11
