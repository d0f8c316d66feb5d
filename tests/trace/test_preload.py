"""A BPF load started early (``sharklib trace``, make's recipe shell) is freed when not used."""

from __future__ import annotations

import os

import pytest

from sharklib.trace import ebpf


def _bpf_fds() -> int:
    """Open BPF objects of this process (programs, maps, links, BTF), from /proc/self/fd."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("anon_inode:bpf")
        except OSError:
            continue
    return n


@pytest.fixture
def ebpf_only() -> None:
    why = ebpf.unavailable_reason()
    if why:
        pytest.skip(f"eBPF backend unavailable: {why}")


@pytest.mark.parametrize("wait", [True, False])
def test_a_discarded_preload_frees_what_it_loaded(ebpf_only: None, wait: bool) -> None:
    before = _bpf_fds()
    preload = ebpf.Preload(wait_on_discard=wait)
    preload.discard()  # at once: the kernel is usually still verifying the programs
    preload._thread.join()  # the loader frees a late load itself (no waiting in discard)
    assert preload.tracer is None
    assert _bpf_fds() == before


def test_a_taken_preload_is_not_freed_by_discard(ebpf_only: None) -> None:
    preload = ebpf.Preload(wait_on_discard=False)
    tracer = preload.take()
    before = _bpf_fds()
    preload.discard()
    assert _bpf_fds() == before  # still the caller's to close
    tracer.close()
