"""Every hook capture installs in a process, each small and unable to hurt it.

* :func:`audit_hook` (``sys.addaudithook``) sees ``open`` (builtin, ``io``,
  ``os.open``, ``open_code``), ``os.rename``/``os.replace``, ``os.remove``/
  ``os.unlink``, ``os.link``, ``os.truncate``, ``os.chdir``, ``subprocess.Popen``,
  ``os.exec``, ``os.posix_spawn``, ``socket.connect``. One dict lookup per
  event; anything that goes wrong becomes a warning line.
* :func:`patch_open` wraps ``builtins.open``/``io.open`` only to keep a weak
  reference to files opened for writing (their close ends the output).
* :func:`patch_os_open` passes ``dir_fd`` to the recorder (the audit event
  does not carry it).
* :func:`patch_exit` saves the record before ``os._exit`` and notes the exit
  status given to ``sys.exit`` or shown by ``sys.excepthook``.
* :func:`install_fork_handler` makes a forked child its own run.

Audit hooks cannot be removed; when capture stops they find no recorder and
return at once.
"""

from __future__ import annotations

# ``_signal``, not ``signal``: the wrapper module imports ``enum`` (~2 ms of start-up) to turn
# handler numbers into enum members, which nothing here needs; comparisons use ``==``
import _signal
import builtins
import contextlib
import io
import os
import sys
from collections.abc import Callable

from sharklib.capture import recorder as _rec
from sharklib.capture.stdin import STDIN_PATHS
from sharklib.common.safety import describe, warn_once

# ``typing`` is not imported at run time: it costs every captured script ~2.5 ms of start-up
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_installed: set[str] = set()
_originals: dict[str, Any] = {}


def _on_open(rec: _rec.Recorder, args: tuple[Any, ...]) -> None:
    path, mode, flags = args
    if path.__class__ is int:
        if path == 0 and rec.stdin_kind is not None:
            rec.stdin_read()
        elif (path == 1 or path == 2) and flags & (os.O_WRONLY | os.O_RDWR):
            # open(1, "w") / os.fdopen(2, "w"): written past the copy kept for replay
            _own_stream_object(rec, path)
        return
    if rec.stdin_kind is not None and path in STDIN_PATHS:
        rec.stdin_read()
        return
    if mode is None:
        if flags & _WRITE_FLAGS:
            rec.write_event(path, bool(flags & os.O_APPEND), _keeps_content(flags))
        else:
            rec.read(path)
    elif "w" in mode or "a" in mode or "x" in mode or "+" in mode:
        rec.write_event(path, "a" in mode, _keeps_content(flags))
    else:
        rec.read(path)


def _own_stream_object(rec: _rec.Recorder, fd: int) -> None:
    from sharklib.capture import session

    if fd in session._labels and rec.session:
        name = "stdout" if fd == 1 else "stderr"
        session.not_replayable(rec.session, f"it wrote to {name} through its own file object "
                                            f"(open({fd}))")


def _keeps_content(flags: int) -> bool:
    """Does a write-open keep what the file holds (append, ``r+``, no ``O_TRUNC``)?

    ``open(p, "w")`` truncates and ``"x"`` creates: the result owes nothing to the old
    content. ``"a"``, ``"r+"``, ``os.open(p, O_RDWR)`` leave it in place.
    """
    return bool(flags & (os.O_WRONLY | os.O_RDWR)) and not flags & (os.O_TRUNC | os.O_EXCL)


def _on_input(rec: _rec.Recorder, args: tuple[Any, ...]) -> None:
    if rec.stdin_kind is not None:
        rec.stdin_read()


def _on_listdir(rec: _rec.Recorder, args: tuple[Any, ...]) -> None:
    # the import system lists every directory on sys.path (the script's own among them);
    # that is how Python finds modules, not what the script depends on
    caller = sys._getframe(2).f_code.co_filename
    # `os` is frozen too (`<frozen os>`): os.walk's listings are the script's
    if caller.startswith(("<frozen importlib", "<frozen zipimport")) or "importlib" in caller \
            or "pkgutil" in caller:
        return
    target = args[0] if args and args[0] is not None else "."
    if target.__class__ is int:  # os.fwalk lists directories by descriptor
        try:
            target = os.readlink(f"/proc/self/fd/{target}")
        except OSError:
            return
    rec.read_dir(target)


def _on_rename(rec: _rec.Recorder, args: tuple[Any, ...]) -> None:
    src, dst, sfd, dfd = args
    rec.rename(src, dst, sfd if sfd is not None and sfd >= 0 else None,
               dfd if dfd is not None and dfd >= 0 else None)


def _on_remove(rec: _rec.Recorder, args: tuple[Any, ...]) -> None:
    path, dir_fd = args
    rec.remove(path, dir_fd if dir_fd is not None and dir_fd >= 0 else None)


def _on_link(rec: _rec.Recorder, args: tuple[Any, ...]) -> None:
    rec.write(args[1], args[3] if args[3] is not None and args[3] >= 0 else None)
    rec.closed(args[1])


def _on_truncate(rec: _rec.Recorder, args: tuple[Any, ...]) -> None:
    if args[0].__class__ is not int:
        rec.write(args[0])
        rec.closed(args[0])


def _on_mkdir(rec: _rec.Recorder, args: tuple[Any, ...]) -> None:
    rec.made(args[0], args[2] if args[2] is not None and args[2] >= 0 else None)


def _on_rmdir(rec: _rec.Recorder, args: tuple[Any, ...]) -> None:
    rec.made(args[0], args[1] if args[1] is not None and args[1] >= 0 else None)


def _on_chdir(rec: _rec.Recorder, args: tuple[Any, ...]) -> None:
    rec.cwd_changed()


def _on_popen(rec: _rec.Recorder, args: tuple[Any, ...]) -> None:
    executable, argv, cwd = args[0], args[1], args[2]
    rec.exec_(executable, argv, cwd)


def _on_exec(rec: _rec.Recorder, args: tuple[Any, ...]) -> None:
    rec.exec_(args[0], args[1])
    from sharklib.capture import bootstrap

    bootstrap.before_exec(args[2] if len(args) > 2 else None)


def _on_spawn(rec: _rec.Recorder, args: tuple[Any, ...]) -> None:
    rec.exec_(args[0], args[1])


def _on_system(rec: _rec.Recorder, args: tuple[Any, ...]) -> None:
    rec.exec_("/bin/sh", ["/bin/sh", "-c", args[0]])


def _on_fork(rec: _rec.Recorder, args: tuple[Any, ...]) -> None:
    if "fork-preload" not in _installed:
        _installed.add("fork-preload")
        from sharklib.capture import bootstrap

        bootstrap.preload_for_children()


def _on_connect(rec: _rec.Recorder, args: tuple[Any, ...]) -> None:
    address = args[1]
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        rec.connect(f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}")


_HANDLERS: dict[str, Callable[[_rec.Recorder, tuple[Any, ...]], None]] = {
    "open": _on_open,
    "os.rename": _on_rename,
    "os.remove": _on_remove,
    "os.link": _on_link,
    "os.truncate": _on_truncate,
    "os.chdir": _on_chdir,
    "os.mkdir": _on_mkdir,
    "os.rmdir": _on_rmdir,
    "subprocess.Popen": _on_popen,
    "os.exec": _on_exec,
    "os.posix_spawn": _on_spawn,
    "os.spawn": _on_spawn,
    "os.system": _on_system,
    "socket.connect": _on_connect,
    "os.listdir": _on_listdir,
    "os.scandir": _on_listdir,
    "os.fork": _on_fork,
    "builtins.input": _on_input,
}


def audit_hook(event: str, args: tuple[Any, ...]) -> None:
    """The per-event path: a dict lookup, and nothing at all for other events."""
    handler = _HANDLERS.get(event)
    if handler is None:
        return
    rec = _rec._current
    if rec is None or not rec.active:
        return
    if (handler is _on_open and (args[1] == "r" or args[1] == "rb")
            and args[0].__class__ is str and args[0] in rec._seen):
        return  # the commonest event of all: a file read again by the same name
    try:
        handler(rec, args)
    except Exception as exc:
        try:  # noqa: SIM105 - no context manager on the per-event path
            rec._fail(exc)
        except Exception:
            pass


def install_audit_hook() -> None:
    if "audit" in _installed:
        return
    _installed.add("audit")
    sys.addaudithook(audit_hook)


# -- open --------------------------------------------------------------------------------


def _make_open(original: Callable[..., Any]) -> Callable[..., Any]:
    def open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode == "r" or mode == "rb" or mode == "rt":
            return original(file, mode, *args, **kwargs)
        rec = _rec._current
        if rec is None:
            return original(file, mode, *args, **kwargs)
        opener = kwargs.get("opener") if kwargs else None
        if opener is None and len(args) >= 6:
            opener = args[5]
        if opener is not None:
            rec._skip = file
        try:
            f = original(file, mode, *args, **kwargs)
        finally:
            if opener is not None:
                rec._skip = None
        if "w" in mode or "a" in mode or "x" in mode or "+" in mode:
            rec.track(f, file, by_fd=opener is not None or file.__class__ is int)
        return f

    open.__doc__ = original.__doc__
    open.__wrapped__ = original  # type: ignore[attr-defined]
    return open


def patch_open() -> None:
    """Wrap ``builtins.open`` and ``io.open`` (the same function) once."""
    if "open" in _installed:
        return
    _installed.add("open")
    original = io.open
    _originals["open"] = original
    wrapped = _make_open(original)
    builtins.open = wrapped
    io.open = wrapped


def patch_os_write() -> None:
    """``os.write(1, …)``/``os.write(2, …)``: copied for replay like what ``print`` writes.

    One dictionary lookup per call for other descriptors. Bytes written to the standard
    descriptors without Python (a C library's ``printf``) are not seen.
    """
    if "os.write" in _installed:
        return
    _installed.add("os.write")
    from sharklib.capture import session

    original = os.write
    _originals["os.write"] = original
    labels = session._labels

    def write(fd: int, data: Any, /) -> int:
        n = original(fd, data)
        if fd in labels:
            session.copied(fd, data, n)
        return n

    write.__doc__ = original.__doc__
    write.__wrapped__ = original  # type: ignore[attr-defined]
    os.write = write


def patch_os_open() -> None:
    """``os.open(..., dir_fd=)``: tell the recorder which directory a relative path is in."""
    if "os.open" in _installed:
        return
    _installed.add("os.open")
    original = os.open
    _originals["os.open"] = original

    def open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        rec = _rec._current
        if dir_fd is None or rec is None:
            return original(path, flags, mode, dir_fd=dir_fd)
        rec._dir_hint = (path, dir_fd)
        try:
            return original(path, flags, mode, dir_fd=dir_fd)
        finally:
            rec._dir_hint = None

    open.__doc__ = original.__doc__
    open.__wrapped__ = original  # type: ignore[attr-defined]
    os.open = open


def patch_os_stat() -> None:
    """``os.stat``/``os.lstat``/``os.access``: what the script asked about a project file.

    ``os.path.exists``, ``isfile``, ``isdir``, ``getsize`` and pathlib's ``exists``,
    ``is_file``, ``stat`` all call ``os.stat`` or ``os.lstat`` through the module
    attribute, so these three wrappers see every such question (the recorder keeps those
    about project files, :meth:`~sharklib.capture.recorder.Recorder.probed`). The import
    system calls ``posix.stat`` itself and never comes here. A descriptor, a ``dir_fd``
    path or capture being off costs one test; a path outside the project a prefix test.
    """
    if "os.stat" in _installed:
        return
    _installed.add("os.stat")
    original_stat, original_lstat, original_access = os.stat, os.lstat, os.access
    _originals["os.stat"], _originals["os.lstat"] = original_stat, original_lstat
    _originals["os.access"] = original_access

    fspath = os.fspath

    def inside(prefix: str | None, path: Any) -> bool:
        """Could ``path`` be a project file? (``prefix``: the project root and ``/``)."""
        if prefix is None:
            return False
        cls = path.__class__
        if cls is not str:
            if cls is int or cls is bytes:
                return False
            try:
                path = fspath(path)
            except TypeError:
                return False
            if path.__class__ is not str:
                return False
        return path[:1] != "/" or path.startswith(prefix)

    def stat(path: Any, *, dir_fd: int | None = None, follow_symlinks: bool = True) -> Any:
        rec = _rec._current
        # the common cases first, with no call: capture off, or an absolute path elsewhere
        if rec is None or dir_fd is not None or (
                path.__class__ is str and path[:1] == "/"
                and not path.startswith(rec.project or "\0")) or not inside(rec.project, path):
            if follow_symlinks and dir_fd is None:
                return original_stat(path)
            return original_stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
        try:
            st = original_stat(path, follow_symlinks=follow_symlinks)
        except (FileNotFoundError, NotADirectoryError):
            rec.probed(path, None)
            raise
        rec.probed(path, st.st_mode)
        return st

    def lstat(path: Any, *, dir_fd: int | None = None) -> Any:
        rec = _rec._current
        if rec is None or dir_fd is not None or (
                path.__class__ is str and path[:1] == "/"
                and not path.startswith(rec.project or "\0")) or not inside(rec.project, path):
            return original_lstat(path) if dir_fd is None else original_lstat(path, dir_fd=dir_fd)
        try:
            st = original_lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            rec.probed(path, None)
            raise
        rec.probed(path, st.st_mode)
        return st

    def access(path: Any, mode: int, *, dir_fd: int | None = None,
               effective_ids: bool = False, follow_symlinks: bool = True) -> bool:
        ok = original_access(path, mode, dir_fd=dir_fd, effective_ids=effective_ids,
                             follow_symlinks=follow_symlinks)
        rec = _rec._current
        if rec is None or dir_fd is not None or not inside(rec.project, path):
            return ok
        if ok and mode == os.F_OK:
            rec.probed(path, 0o100000, "exists")  # present; which kind it did not ask
        else:  # denied or missing, or allowed: the kind it has, looked up for a project file
            rec.probed(path, -1, "exists" if mode == os.F_OK else "exact")
        return ok

    wrappers: tuple[tuple[Any, Any], ...] = ((stat, original_stat), (lstat, original_lstat),
                                             (access, original_access))
    for wrapper, original in wrappers:
        wrapper.__doc__ = original.__doc__
        wrapper.__wrapped__ = original
    os.stat, os.lstat, os.access = stat, lstat, access


# -- exit ---------------------------------------------------------------------------------


def exit_code_of(code: Any) -> int:
    """The process exit status Python derives from ``SystemExit.code``."""
    if code is None:
        return 0
    if isinstance(code, bool):
        return int(code)
    if isinstance(code, int):
        return code & 0xFF
    return 1


def patch_exit(save: Callable[[int], None]) -> None:
    """Save first on ``os._exit`` (as coverage.py does); note ``sys.exit`` statuses."""
    if "exit" in _installed:
        return
    _installed.add("exit")
    real_os_exit = os._exit
    _originals["os._exit"] = real_os_exit

    def _exit(status: int) -> NoReturn:
        try:
            save(int(status))
        except BaseException as exc:
            warn_once(f"could not save the record before os._exit: {describe(exc)}")
        real_os_exit(status)

    os._exit = _exit

    real_sys_exit = sys.exit
    _originals["sys.exit"] = real_sys_exit

    def exit(status: str | int | None = None) -> NoReturn:
        rec = _rec._current
        if rec is not None:
            with contextlib.suppress(Exception):
                rec.exit_status = exit_code_of(status)
        real_sys_exit(status)

    exit.__doc__ = real_sys_exit.__doc__
    sys.exit = exit

    previous_hook = sys.excepthook

    def excepthook(typ: type[BaseException], value: BaseException, tb: Any) -> None:
        rec = _rec._current
        if rec is not None:
            rec.exit_status = 1
        with contextlib.suppress(Exception):
            tb = drop_own_frames(value, tb)
        previous_hook(typ, value, tb)

    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = excepthook


def _ours(tb: Any) -> bool:
    name = tb.tb_frame.f_globals.get("__name__", "")
    return isinstance(name, str) and (name == "sharklib" or name.startswith("sharklib."))


def drop_own_frames(exc: BaseException, tb: Any = None) -> Any:
    """``exc``'s traceback without sharklib's frames, for an uncaught exception's report.

    The wrapped ``open`` (and the library patches, and the tee of ``sys.stdout``) sit between
    the script's call and the C function that raised: ``open('missing.csv')`` would otherwise
    show a frame of sharklib's above ``FileNotFoundError``. Exceptions it is chained to are
    cleaned too. Frames are unlinked in place (``tb_next`` is writable).
    """
    seen: set[int] = set()

    def clean(e: BaseException, head: Any) -> Any:
        kept = []
        while head is not None:
            if not _ours(head):
                kept.append(head)
            head = head.tb_next
        for i in range(len(kept) - 1):
            kept[i].tb_next = kept[i + 1]
        if kept:
            kept[-1].tb_next = None
        first = kept[0] if kept else None
        e.__traceback__ = first
        for other in (e.__cause__, e.__context__):
            if other is not None and id(other) not in seen:
                seen.add(id(other))
                clean(other, other.__traceback__)
        return first

    seen.add(id(exc))
    return clean(exc, tb if tb is not None else exc.__traceback__)


def install_sigterm(save: Callable[[int], None], busy: Callable[[], bool]) -> None:
    """Save the record on SIGTERM, then die of it as Python would.

    For the top-level process (``sharklib run`` stopped by ``timeout`` or a
    scheduler) and multiprocessing workers (``Pool`` ends its workers with
    SIGTERM), whose outputs must be recorded all the same. Forked children keep
    it, since their recorder is their own (see ``bootstrap._after_fork_in_child``).
    """
    try:
        if _signal.getsignal(_signal.SIGTERM) != _signal.SIG_DFL:
            return
    except (ValueError, TypeError):
        return

    def handler(signum: int, frame: Any) -> None:
        # SIGTERM while the record is already being saved (a Pool worker leaving through
        # os._exit is sent one by Pool.terminate): saving again from inside that save would
        # find its modules half imported and lose the record; the process is leaving anyway.
        if busy():
            return
        # and a second SIGTERM must not run this handler again inside the first
        with contextlib.suppress(ValueError, OSError):
            _signal.signal(signum, _signal.SIG_IGN)
        try:
            save(-signum)
        except BaseException as exc:
            warn_once(f"could not save the record on SIGTERM: {describe(exc)}")
        _signal.signal(signum, _signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    try:
        _signal.signal(_signal.SIGTERM, handler)
        _originals["sigterm"] = handler
    except (ValueError, OSError):
        pass


def install_fork_handler(before: Callable[[], None], after_in_child: Callable[[], None]) -> None:
    if "fork" in _installed:
        return
    _installed.add("fork")
    os.register_at_fork(before=before, after_in_child=after_in_child)
