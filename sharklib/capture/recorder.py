"""The recorder: one per captured process, fed by the audit hook and library patches.

This module is the contract between the capture core and the library patches
(``sharklib.capture.libs``): every public method takes a path in any form a
program may use and **never raises**. It only records; hashing, identity and
signing happen once, at exit (:mod:`sharklib.capture.finish`), so the hot path
is a few dictionary operations.

How an output's end is known without costing every write: a file opened for
writing through ``open``/``io.open`` is remembered by a weak reference; each
time an *input* is read, the still-open outputs are checked (``.closed``, or
the object is gone). An output found closed then was finished before that
read, so its inputs are exactly the inputs counted so far. Files written
through bare descriptors (``os.open``) are finished by a rename or at exit.
"""

from __future__ import annotations

import os
import sys
import time

# the weakref module's ``ref`` is this one; importing that module costs ~0.6 ms of start-up
from _weakref import ref as weakref_ref

from sharklib.common import paths
from sharklib.common.safety import describe, warn_once

# ``typing`` is not imported at run time: it costs every captured script ~2.5 ms of start-up
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from sharklib.model import Download, Exec

_current: Recorder | None = None


def current() -> Recorder | None:
    """The recorder of this process, or ``None`` when capture is off (patches then do nothing)."""
    return _current


def set_current(recorder: Recorder | None) -> None:
    global _current
    _current = recorder


def _project_prefix(cwd: str) -> str | None:
    """The project root (nearest ``.git``, else ``cwd``; see ``identity.project_root``) + ``/``.

    Worked out here, once, with the unpatched ``stat`` (so no probe is recorded for it):
    ``identity`` costs imports a script's start-up should not pay.
    """
    try:
        import posix

        path = cwd
        while True:
            for marker in ("/.git", "/.sharklib/shell"):
                try:
                    posix.stat(path + marker)
                except OSError:
                    continue
                return path.rstrip("/") + "/"
            parent = os.path.dirname(path)
            if parent == path:
                return cwd.rstrip("/") + "/"
            path = parent
    except Exception:
        return None


#: where the interpreter's own modules are: a probe made inside them is asked by the standard
#: library (``os.makedirs``, ``shutil.copy``, ``linecache``) unless it is one of :data:`QUESTIONS`
_STDLIB = (os.path.dirname(os.__file__) + "/", "<frozen ")

#: Standard library functions whose answer is the script's question, and which answers count
#: as the same (see :data:`sharklib.model.run.PROBE_KINDS`): ``exists`` is absent/present,
#: ``isfile``/``isdir`` one kind or not, ``exact`` the kind ``stat`` gives. A probe that comes
#: from any other function of the standard library is not recorded: ``os.makedirs``,
#: ``Path.mkdir``, ``shutil.copy``, ``os.path.realpath``, ``tempfile``, ``linecache`` look
#: at paths they are about to create or that only name code, and their outcome does not
#: depend on it. Called directly (``os.stat``, ``os.lstat``, ``os.access``), it is ``exact``.
QUESTIONS: dict[tuple[str, str], str] = {
    **{(m, f): q for m in ("genericpath", "posixpath", "os.path", "ntpath")
       for f, q in (("exists", "exists"), ("lexists", "exists"), ("isfile", "isfile"),
                    ("isdir", "isdir"), ("islink", "exact"), ("getsize", "exact"),
                    ("getmtime", "exact"), ("getatime", "exact"), ("getctime", "exact"),
                    ("samefile", "exact"))},
    **{(m, f): q for m in ("pathlib", "pathlib._local", "pathlib._abc") for f, q in (("exists", "exists"), ("is_file", "isfile"),
                                      ("is_dir", "isdir"), ("stat", "exact"),
                                      ("lstat", "exact"), ("is_symlink", "exact"),
                                      ("samefile", "exact"), ("glob", "exists"),
                                      ("rglob", "exists"))},
    ("glob", "glob"): "exists", ("glob", "iglob"): "exists",
}

#: which answer bits each question leaves possible, for the kind the path has (see model.run)
_PRESENT = 2 | 4 | 8


def _answer(question: str, kind: int) -> int:
    if question == "exists":
        return kind if kind == 1 else _PRESENT
    if question == "isfile":
        return kind if kind == 2 else 15 & ~2
    if question == "isdir":
        return kind if kind == 4 else 15 & ~4
    return kind


def _question(frame: Any, direct: str) -> tuple[str | None, bool]:
    """What the code that asked (``frame``, the caller of the patched function) wanted to know.

    Walks out through standard library frames: the outermost one names the function the
    script called (:data:`QUESTIONS`), the first frame beyond is the one that decides. None:
    not the script's question (sharklib's own, or a standard library function of another
    kind). The flag says whether an installed library (site-packages) asked.
    """
    entry = None
    f = frame
    while f is not None:
        name = f.f_code.co_filename
        if not name.startswith(_STDLIB) or "-packages/" in name:
            break
        entry = f
        f = f.f_back
    library = False
    if f is not None:
        module = f.f_globals.get("__name__")
        if module.__class__ is str and (module == "sharklib" or module.startswith("sharklib.")):
            return None, False
        library = "-packages/" in f.f_code.co_filename
    if entry is None:
        return direct, library
    return QUESTIONS.get((entry.f_globals.get("__name__"), entry.f_code.co_name)), library


def new_run_id() -> str:
    return os.urandom(16).hex()


class PendingOutput:
    """A file the run opened for writing, until it is hashed at exit."""

    __slots__ = ("append", "confirmed", "finished", "handle", "path", "start", "stream")

    def __init__(self, path: str, append: bool = False, confirmed: bool = False,
                 stream: str | None = None) -> None:
        self.path = path
        self.append = append
        self.confirmed = confirmed
        self.stream = stream
        #: for stdout/stderr redirected to this file: its size when the run began, so what the
        #: run printed is what lies after it (``make > build.log`` holds other steps' lines too)
        self.start = 0
        #: number of inputs read when the output was finished; None while still open
        self.finished: int | None = None
        self.handle: weakref_ref[Any] | None = None


class Recorder:
    """What one process read, wrote, removed, downloaded and connected to."""

    def __init__(self, argv: list[str], *, run_id: str | None = None, parent: str | None = None,
                 top: bool = False, session: str | None = None,
                 ignore: tuple[str, ...] | None = None) -> None:
        self.run_id = run_id or new_run_id()
        self.parent = parent
        self.argv = list(argv)
        self.top = top
        #: a top-level run prints its one summary line (not a step under ``sharklib env``)
        self.announce = True
        self.session = session
        self.pid = os.getpid()
        self.started = time.time()
        self.cwd = os.getcwd()
        extra = [session] if session else []
        self.ignore = ignore if ignore is not None else paths.ignored_prefixes(extra)
        self.active = True
        #: the record is being saved (a SIGTERM then leaves that to finish; see hooks)
        self.ending = False
        self.exit_status: int | None = None
        self._run_key: str | None = None
        #: the run key's parts (:class:`~sharklib.model.RunKeyParts`), gathered before the body ran
        self.key_parts: Any = None
        self.script: str | None = None
        #: (sha256, size) of the script as it was read to run, when sharklib read it
        self.script_digest: tuple[str, int] | None = None
        self.code_text: str | None = None
        self.inputs: dict[str, None] = {}
        self.pre_digests: dict[str, tuple[str, int]] = {}
        self.outputs: dict[str, PendingOutput] = {}
        self.open_outputs: list[PendingOutput] = []
        self.temporaries: list[str] = []
        #: output -> the file it was renamed from, written by another process of the run
        self.moved_in: dict[str, str] = {}
        #: outputs that get no sidecar beside them (signed by digest in the statement): the
        #: part files of a dataset directory, which its readers take wholesale (pyarrow,
        #: polars), so a ``.intoto.jsonl`` there would be read as one more part and fail
        self.no_sidecar: set[str] = set()
        self.removed: list[str] = []
        self.downloads: list[Download] = []
        self.connects: list[str] = []
        self.execs: list[Exec] = []
        self.warnings: list[str] = []
        #: the first file written inside the Python environment (site-packages, the stdlib):
        #: such a run is not cached, since no reuse could redo that change
        self.changed_environment: str | None = None
        #: what standard input is, when watched (:mod:`sharklib.capture.stdin`), and the kind of
        #: stream (pipe, terminal, socket) once the script read one: such a run is not reused
        self.stdin_kind: str | None = None
        self.read_stdin: str | None = None
        #: environment variables the user's own code read, name -> digest of the value then
        #: (:mod:`sharklib.capture.envreads`), and those it set itself (not inputs after that)
        self.env_reads: dict[str, str] = {}
        self.env_set: set[str] = set()
        #: the summary line was already written (into a redirected stderr, before signing it)
        self.summary_written = False
        #: why a run that could have been cached was not, for the summary line
        self.not_cached: str | None = None
        self._cwd: str | None = self.cwd
        self._dir_hint: tuple[Any, int] | None = None
        self._skip: Any = None
        self._last_write: tuple[Any, str] | None = None
        self._preloaded = False
        #: raw path strings already handled for reading (same cwd): a repeat read changes nothing
        self._seen: set[str] = set()
        #: modules loaded before capture started (site, .pth hooks): not the script's imports
        self.modules_at_start = frozenset(sys.modules)
        #: path -> answer bits (:data:`sharklib.model.run.PROBE_KINDS`) of what the script asked
        #: about a project file without opening it, before it changed that path itself
        self.probes: dict[str, int] = {}
        #: paths the run made, removed or renamed away (``os.mkdir``, ``os.rmdir``, a rename's
        #: source): what it asks about them afterwards is its own doing, not an input
        self.touched: set[str] = set()
        #: probed paths only a library asked about, and found absent: a library that looks
        #: before it writes a file (Pillow's ``Image.save``: was it created?) decides nothing
        #: the run's result depends on, so once the run writes the file the probe is dropped
        self.library_absent: set[str] = set()
        #: the project root with a trailing slash: only probes inside it are recorded
        self.project: str | None = _project_prefix(self.cwd)

    @property
    def run_key(self) -> str | None:
        """The run key, digested from :attr:`key_parts` when first needed.

        Digesting needs ``json`` and ``hashlib`` (~4 ms of imports), which a run
        that neither consults the cache nor leaves a record never pays.
        """
        if self._run_key is None and self.key_parts is not None:
            self._run_key = self.key_parts.digest()
        return self._run_key

    @run_key.setter
    def run_key(self, value: str | None) -> None:
        self._run_key = value

    # -- paths ---------------------------------------------------------------------------

    def canonical(self, path: Any, dir_fd: int | None = None) -> str | None:
        """Absolute normalised path for any path form, or None when it names no file."""
        cls = path.__class__
        if cls is str:
            p = path
        elif cls is bytes:
            p = os.fsdecode(path)
        elif cls is int:
            return paths.fd_path(path)
        else:
            try:
                p = os.fspath(path)
            except TypeError:
                return None  # not a path at all: the call itself will fail as it should
            if p.__class__ is bytes:
                p = os.fsdecode(p)
        if not p or "\0" in p:
            return None
        if p[0] != "/":
            hint = self._dir_hint
            if dir_fd is None and hint is not None and hint[0] is path:
                dir_fd = hint[1]
            if dir_fd is not None and dir_fd >= 0:
                base = paths.fd_path(dir_fd)
                if base is None:
                    return None
            else:
                base = self._cwd
                if base is None:
                    base = self._cwd = os.getcwd()
            p = base + "/" + p
        return paths.normalise(p)

    def cwd_changed(self) -> None:
        self._cwd = None
        self._seen.clear()

    def _ignored(self, p: str) -> bool:
        return paths.is_ignored(p, self.ignore)

    # -- finishing outputs ---------------------------------------------------------------

    def poll(self) -> None:
        """Finish every tracked output whose file object is closed or gone."""
        still: list[PendingOutput] = []
        count = len(self.inputs)
        for out in self.open_outputs:
            ref = out.handle
            obj = ref() if ref is not None else None
            closed = True
            if obj is not None:
                try:
                    closed = bool(obj.closed)
                except Exception:
                    closed = True
            if closed:
                if out.finished is None:
                    out.finished = count
            else:
                still.append(out)
        self.open_outputs = still

    def flush_open_outputs(self) -> None:
        """Flush what the script still has open, before it is hashed at a normal exit.

        The interpreter flushes those buffers itself, after ``atexit``; hashed before, a
        file the script never closed would be signed (and cached) without its last bytes.
        Not on ``os._exit``, SIGTERM or ``exec``: Python loses those buffers there, and so
        does the file.
        """
        for out in self.open_outputs:
            obj = out.handle() if out.handle is not None else None
            if obj is not None:
                try:  # one file's failure must not skip the others
                    if not obj.closed:
                        obj.flush()
                except Exception:
                    pass

    def track(self, fileobj: Any, file: Any, by_fd: bool = False) -> None:
        """Remember a file object opened for writing so its close is noticed."""
        try:
            if not self.active:
                return
            p: str | None = None
            last = self._last_write
            if by_fd:
                p = paths.fd_path(fileobj.fileno())
            elif last is not None and last[0] is file:
                p = last[1]
            else:
                p = self.canonical(file)
            if p is None:
                return
            out = self.outputs.get(p)
            if out is None:
                if self._ignored(p):
                    return
                out = self.outputs[p] = PendingOutput(p)
            out.confirmed = True
            out.finished = None
            out.handle = weakref_ref(fileobj)
            if out not in self.open_outputs:
                self.open_outputs.append(out)
        except Exception as exc:
            self._fail(exc)

    # -- the contract ----------------------------------------------------------------------

    def read_dir(self, path: Any) -> None:
        """A directory was listed: its listing (``path/``) is an input."""
        try:
            if not self.active or isinstance(path, int):
                return
            p = self.canonical(path, None)
            if p is None or p in self.outputs:
                return
            key = p.rstrip("/") + "/"
            if self._ignored(key):  # `/proc` itself (psutil, a kernel listing its processes)
                return
            if key not in self.inputs:
                self.inputs[key] = None
        except Exception as exc:
            self._fail(exc)

    def probed(self, path: Any, st_mode: int | None, direct: str = "exact") -> None:
        """The script asked about ``path`` without opening it (``os.stat`` and what calls it).

        ``st_mode`` is what the path turned out to be (None: absent, -1: not known yet; a
        symlink is judged by what it points to). Costs a prefix test for a path outside the
        project; inside it, probes of paths this run already wrote, made or removed are its own doing, and the
        question is found on the stack (:func:`_question`); ``direct`` is the question when
        the script called the patched function itself.
        """
        try:
            prefix = self.project
            if prefix is None or not self.active:
                return
            cls = path.__class__
            if cls is str:
                p = path
            elif cls is int or cls is bytes:
                return
            else:
                p = os.fspath(path)
                if p.__class__ is not str:
                    return
            if p and p[0] == "/" and not p.startswith(prefix):
                return
            p = self.canonical(p)
            if p is None or not p.startswith(prefix) or p in self.outputs \
                    or p in self.touched or self._ignored(p):
                return
            question, library = _question(sys._getframe(2), direct)
            if question is None:
                return
            if st_mode is not None and (st_mode == -1 or st_mode & 0o170000 == 0o120000):
                import posix  # an lstat of a symlink, or os.access (which tells no kind)

                try:
                    st_mode = posix.stat(p).st_mode
                except OSError:
                    st_mode = None
            kind = 1 if st_mode is None else 2 if st_mode & 0o170000 == 0o100000 else \
                4 if st_mode & 0o170000 == 0o040000 else 8
            answer = _answer(question, kind)
            before = self.probes.get(p)
            if before is None:
                self.probes[p] = answer
                if library and kind == 1:
                    self.library_absent.add(p)
            elif before & answer:
                self.probes[p] = before & answer
            if not library:
                self.library_absent.discard(p)
        except Exception as exc:
            self._fail(exc)

    def made(self, path: Any, dir_fd: int | None = None) -> None:
        """The run created or removed a directory: later questions about it are its own."""
        try:
            if self.active and self.project is not None:
                p = self.canonical(path, dir_fd)
                if p is not None:
                    self.touched.add(p)
        except Exception as exc:
            self._fail(exc)

    def read(self, path: Any, dir_fd: int | None = None) -> None:
        """A file was opened for reading."""
        try:
            if not self.active:
                return
            # Fast path: the same string read again adds nothing (and finishes nothing: an
            # output's inputs only change when a *new* input is read).
            raw = path if path.__class__ is str and dir_fd is None and self._dir_hint is None else None
            if raw is not None and raw in self._seen:
                return
            p = self.canonical(path, dir_fd)
            if p is None:
                return
            if self._ignored(p):
                if raw is not None and len(self._seen) < 100_000:
                    self._seen.add(raw)
                return
            if self.open_outputs:
                self.poll()
            if p in self.outputs:
                return
            if raw is not None and len(self._seen) < 100_000:
                self._seen.add(raw)
            if p in self.inputs:
                return
            self.inputs[p] = None
            if not self._preloaded:
                self.preload()
        except Exception as exc:
            self._fail(exc)

    def write(self, path: Any, dir_fd: int | None = None, append: bool = False) -> None:
        """A file was opened for writing, creation or appending."""
        self._write(path, dir_fd, append, confirmed=True)

    def write_event(self, path: Any, append: bool, keeps: bool = False) -> None:
        """The audit hook saw a write-open: it may still fail, so it is not confirmed yet.

        ``keeps``: the open keeps what the file holds (append, ``r+``, no ``O_TRUNC``), so
        the result depends on that content: it is an input (:meth:`prior`).
        """
        if keeps:
            self.prior(path, absent=append)
        self._write(path, None, append, confirmed=False)

    def prior(self, path: Any, dir_fd: int | None = None, absent: bool = True) -> None:
        """The run is about to change ``path`` in place: its content now is an input.

        A file appended to or updated (``open(p, "a")``, ``"r+"``, a SQLite database, an
        HDF5 file opened ``"a"``) ends up as its old content plus the run's changes, so a
        reuse that restored the recorded file over a different old content would lose data
        (what was appended since) or bring deleted lines back. Recorded with its digest
        now (it changes before exit), or :data:`~sharklib.model.ABSENT_SHA256` when it does
        not exist yet; a file this run already wrote is its own business.

        ``absent``: a missing file matters too (appended to, a database created: run again,
        the result would grow). ``False`` for a write-open without ``O_TRUNC`` that neither
        appends nor reads (``os.open(p, O_WRONLY | O_CREAT)``): written from its start, a file
        that did not exist owes nothing to what is there later.
        """
        try:
            if not self.active:
                return
            p = self.canonical(path, dir_fd)
            if p is None or p in self.outputs or p in self.pre_digests or self._ignored(p):
                return
            if not absent and not os.path.lexists(p):
                return
            if self.open_outputs:
                self.poll()
            if p not in self.inputs:
                self.inputs[p] = None
            self._digest_before_overwrite(p)
            if not self._preloaded:
                self.preload()
        except Exception as exc:
            self._fail(exc)

    def _write(self, path: Any, dir_fd: int | None, append: bool, confirmed: bool) -> None:
        try:
            if not self.active:
                return
            if self._skip is not None and self._skip is path:
                self._skip = None
                return
            p = self.canonical(path, dir_fd)
            if p is None:
                return
            if self._ignored(p):
                if self.changed_environment is None and paths.changes_environment(p):
                    self.changed_environment = p
                return
            self._last_write = (path, p)
            if p in self.library_absent:
                self.library_absent.discard(p)
                self.probes.pop(p, None)
            if p in self.inputs and p not in self.pre_digests and p not in self.outputs:
                self._digest_before_overwrite(p)
            out = self.outputs.get(p)
            if out is None:
                self.outputs[p] = PendingOutput(p, append=append, confirmed=confirmed)
                if not self._preloaded:
                    self.preload()
                if p in self.temporaries:
                    self.temporaries.remove(p)
            else:
                out.finished = None
                out.confirmed = out.confirmed or confirmed
                out.append = out.append or append
        except Exception as exc:
            self._fail(exc)

    def _digest_before_overwrite(self, p: str) -> None:
        """An input is about to be rewritten: keep the digest of what was read."""
        try:
            if os.stat(p).st_size >= 64 << 20:
                # a big database opened again and again: one stat when it did not change
                from sharklib.hashing import StatCache

                active, self.active = self.active, False  # its own files are not the run's
                try:
                    cache = StatCache()
                    try:
                        found = cache.digests([p]).get(p)
                    finally:
                        cache.close()
                finally:
                    self.active = active
                if found is not None:
                    self.pre_digests[p] = found
                return
            from sharklib.hashing import sha256_file

            self.pre_digests[p] = sha256_file(p)
        except FileNotFoundError:
            # read (and failed) or appended to before it existed: the run depended on its
            # absence, and its final content must not pass for what it read
            from sharklib.model.run import ABSENT_SHA256

            self.pre_digests[p] = (ABSENT_SHA256, 0)
        except OSError:
            pass

    def dataset_part(self, path: Any) -> None:
        """A file written into a dataset directory: an output, but no sidecar beside it."""
        try:
            p = self.canonical(path)
            if p is not None:
                self.no_sidecar.add(p)
        except Exception as exc:
            self._fail(exc)

    def closed(self, path: Any) -> None:
        """A written file was finished."""
        try:
            p = self.canonical(path)
            out = self.outputs.get(p) if p else None
            if out is not None:
                out.confirmed = True
                if out.finished is None:
                    out.finished = len(self.inputs)
                if out in self.open_outputs:
                    self.open_outputs.remove(out)
        except Exception as exc:
            self._fail(exc)

    def rename(self, src: Any, dst: Any, src_dir_fd: int | None = None,
               dst_dir_fd: int | None = None) -> None:
        """``src`` was moved to ``dst``: a pending output travels with its record."""
        try:
            if not self.active:
                return
            s = self.canonical(src, src_dir_fd)
            d = self.canonical(dst, dst_dir_fd)
            if s is None or d is None:
                return
            if self.open_outputs:
                self.poll()
            self.touched.add(s)
            out = self.outputs.pop(s, None)
            if self._ignored(d):
                return
            if out is None:
                # another process wrote it (a worker's partial), or it predates the run: what
                # fed it is found at the end, if the run's tree produced it (finish.build_run)
                self.moved_in[d] = s
                out = PendingOutput(d, confirmed=True)
                out.finished = len(self.inputs)
            else:
                out.path = d
                out.confirmed = True
                if out.finished is None:
                    out.finished = len(self.inputs)
                if out in self.open_outputs:
                    self.open_outputs.remove(out)
                out.handle = None
            previous = self.outputs.pop(d, None)
            if previous is not None and previous.finished is None and previous in self.open_outputs:
                self.open_outputs.remove(previous)
            self.outputs[d] = out
            if d in self.temporaries:
                self.temporaries.remove(d)
        except Exception as exc:
            self._fail(exc)

    def remove(self, path: Any, dir_fd: int | None = None) -> None:
        """A file was deleted: written in this run means temporary, else a removal."""
        try:
            if not self.active:
                return
            p = self.canonical(path, dir_fd)
            if p is None or self._ignored(p):
                return
            self.touched.add(p)
            out = self.outputs.pop(p, None)
            if out is not None:
                if out in self.open_outputs:
                    self.open_outputs.remove(out)
                if p not in self.temporaries:
                    self.temporaries.append(p)
            elif p not in self.removed:
                self.removed.append(p)
        except Exception as exc:
            self._fail(exc)

    def download(self, d: Download) -> None:
        """Bytes were fetched from a URL (the library patches hash them as they stream)."""
        try:
            if self.active:
                self.downloads.append(d)
        except Exception as exc:
            self._fail(exc)

    def connect(self, address: str) -> None:
        """A network connection was opened."""
        try:
            if self.active and address not in self.connects:
                self.connects.append(address)
        except Exception as exc:
            self._fail(exc)

    def exec_(self, path: Any, argv: Any, cwd: Any = None) -> None:
        """A program was started (``subprocess``, ``os.exec*``, ``os.posix_spawn``)."""
        try:
            if not self.active:
                return
            from sharklib.model import Exec

            args = [os.fsdecode(a) if isinstance(a, bytes | os.PathLike) else str(a)
                    for a in (argv if isinstance(argv, list | tuple) else [argv])]
            prog = os.fsdecode(path) if path is not None else (args[0] if args else "")
            self.execs.append(Exec(pid=0, path=str(prog), argv=args,
                                   cwd=os.fsdecode(cwd) if cwd is not None else None,
                                   parent_pid=os.getpid()))
        except Exception as exc:
            self._fail(exc)

    # -- bookkeeping -----------------------------------------------------------------------

    def preload(self) -> None:
        """Import the digest functions while imports surely work (once, on the first data file).

        Interpreter shutdown runs ``threading._shutdown()`` before ``atexit``;
        from then on ``concurrent.futures.thread`` (parallel hashing) can no
        longer be imported, and hashing falls back to one thread. Runs that
        touch no data file never pay for this. The stat cache is not imported
        here: its ``sqlite3`` would trigger sharklib's own sqlite3 patch in a
        script that never uses SQLite.
        """
        self._preloaded = True
        try:
            import sharklib.hashing.digest  # noqa: F401
        except Exception as exc:
            self._fail(exc)

    def forked(self) -> Recorder:
        """The recorder of a forked child: its own run, whose parent is this one."""
        child = Recorder(self.argv, parent=self.run_id, top=False, session=self.session,
                         ignore=self.ignore)
        child.script = self.script
        child.script_digest = self.script_digest
        child.code_text = self.code_text
        child.key_parts = self.key_parts
        child._run_key = self._run_key
        child.modules_at_start = self.modules_at_start
        child.project = self.project
        return child

    def env_read(self, name: str, value: str | None) -> None:
        """The script's own code read ``name``: the first value it saw is an input."""
        if name in self.env_reads or name in self.env_set or not isinstance(name, str):
            return
        try:
            from sharklib.common.envread import value_digest

            self.env_reads[name] = value_digest(name, value)
        except Exception as exc:
            self._fail(exc)

    def env_written(self, name: str) -> None:
        """The process set or removed ``name``: later reads see its own value, not an input."""
        if isinstance(name, str):
            self.env_set.add(name)

    def stdin_read(self) -> None:
        """The script read its standard input (a redirected file is an input like any other)."""
        try:
            kind, self.stdin_kind = self.stdin_kind, None  # once is enough
            if kind == "file":
                from sharklib.capture.session import stream_file

                found = stream_file(0)  # the same question as for a redirected stdout
                if found is not None:
                    self.read(found[0])  # by name too: lineage links it to its producer
                # the run key holds the digest of its content (identity.stdin_identity), also
                # of a deleted file (a here-string): a reuse is asked the same question
                return
            if kind is not None:
                self.read_stdin = kind
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        msg = f"capture problem: {describe(exc)}"
        if msg not in self.warnings:
            self.warnings.append(msg)
        warn_once(msg)
