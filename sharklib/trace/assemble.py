"""Events → one Run per process subtree that forms a step → the Run tree.

The assembler consumes the ordered event stream of either backend *online*
(memory grows with distinct processes and files, not with events), so a
command that floods millions of opens of the same files costs no more memory
than one that opens them once.

Which processes form a Run: the traced command is the root Run; every process
forked by a *scheduler* starts a child Run (a step), whose own descendants belong
to it. Schedulers are ``make`` (one Run per recipe line, including
``$(shell ...)``), Snakemake (one per job), ``xargs`` and GNU ``parallel`` (one
per command they start), and the traced command itself when it is a shell
script (one per command of the script; processes the script has running at the
same time, such as the stages of a pipeline ``a | b``, share one step). Nested
schedulers nest. So ``sharklib trace -- make all`` or ``-- snakemake`` gives one
Run per job, each listing what that job read, and a file one job writes and a
later one reads links the two through its sidecar.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from sharklib.model import Artifact, CodeIdentity, Environment, Exec, Output, Run
from sharklib.trace.classify import Classifier
from sharklib.trace.events import Event, is_bookkeeping

MAKE_NAMES = frozenset({"make", "gmake", "remake", "bmake"})
#: programs whose every child process is a job of its own
SCHEDULER_NAMES = MAKE_NAMES | {"snakemake", "xargs", "parallel"}
#: interpreters that may run a scheduler script (``python .../bin/snakemake``, perl ``parallel``)
_INTERPRETERS = ("python", "perl")
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"})
INFINITY = float("inf")
#: the system's scratch directories (a listed folder there, gone by the end, is a temporary)
_TEMP_DIRS = tuple({d.rstrip("/") + "/" for d in ("/tmp", "/var/tmp",
                                                  os.environ.get("TMPDIR") or "/tmp")})


def platform_label() -> str:
    """``platform.platform()`` as it reads on Linux, without starting ``uname -p``.

    ``platform.platform()`` unpacks ``platform.uname()``, whose processor field runs the
    ``uname -p`` program (10-100 ms, after the traced command ended); on Linux the
    function then drops that field whenever it is ``unknown`` or equals the machine,
    which is what ``uname -p`` prints there. Elsewhere the library is asked. The C library
    is what ``platform.libc_ver()`` answers first, ``confstr(CS_GNU_LIBC_VERSION)`` (read
    here without importing ``platform``, whose import compiles a dozen expressions); where
    that is not available the module is asked.
    """
    global _PLATFORM
    if _PLATFORM is None:
        u = os.uname()
        if u.sysname != "Linux":
            import platform

            _PLATFORM = platform.platform()
        else:
            libc, version = _libc()
            text = "-".join(x.strip() for x in (u.sysname, u.release, u.machine, "with",
                                                 libc + version) if x)
            for bad in " /\\:;\"()":
                text = text.replace(bad, "_" if bad == " " else "-")
            text = text.replace("unknown", "")
            while "--" in text:
                text = text.replace("--", "-")
            _PLATFORM = text.rstrip("-")
    return _PLATFORM


_PLATFORM: str | None = None


def _libc() -> tuple[str, str]:
    """``platform.libc_ver()``: its answer from ``confstr`` when there is one, else its own."""
    try:
        parts = (os.confstr("CS_GNU_LIBC_VERSION") or "").split(maxsplit=1)
    except (AttributeError, ValueError, OSError):
        parts = []
    if len(parts) == 2:
        return parts[0], parts[1]
    import platform

    return platform.libc_ver()


@dataclass(slots=True)
class _Out:
    """An output being built: who wrote it and when it was finished."""

    first: int
    writers: set[int] = field(default_factory=set)
    finished: float = INFINITY
    symlink: bool = False


@dataclass(slots=True)
class Draft:
    """A Run while events are still arriving."""

    run_id: str
    top: int
    parent: Draft | None
    started: float
    argv: list[str] | None = None
    cwd: str = ""
    ended: float | None = None
    ended_seq: float = INFINITY
    exit_status: int | None = None
    inputs: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, _Out] = field(default_factory=dict)
    temporaries: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    execs: list[Exec] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    connects: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    children: list[Draft] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)
    streams: dict[str, str] = field(default_factory=dict)
    #: processes of this step forked by the scheduler itself that are still running
    running: int = 0
    #: a step of a traced shell script (see :meth:`Assembler._join_pipe_readers`)
    script_step: bool = False


@dataclass(slots=True)
class _Proc:
    pid: int
    draft: Draft
    cwd: str
    argv: list[str]
    started: float
    ppid: int | None = None
    #: ``"jobs"``: every child is a step; ``"script"``: a shell script's commands are steps,
    #: those running at once (a pipeline) sharing one; ``None``: not a scheduler
    scheduler: str | None = None
    #: a script's step whose first processes are still running (the next child joins it)
    open_step: Draft | None = None
    alive: bool = True
    #: started by sharklib for its own records (:func:`is_bookkeeping`): none of its doing counts
    bookkeeping: bool = False


def scheduler_kind(path: str, path2: str, argv: list[str], is_root: bool) -> str | None:
    """``"jobs"`` for make, Snakemake, xargs, parallel; ``"script"`` for the traced shell script.

    A shell script is a scheduler only as the traced command itself: a script a recipe or job
    calls (``bash summarize.sh in > out``) is part of that step, whose output it writes.
    """
    names = {os.path.basename(path), os.path.basename(path2)}
    if argv:
        names.add(os.path.basename(argv[0]))
    if names & SCHEDULER_NAMES:
        return "jobs"
    first = _first_argument(argv)
    if any(n.startswith(_INTERPRETERS) for n in names):
        if first is not None and (first == "-m snakemake" or
                                  os.path.basename(first) in SCHEDULER_NAMES):
            return "jobs"
        return None
    if not is_root:
        return None
    if names & SHELLS:
        return "script" if first is not None and not first.startswith("-m ") else None
    return "script" if _shebang_shell(path) else None


def _first_argument(argv: list[str]) -> str | None:
    """The script an interpreter runs (``-m NAME`` for a module); None for ``-c`` or none."""
    code = ("-e", "-E") if argv and os.path.basename(argv[0]).startswith("perl") else ("-c",)
    i = 1
    while i < len(argv):
        a = argv[i]
        if a.startswith(code):
            return None
        if a == "-m" and i + 1 < len(argv):
            return "-m " + argv[i + 1].split(".")[0]
        if a in ("-o", "-O", "+o", "+O", "-W", "-X"):
            i += 2
            continue
        if a == "--" and i + 1 < len(argv):
            return argv[i + 1]
        if not a.startswith(("-", "+")):
            return a
        i += 1
    return None


def _shebang_shell(path: str) -> bool:
    """Is ``path`` a script whose ``#!`` line names a shell (``./pipeline.sh`` as called)?"""
    try:
        with open(path, "rb") as fh:
            line = fh.readline(256)
    except OSError:
        return False
    if not line.startswith(b"#!"):
        return False
    words = line[2:].split()
    if words and os.path.basename(words[0]) == b"env":
        words = [w for w in words[1:] if not w.startswith(b"-")]
    return bool(words) and os.fsdecode(os.path.basename(words[0])) in SHELLS


def wait_status_to_exit(status: int) -> int:
    """A kernel wait status as a Run's exit status: the code, or ``-signal``."""
    sig = status & 0x7F
    return -sig if sig else (status >> 8) & 0xFF


def _new_id() -> str:
    """A random run id (uuid4-sized), without importing uuid on the start-up path."""
    return os.urandom(16).hex()


class Assembler:
    """Builds Drafts from events; :meth:`finish` turns them into Runs."""

    def __init__(self, argv: list[str], cwd: str, classify: Classifier,
                 backend: str, root_pid: int | None = None) -> None:
        self.classify = classify
        self.backend = backend
        self.root_pid = root_pid
        self.root = Draft(run_id=_new_id(), top=root_pid or 0, parent=None, started=time.time(),
                          argv=list(argv), cwd=cwd)
        self.drafts: list[Draft] = [self.root]
        self.procs: dict[int, _Proc] = {}
        self.seq = 0
        # the last time each data file was written, across all Runs: an input written again
        # after it was read carries its final digest, and its Run says so
        self.last_write: dict[str, int] = {}
        # the files the command's stdout/stderr were redirected to: outputs the command got as
        # open descriptors, so reading them back (a process hashing its own stdout) is no input
        self.stream_paths: set[str] = set()
        #: data files the tree appended to before writing them whole: a run that depends on
        #: content no record holds, which a reuse cannot reproduce (``>> build.log``)
        self.appended: dict[str, None] = {}
        #: when the tree first replaced each data file's content (created or truncated it,
        #: renamed onto it): a read before that read content the tree did not make
        self.first_write: dict[str, int] = {}
        #: data files read while they still held what they held before the tree ran: one the
        #: tree also wrote was edited in place (``sed -i f``, ``sort -o f f``)
        self.prior_reads: dict[str, int] = {}
        self._edited: dict[str, None] = {}
        if root_pid:
            self._start_root(root_pid)

    def _start_root(self, pid: int) -> None:
        self.root_pid = pid
        self.root.top = pid
        self.root.pids.add(pid)
        self.procs[pid] = _Proc(pid, self.root, self.root.cwd, list(self.root.argv or []),
                                time.time())

    def _proc(self, pid: int) -> _Proc:
        p = self.procs.get(pid)
        if p is None:
            if self.root_pid is None:
                self._start_root(pid)
                return self.procs[pid]
            # a process whose fork we did not see (traced before the root started): root's
            p = _Proc(pid, self.root, self.root.cwd, [], time.time())
            self.root.pids.add(pid)
            self.procs[pid] = p
        return p

    # -- the event stream --------------------------------------------------------------

    def feed(self, ev: Event) -> None:
        self.seq += 1
        seq = self.seq
        kind = ev.kind
        if kind == "open":
            if not ev.regular:
                return
            proc = self._proc(ev.pid)
            if not proc.bookkeeping:
                self._open(proc.draft, ev.path, ev.mode, ev.pid, seq)
            return
        if kind == "fork":
            self._fork(ev.pid, ev.status)
            return
        if kind == "exec":
            self._exec(ev)
            return
        if kind == "exit":
            self._exit(ev.pid, ev.status, seq)
            return
        proc = self._proc(ev.pid)
        if proc.bookkeeping:
            return
        d = proc.draft
        if kind == "rename":
            self._rename(d, ev.path, ev.path2, seq)
        elif kind in ("link", "symlink"):
            if self.classify(ev.path2) != "ignored":
                d.outputs[ev.path2] = _Out(seq, {ev.pid}, finished=seq, symlink=kind == "symlink")
        elif kind in ("unlink", "rmdir"):
            self._unlink(d, ev.path)
        elif kind == "truncate":
            self._open(d, ev.path, "w", ev.pid, seq)
        elif kind == "chdir":
            proc.cwd = ev.path
        elif kind == "connect" and ev.address not in d.connects:
            d.connects.append(ev.address)

    def _fork(self, pid: int, ppid: int) -> None:
        if self.root_pid is None or pid == self.root_pid:
            if pid not in self.procs:
                self._start_root(pid)
            return
        parent = self.procs.get(ppid)
        if parent is None:
            parent = self._proc(ppid)
        draft = parent.draft
        if parent.scheduler and not parent.bookkeeping:
            joined = parent.open_step
            if parent.scheduler == "script" and joined is not None and joined.running > 0:
                draft = joined  # running beside the script's last command: one pipeline
            else:
                draft = Draft(run_id=_new_id(), top=pid, parent=parent.draft,
                              started=time.time(), cwd=parent.cwd,
                              script_step=parent.scheduler == "script")
                parent.draft.children.append(draft)
                self.drafts.append(draft)
                parent.open_step = draft
            draft.running += 1
        draft.pids.add(pid)
        self.procs[pid] = _Proc(pid, draft, parent.cwd, list(parent.argv), time.time(), ppid,
                                bookkeeping=parent.bookkeeping)

    def _exec(self, ev: Event) -> None:
        proc = self._proc(ev.pid)
        d = proc.draft
        if ev.cwd:
            proc.cwd = ev.cwd
        proc.argv = list(ev.argv)
        if proc.bookkeeping or is_bookkeeping(proc.argv):
            proc.bookkeeping = True
            return
        proc.scheduler = scheduler_kind(ev.path, ev.path2, proc.argv, ev.pid == self.root_pid)
        d.execs.append(Exec(pid=ev.pid, path=ev.path, argv=list(ev.argv), cwd=proc.cwd,
                            parent_pid=proc.ppid))
        if ev.pid == d.top and d is not self.root and d.argv is None:
            d.argv = list(ev.argv)
            d.cwd = proc.cwd
        for f in {os.path.realpath(ev.path), ev.path2}:
            if f and self.classify(f) == "data" and f not in d.code and f not in d.outputs:
                d.code.append(f)
                d.inputs.pop(f, None)

    def _exit(self, pid: int, status: int, seq: int) -> None:
        proc = self.procs.get(pid)
        if proc is None:
            return
        proc.alive = False
        d = proc.draft
        parent = self.procs.get(proc.ppid) if proc.ppid is not None else None
        if parent is not None and parent.scheduler and d is not parent.draft and d.running > 0:
            d.running -= 1
        for out in d.outputs.values():
            if pid in out.writers and out.finished == INFINITY:
                out.writers.discard(pid)
                if not out.writers:
                    out.finished = seq
        if pid == d.top:
            d.ended = time.time()
            d.ended_seq = seq
            if d.exit_status is None:
                d.exit_status = wait_status_to_exit(status)

    def _open(self, d: Draft, path: str, mode: str, pid: int, seq: int) -> None:
        if path.endswith("/") and path.rstrip("/") == self.root.cwd.rstrip("/"):
            # the working directory itself: make, shells and interpreters scan it as a matter
            # of course; counting that as data would re-run a step whenever any file appears
            return
        cls = self.classify(path)
        if cls == "ignored":
            return
        if mode == "u":
            # an update in place reads what the file held, then writes it: both, in that order
            self._open(d, path, "r", pid, seq)
            self.seq += 1
            seq, mode = self.seq, "k"
        if mode == "r":
            if cls == "data" and path not in self.first_write and path not in self.stream_paths:
                self.prior_reads.setdefault(path, seq)
            if cls == "data" and path not in d.outputs and path not in d.inputs and \
                    path not in d.code and path not in self.stream_paths:
                d.inputs[path] = seq
            return
        if mode == "a" and path not in self.last_write and path not in self.stream_paths \
                and cls == "data":
            # appended to before the tree wrote it: what it held is in no record
            self.appended.setdefault(path, None)
        self.last_write[path] = seq
        if mode in ("w", "rw"):  # not "a", "k", "u": those keep what the file held
            self.first_write.setdefault(path, seq)
        out = d.outputs.get(path)
        if out is None:
            out = d.outputs[path] = _Out(seq)
        out.writers.add(pid)
        out.finished = INFINITY
        if path in d.removed:
            d.removed.remove(path)

    def _rename(self, d: Draft, old: str, new: str, seq: int) -> None:
        out = d.outputs.pop(old, None)
        if self.classify(new) == "ignored":
            return
        if out is None:
            out = _Out(seq)
            if self.classify(old) != "ignored" and old not in d.removed:
                d.removed.append(old)
        out.finished = seq
        out.writers.clear()
        d.outputs[new] = out
        self.last_write[new] = seq
        self.first_write.setdefault(new, seq)
        if new in d.removed:
            d.removed.remove(new)

    def _unlink(self, d: Draft, path: str) -> None:
        if self.classify(path) == "ignored":
            return
        if d.outputs.pop(path, None) is not None:
            if path not in d.temporaries:
                d.temporaries.append(path)
        elif path not in d.removed:
            d.removed.append(path)

    # -- the end -------------------------------------------------------------------------

    def root_exited(self, exit_status: int) -> None:
        """The root is gone: fix its status (from waitpid) and name what outlived it."""
        self.root.exit_status = exit_status
        if self.root.ended is None:
            self.root.ended = time.time()
            self.root.ended_seq = self.seq + 1
        for p in self.procs.values():
            if p.alive and p.pid != self.root_pid:
                what = " ".join(p.argv[:4]) or "?"
                msg = (f"process {p.pid} ({what}) outlived the command; it was recorded up to "
                       "the command's exit")
                p.draft.warnings.append(msg)
                if p.draft is not self.root:
                    self.root.warnings.append(msg)

    def stream_output(self, stream: str, path: str) -> None:
        """The command's stdout/stderr was redirected to a regular file: an output."""
        if self.classify(path) == "ignored":
            return
        self.root.outputs.setdefault(path, _Out(0))
        self.root.streams[path] = stream

    def rewritten_in_place(self) -> dict[str, None]:
        """Data files a Run read before the tree first wrote them, and the tree wrote after.

        ``sed -i s/a/b/ f`` reads ``f`` and renames a temporary onto it; ``sort -o f f``
        opens it for writing first without truncating it, reads it, then truncates it through
        the descriptor; a program opening it ``O_RDWR`` updates it. Inputs are hashed after the
        command ended, so the digest there is of the new content (the output's own: its lineage
        would be a cycle), and the content the run really read is in no record. Such a path is
        recorded as an output only, and the run is never reused. A file the tree wrote first
        and then read back (a compiler's own object file) is an ordinary output.
        """
        return {p: None for p in self.prior_reads if p in self.last_write}

    def all_paths(self) -> set[str]:
        paths: set[str] = set()
        for d in self.drafts:
            paths.update(d.inputs)
            paths.update(d.outputs)
            paths.update(d.code)
        return paths

    def build(self, digests: dict[str, tuple[str, int]]) -> list[Run]:
        """Runs in the order they finished (upstream before downstream), root last."""
        self._join_pipe_readers()
        self._edited = self.rewritten_in_place()
        user = _user()
        host = os.uname().nodename  # what socket.gethostname() returns, without importing socket
        env = Environment(platform=platform_label())
        runs: dict[int, Run] = {}
        for d in self.drafts:
            runs[id(d)] = self._to_run(d, digests, user, host, env)
        for d in self.drafts:
            r = runs[id(d)]
            r.children = [c.run_id for c in d.children]
            r.parent = d.parent.run_id if d.parent else None
        order = sorted(self.drafts, key=lambda d: (d is self.root, d.ended_seq))
        return [runs[id(d)] for d in order]

    def _join_pipe_readers(self) -> None:
        """A script's step that read no file joins the step before it (the pipe's writer).

        The stages of ``sort f | uniq > out`` share a step because they run at once; but a
        first stage that is done before the shell forked the next (a small input on a busy
        machine) would leave ``uniq`` a step that read nothing and ``out`` without ``f`` in its
        lineage. Syscall tracing does not see pipes, so a script's command that read no file is
        taken to have read its predecessor's output: a larger step, never a lost input. For the
        same reason the script's own outputs (its redirected stdout, what ``echo > f`` or
        ``n=$(wc -l < f)`` wrote) count everything its commands had read before as read.
        """
        for d in list(self.drafts):
            kids = d.children
            for kid in kids:
                if kid.script_step:
                    # what the script's commands print reaches the shell (``$(wc -l < f)``,
                    # the script's own stdout): the shell's outputs may hold any of it
                    for path, seq in kid.inputs.items():
                        if path not in d.outputs:
                            d.inputs.setdefault(path, seq)
            i = 1
            while i < len(kids):
                cur, prev = kids[i], kids[i - 1]
                if cur.script_step and prev.script_step and not cur.inputs:
                    _absorb(prev, cur)
                    del kids[i]
                    self.drafts.remove(cur)
                    continue
                i += 1

    def _to_run(self, d: Draft, digests: dict[str, tuple[str, int]], user: str, host: str,
                env: Environment) -> Run:
        inputs: list[Artifact] = []
        warnings = list(d.warnings)
        missing: list[str] = []
        read = {p: s for p, s in d.inputs.items() if p not in self._edited}
        for path in read:
            dg = digests.get(path)
            if dg is None:
                if path not in self.last_write and not (
                        path.endswith("/") and path.startswith(_TEMP_DIRS)):
                    # one written within the tree and gone by its end is a temporary of the
                    # tree (Snakemake's solver files, the scratch folder it lists), not an
                    # input the record lost
                    missing.append(path)
                continue
            inputs.append(Artifact(path=path, sha256=dg[0], size=dg[1]))
        if missing:
            warnings.append(f"{len(missing)} input(s) were gone before they could be hashed: "
                            + ", ".join(missing[:5]))
        rewritten = [p for p, s in read.items() if self.last_write.get(p, 0) > s]
        if rewritten:
            warnings.append(f"{len(rewritten)} input(s) were written again after this run read "
                            "them, so their digest is of the later content: "
                            + ", ".join(rewritten[:5]))
        outputs: list[Output] = []
        for path, out in d.outputs.items():
            dg = digests.get(path)
            if dg is None:
                if out.symlink:
                    warnings.append(f"symlink {path} points to no regular file; not an output")
                continue
            finish = out.finished if out.finished != INFINITY else d.ended_seq
            outputs.append(Output(
                path=path, sha256=dg[0], size=dg[1],
                inputs=[p for p, s in read.items() if s < finish and p in digests],
                stream=d.streams.get(path)))  # type: ignore[arg-type]
        code = CodeIdentity()
        arts = [Artifact(path=p, sha256=digests[p][0], size=digests[p][1])
                for p in d.code if p in digests]
        if arts:
            code.script, code.modules = arts[0], arts[1:]
        return Run(
            run_id=d.run_id, argv=list(d.argv or []), cwd=d.cwd or self.root.cwd,
            started=d.started, ended=d.ended, exit_status=d.exit_status, user=user, host=host,
            pid=d.top, backend=self.backend,  # type: ignore[arg-type]
            code=code, environment=env, inputs=inputs, outputs=outputs,
            temporaries=list(d.temporaries), removed=list(d.removed), execs=list(d.execs),
            connects=list(d.connects), warnings=warnings)


def _absorb(into: Draft, d: Draft) -> None:
    """Merge step ``d`` into ``into`` (which ran before it)."""
    for path, seq in d.inputs.items():
        into.inputs.setdefault(path, seq)
    for path, out in d.outputs.items():
        into.outputs[path] = out
    for path in d.temporaries:
        if path not in into.temporaries:
            into.temporaries.append(path)
    for path in d.removed:
        if path not in into.removed:
            into.removed.append(path)
    for lst, more in ((into.code, d.code), (into.connects, d.connects),
                      (into.warnings, d.warnings)):
        lst.extend(x for x in more if x not in lst)
    into.execs.extend(d.execs)
    into.pids |= d.pids
    into.streams.update(d.streams)
    for child in d.children:
        child.parent = into
        into.children.append(child)
    if d.ended_seq >= into.ended_seq or into.ended is None:
        into.ended, into.ended_seq = d.ended, d.ended_seq
        into.exit_status = d.exit_status
    into.argv = (into.argv or []) + ["|"] + (d.argv or []) if d.argv else into.argv


def _user() -> str:
    """``getpass.getuser()`` (the same variables, then the password database), without
    importing getpass, which pulls in termios: this runs after the traced command ended."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        user = os.environ.get(name)
        if user:
            return user
    try:
        import pwd

        return pwd.getpwuid(os.getuid())[0]
    except Exception:
        return str(os.geteuid())
