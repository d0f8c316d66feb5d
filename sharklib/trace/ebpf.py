"""The eBPF backend: load ``bpf/tracer.bpf.o`` through the system libbpf and stream its events.

The object is CO-RE (built once with clang against this kernel's BTF, shipped
as package data), so no compiler or kernel headers are needed at run time;
``libbpf.so.1`` is called through ctypes. All four programs are BTF
tracepoints (``tp_btf``): they need no tracefs and their links detach in well
under a millisecond. Events are submitted with ``BPF_RB_NO_WAKEUP`` and a
thread drains the ring buffer every ~10 ms, which measured about half the
cost of waking the consumer per event. Lost events (ring buffer full) are
counted in the kernel and turned into an error by the session.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import stat
import struct
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from sharklib.errors import TraceError
from sharklib.trace.events import Event, decode_sockaddr, join_path

TYPE_CHECKING = False  # no ``typing`` at run time (see sharklib.trace.events)
if TYPE_CHECKING:
    from sharklib.trace.events import Mode

OBJECT = Path(__file__).resolve().parent / "bpf" / "tracer.bpf.o"

EV_FORK, EV_EXEC, EV_EXIT, EV_OPEN, EV_PATHOP, EV_CONNECT, EV_CHDIR = range(1, 8)
HEADER = struct.Struct("<IIIiiiQ4H")
FMODE_READ, FMODE_WRITE = 1, 2
DRAIN_SECONDS = 0.01

# x86_64 syscall numbers of the path operations (the object is built for x86_64).
PATHOP_KIND = {82: "rename", 264: "rename", 316: "rename", 86: "link", 265: "link",
               88: "symlink", 266: "symlink", 87: "unlink", 84: "rmdir", 76: "truncate"}
NR_UNLINKAT = 263
AT_REMOVEDIR = 0x200

_FS_ENCODING = sys.getfilesystemencoding()
SampleFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


@functools.lru_cache(maxsize=65536)
def _walked(raw: bytes) -> str:
    """A path written leaf-first by the kernel walk (``c/b/a/``) as ``/a/b/c``.

    Cached: the same files and directories come back again and again.
    """
    parts = [p for p in raw.split(b"/") if p]
    parts.reverse()
    return (b"/" + b"/".join(parts)).decode(_FS_ENCODING, "surrogateescape")


@functools.lru_cache(maxsize=65536)
def _joined(base_raw: bytes, name_raw: bytes) -> str:
    base = _walked(base_raw) if base_raw else ""
    return join_path(base, name_raw.decode(_FS_ENCODING, "surrogateescape"))


#: ``O_APPEND`` (asm-generic fcntl.h): a write that keeps what the file held
O_APPEND = 0o2000
#: ``FMODE_CREATED`` (linux/fs.h): the open created the file. A write-open that neither created
#: nor truncated it (``O_TRUNC``, which tracer.bpf.c puts back into the flags it reports)
#: keeps what the file held
FMODE_CREATED = 0x100000
O_TRUNC = 0o1000


def decode(record: bytes) -> Event | None:
    """One ring-buffer record as an :class:`Event` (``None`` for what is not recorded)."""
    etype, pid, _tid, aux1, aux2, ret, _ts, l0, l1, l2, l3 = HEADER.unpack_from(record)
    off = HEADER.size
    s0 = record[off:off + l0]
    off += l0
    s1 = record[off:off + l1]
    off += l1
    s2 = record[off:off + l2]
    off += l2
    s3 = record[off:off + l3]
    if etype == EV_OPEN:
        mode: Mode = "rw" if aux1 & FMODE_READ and aux1 & FMODE_WRITE else ("w" if aux1 & FMODE_WRITE else "r")
        if mode != "r" and ret & O_APPEND:  # the open file's flags (see tracer.bpf.c)
            mode = "a"
        elif mode != "r" and not aux1 & FMODE_CREATED and not ret & O_TRUNC:
            mode = "u" if mode == "rw" else "k"
        path = _walked(s0)
        if mode == "r" and stat.S_ISDIR(aux2 & 0xFFFF):  # a listing: an input (see listing_digest)
            return Event("open", pid, path=path.rstrip("/") + "/", mode="r", regular=True)
        return Event("open", pid, path=path, mode=mode, regular=stat.S_ISREG(aux2 & 0xFFFF))
    if etype == EV_FORK:
        return Event("fork", pid, status=aux1)
    if etype == EV_EXIT:
        return Event("exit", pid, status=aux1)
    if etype == EV_EXEC:
        cwd = _walked(s2)
        argv = [os.fsdecode(a) for a in s3.split(b"\0")]
        if argv and argv[-1] == "":
            argv.pop()
        return Event("exec", pid, path=join_path(cwd, os.fsdecode(s1)), path2=_walked(s0),
                     argv=argv, cwd=cwd)
    if etype == EV_PATHOP:
        nr = aux1
        kind = PATHOP_KIND.get(nr)
        if nr == NR_UNLINKAT:
            kind = "rmdir" if aux2 & AT_REMOVEDIR else "unlink"
        if kind is None:
            return None
        first = os.fsdecode(s1) if kind == "symlink" else _joined(s0, s1)
        second = _joined(s2, s3) if l3 else ""
        return Event(kind, pid, path=first, path2=second)  # type: ignore[arg-type]
    if etype == EV_CHDIR:
        return Event("chdir", pid, path=_walked(s0))
    if etype == EV_CONNECT:
        return Event("connect", pid, address=decode_sockaddr(s0, aux2), status=ret)
    return None


@functools.lru_cache(maxsize=1)
def _libbpf() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    except OSError:
        try:  # find_library runs ldconfig: only when the usual soname is missing
            from ctypes.util import find_library

            lib = ctypes.CDLL(find_library("bpf") or "libbpf.so", use_errno=True)
        except OSError as exc:
            raise TraceError("eBPF backend needs libbpf.so.1 (Debian package libbpf1)") from exc
    vp = ctypes.c_void_p
    lib.bpf_object__open_file.restype = vp
    lib.bpf_object__open_file.argtypes = [ctypes.c_char_p, vp]
    lib.bpf_object__load.argtypes = [vp]
    lib.bpf_object__close.argtypes = [vp]
    lib.bpf_object__next_program.restype = vp
    lib.bpf_object__next_program.argtypes = [vp, vp]
    lib.bpf_program__name.restype = ctypes.c_char_p
    lib.bpf_program__name.argtypes = [vp]
    lib.bpf_program__attach.restype = vp
    lib.bpf_program__attach.argtypes = [vp]
    lib.bpf_link__destroy.argtypes = [vp]
    lib.bpf_object__find_map_fd_by_name.argtypes = [vp, ctypes.c_char_p]
    lib.bpf_map_update_elem.argtypes = [ctypes.c_int, vp, vp, ctypes.c_uint64]
    lib.bpf_map_lookup_elem.argtypes = [ctypes.c_int, vp, vp]
    lib.ring_buffer__new.restype = vp
    lib.ring_buffer__new.argtypes = [ctypes.c_int, SampleFn, vp, vp]
    lib.ring_buffer__consume.argtypes = [vp]
    lib.ring_buffer__free.argtypes = [vp]
    lib.libbpf_set_print.restype = vp
    lib.libbpf_set_print.argtypes = [vp]
    return lib


def unavailable_reason() -> str | None:
    """Why the eBPF backend cannot run here, or ``None`` when it can be tried."""
    if not OBJECT.exists():
        return f"the BPF object {OBJECT} is missing (run scripts/prepare.d/10-bpf.sh)"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "the kernel has no BTF (/sys/kernel/btf/vmlinux), which the CO-RE object needs"
    if os.geteuid() != 0 and not _has_bpf_caps():
        return "eBPF needs root or CAP_BPF+CAP_PERFMON"
    try:
        _libbpf()
    except TraceError as exc:
        return str(exc)
    return None


def _has_bpf_caps() -> bool:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("CapEff:"):
                    eff = int(line.split()[1], 16)
                    return bool(eff & (1 << 39)) and bool(eff & (1 << 38))
    except OSError:
        pass
    return False


class EbpfTracer:
    """Loads the programs, follows the children of one pid, streams decoded events.

    ``sink`` receives every event in kernel order from the drain thread.
    """

    def __init__(self, sink: Callable[[Event], None] | None = None) -> None:
        self._sink: Callable[[Event], None] = sink or (lambda _ev: None)
        self._lib = _libbpf()
        self._obj: int | None = None
        self._links: list[int] = []
        self._rb: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._control_fd = -1
        self._traced_fd = -1
        self.events = 0
        self.undecodable = 0

        def on_sample(_ctx: int | None, data: int | None, size: int) -> int:
            try:
                ev = decode(ctypes.string_at(data, size))  # type: ignore[arg-type]
                self.events += 1
                if ev is not None:
                    self._sink(ev)
            except Exception:
                self.undecodable += 1
            return 0

        self._callback = SampleFn(on_sample)

    def set_sink(self, sink: Callable[[Event], None]) -> None:
        """Where decoded events go (set before :meth:`start`)."""
        self._sink = sink

    def load(self) -> None:
        """Open the object and have the kernel verify it (the slow part: may run in a thread)."""
        if self._obj:
            return
        lib = self._lib
        lib.libbpf_set_print(None)
        obj = lib.bpf_object__open_file(os.fsencode(OBJECT), None)
        if not obj:
            raise TraceError(f"cannot open the BPF object: {os.strerror(ctypes.get_errno())}",
                             OBJECT)
        self._obj = obj
        rc = lib.bpf_object__load(obj)
        if rc:
            err = -rc if rc < 0 else ctypes.get_errno()
            self.close()
            hint = " (not permitted: needs root or CAP_BPF+CAP_PERFMON)" if err == errno.EPERM else ""
            raise TraceError(f"the kernel refused to load the tracer: {os.strerror(err)}{hint}",
                             OBJECT)
        self._control_fd = lib.bpf_object__find_map_fd_by_name(obj, b"control")
        self._traced_fd = lib.bpf_object__find_map_fd_by_name(obj, b"traced")

    def start(self, watch_pid: int) -> None:
        """Load (unless done) and attach; from now on children forked by ``watch_pid`` are traced."""
        self.load()
        lib = self._lib
        obj = self._obj
        events_fd = lib.bpf_object__find_map_fd_by_name(obj, b"events")
        self._set_control(0, watch_pid)
        prog = lib.bpf_object__next_program(obj, None)
        while prog:
            link = lib.bpf_program__attach(prog)
            if not link:
                name = lib.bpf_program__name(prog).decode()
                err = ctypes.get_errno()
                self.close()
                raise TraceError(f"cannot attach BPF program {name}: {os.strerror(err)}")
            self._links.append(link)
            prog = lib.bpf_object__next_program(obj, prog)
        rb = lib.ring_buffer__new(events_fd, self._callback, None, None)
        if not rb:
            self.close()
            raise TraceError("cannot create the BPF ring buffer reader")
        self._rb = rb
        self._thread = threading.Thread(target=self._drain, name="sharklib-ebpf-drain", daemon=True)
        self._thread.start()

    def _set_control(self, idx: int, value: int) -> None:
        key = ctypes.c_uint32(idx)
        val = ctypes.c_uint64(value)
        self._lib.bpf_map_update_elem(self._control_fd, ctypes.byref(key), ctypes.byref(val), 0)

    def _control(self, idx: int) -> int:
        key = ctypes.c_uint32(idx)
        val = ctypes.c_uint64(0)
        self._lib.bpf_map_lookup_elem(self._control_fd, ctypes.byref(key), ctypes.byref(val))
        return int(val.value)

    def watch(self, pid: int) -> None:
        """From now on children forked by ``pid`` are traced (after :meth:`start`)."""
        self._set_control(0, pid)

    def stop_watching(self) -> None:
        """No further children of the watched pid are traced (the root has been started)."""
        self._set_control(0, 0)

    @property
    def dropped(self) -> int:
        """Events the kernel could not submit because the ring buffer was full."""
        return self._control(1)

    @property
    def truncated_paths(self) -> int:
        return self._control(2)

    @property
    def lock(self) -> threading.Lock:
        """Held while events are delivered to the sink: take it to change what the sink sees."""
        return self._lock

    def drain(self) -> None:
        """Deliver every event the kernel has submitted so far (returns when they are sunk)."""
        self._consume()

    def _consume(self) -> None:
        with self._lock:
            if self._rb:
                self._lib.ring_buffer__consume(self._rb)

    def _drain(self) -> None:
        while not self._stop.wait(DRAIN_SECONDS):
            self._consume()

    def finish(self) -> None:
        """Stop tracing new work, drain what is left; detaching happens in :meth:`close`."""
        if self._traced_fd >= 0:
            self._set_control(0, 0)
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._consume()

    def close(self) -> None:
        """Destroy links (in threads: off the critical path) and free everything."""
        self._stop.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join()
        lib = self._lib
        links, self._links = self._links, []
        threads = [threading.Thread(target=lib.bpf_link__destroy, args=(ln,)) for ln in links]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with self._lock:
            if self._rb:
                lib.ring_buffer__free(self._rb)
                self._rb = None
        if self._obj:
            lib.bpf_object__close(self._obj)
            self._obj = None


class Preload:
    """Loads the BPF object in a thread (ctypes releases the GIL) while the caller gets ready.

    The kernel's verifier takes ~50 ms (several times that on a loaded machine); started
    first, it overlaps the imports, the run key and the reuse check that come before the
    command can start. ``wait_on_discard=False`` is for a process that exits right after a
    discard (make's recipe shell, when the step was reused): it does not wait for the
    verifier; the loader frees what it loaded itself, or the exit does.
    """

    def __init__(self, wait_on_discard: bool = True) -> None:
        self.tracer: EbpfTracer | None = None
        self.error: BaseException | None = None
        self._taken = False
        self._discarded = False
        self._wait = wait_on_discard
        self._guard = threading.Lock()
        self._thread = threading.Thread(target=self._load, name="sharklib-ebpf-load", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        try:
            tracer = EbpfTracer()
            tracer.load()
        except BaseException as exc:
            self.error = exc
            return
        with self._guard:
            if not self._discarded:
                self.tracer = tracer
                return
        tracer.close()  # discarded while the kernel was still verifying it

    def take(self) -> EbpfTracer:
        self._thread.join()
        if self.error is not None:
            raise self.error
        assert self.tracer is not None
        self._taken = True
        return self.tracer

    def discard(self) -> None:
        """Free a tracer nobody took (the command could not be started, or was reused)."""
        if self._wait:
            self._thread.join()
        with self._guard:
            self._discarded = True
            tracer = None if self._taken else self.tracer
            if tracer is not None:
                self.tracer = None
        if tracer is not None:
            tracer.close()
