"""The native tracer: any program's process tree recorded into the same signed Runs.

``trace_command(argv)`` runs a command under the eBPF backend (BTF
tracepoints, loaded through libbpf via ctypes) or, where eBPF is not
permitted, under ``strace --seccomp-bpf``; events become Runs
(:mod:`sharklib.trace.assemble`), Python processes in the tree add their own
finer record (:mod:`sharklib.trace.merge`), and every output gets a sidecar.
"""

from __future__ import annotations

from sharklib._lazy import lazy_attributes

TYPE_CHECKING = False  # ``typing`` costs ~2.5 ms before the tracer can start loading

__all__ = ["TraceResult", "choose_backend", "exit_like", "trace_command"]

if TYPE_CHECKING:
    from sharklib.trace.session import TraceResult, choose_backend, exit_like, trace_command


# loaded on first use: ``sharklib trace`` starts loading the BPF programs before this
__getattr__ = lazy_attributes(__name__, dict.fromkeys(__all__, "session"))
