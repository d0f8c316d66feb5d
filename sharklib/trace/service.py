"""One loaded eBPF tracer shared by every command a process starts (a pipeline's stages).

Loading and verifying the BPF programs costs ~30 ms of kernel time, more than
a trivial stage itself. A pipeline run therefore loads the tracer once and
starts each stage's command inside it: the kernel follows every process forked
from this one while the fork window is open (``trace.session._FORK_WINDOW``),
and the service routes each event to the assembler of the command whose
process tree it came from (a fork event names the parent, so a child belongs
to its parent's command). A command's events are complete the moment its root
has been reaped and the ring buffer drained once more (the kernel submits the
exit event before ``waitpid`` returns); processes that outlive their command
are dropped from routing, as with a single traced command.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from sharklib.trace import ebpf
from sharklib.trace.assemble import Assembler
from sharklib.trace.events import Event

_PENDING_LIMIT = 64


@dataclass(slots=True)
class Counters:
    """The tracer's global counters at one moment: a command compares before and after."""

    dropped: int
    undecodable: int
    truncated: int


class TraceService:
    """A started :class:`ebpf.EbpfTracer` whose events are routed to per-command assemblers."""

    def __init__(self) -> None:
        self.tracer = ebpf.EbpfTracer(self._route)
        self.tracer.start(0)  # loaded and attached, watching nothing yet
        self._me = os.getpid()
        self._owner: dict[int, Assembler] = {}
        # processes forked from this one (and their descendants) whose command has not
        # claimed them yet: pid -> the events of that root's tree, shared by its pids
        self._pending: dict[int, list[Event]] = {}
        self._closed = False

    # -- routing (called with the tracer's consume lock held) ----------------------------------

    def _route(self, ev: Event) -> None:
        owner = self._owner
        if ev.kind == "fork":
            asm = owner.get(ev.status)  # the parent's command
            if asm is None:
                asm = owner.get(ev.pid)  # a command root claimed before its fork was drained
            if asm is not None:
                owner[ev.pid] = asm
                asm.feed(ev)
                return
            group = self._pending.get(ev.status)
            if group is not None:  # a descendant of a root not claimed yet
                self._pending[ev.pid] = group
                group.append(ev)
            elif ev.status == self._me:
                self._pend(ev)
            return
        asm = owner.get(ev.pid)
        if asm is None:
            group = self._pending.get(ev.pid)
            if group is not None:
                group.append(ev)
            return
        asm.feed(ev)
        if ev.kind == "exit":
            del owner[ev.pid]

    def _pend(self, ev: Event) -> None:
        if len(self._pending) >= _PENDING_LIMIT:  # forks nobody claims (not a traced command)
            self._pending.pop(next(iter(self._pending)))
        self._pending[ev.pid] = [ev]

    # -- one command ---------------------------------------------------------------------------

    def counters(self) -> Counters:
        t = self.tracer
        return Counters(t.dropped, t.undecodable, t.truncated_paths)

    @contextlib.contextmanager
    def window(self) -> Iterator[None]:
        """Children forked from this process inside the block are traced (hold the fork lock)."""
        self.tracer.watch(self._me)
        try:
            yield
        finally:
            self.tracer.stop_watching()

    def claim(self, pid: int, asm: Assembler) -> None:
        """``pid`` (just forked from this process) and its descendants belong to ``asm``."""
        with self.tracer.lock:
            owner = self._owner
            owner[pid] = asm
            group = self._pending.pop(pid, None)
            if group is None:
                return
            for other in [p for p, g in self._pending.items() if g is group]:
                del self._pending[other]
            for ev in group:  # replayed in kernel order, as _route would have
                if ev.kind == "fork":
                    owner[ev.pid] = asm
                asm.feed(ev)
                if ev.kind == "exit":
                    owner.pop(ev.pid, None)

    def settle(self, asm: Assembler) -> None:
        """Deliver everything the kernel has submitted, then forget ``asm``'s processes."""
        self.tracer.drain()
        with self.tracer.lock:
            for pid in list(asm.procs):
                if self._owner.get(pid) is asm:
                    del self._owner[pid]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.tracer.finish()
            self.tracer.close()


_active: TraceService | None = None
_active_lock = threading.Lock()


def active() -> TraceService | None:
    """The service commands started now should use, if a caller opened one."""
    return _active


@contextlib.contextmanager
def shared_tracing() -> Iterator[TraceService | None]:
    """Within the block, commands traced with the eBPF backend share one loaded tracer.

    Yields ``None`` (and changes nothing) when eBPF cannot run here or a
    service is already active; commands then fall back to their own sessions.
    """
    global _active
    service: TraceService | None = None
    owner = False
    if ebpf.unavailable_reason() is None:
        with _active_lock:
            service = _active
            if service is None:
                with contextlib.suppress(Exception):
                    service = _active = TraceService()
                    owner = True
    try:
        yield service
    finally:
        if owner and service is not None:
            with _active_lock:
                _active = None
            service.close()
