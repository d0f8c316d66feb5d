"""Code and environment identity, and the run key built from them.

Two moments need these facts. At start, before the script body runs, the run
key's parts (argv, cwd relative to the project, script digest, interpreter,
allow-listed variables) must be cheap: they are gathered on every run, reused or
not, and digested only when the cache or the record needs the key. At exit the
full identity is gathered for the attestation: digests of local modules
actually imported, the distributions those imports came from, and git state
(asked of ``git`` only then, and only when there is something to sign).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterable, Mapping

from sharklib.common import paths
from sharklib.config import ENV_ALLOW, ENV_MAKE_STDIN, ENV_TAG
from sharklib.model.runkey import relative_to_root, relocate, run_key_parts, sha256_hex

# ``typing`` is not imported at run time: it costs every captured script ~2.5 ms of start-up
TYPE_CHECKING = False

if TYPE_CHECKING:
    from sharklib.model import Artifact, CodeIdentity, Environment, GitInfo, RunKeyParts

#: Variables that change what a scientific script computes; more via SHARKLIB_ENV_ALLOW.
ALLOWED_VARIABLES = ("LANG", "LANGUAGE", "LC_*", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                     "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "PYTHONHASHSEED",
                     "CUDA_VISIBLE_DEVICES", "PYTHONIOENCODING", "PYTHONUTF8")


def allowed_variables(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed environment variables that are set (``NAME`` or ``PREFIX*``)."""
    env = os.environ if environ is None else environ
    patterns = list(ALLOWED_VARIABLES)
    extra = env.get(ENV_ALLOW, "")
    patterns.extend(p for p in extra.replace(",", " ").replace(":", " ").split() if p)
    # plain comparisons, not fnmatch: compiling patterns cost ~10 ms of start-up
    exact = {p for p in patterns if not p.endswith("*")}
    prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))
    return {name: env[name] for name in sorted(env)
            if name in exact or (prefixes and name.startswith(prefixes))}


def project_root(cwd: str) -> str:
    """The nearest directory holding ``.git`` (walking up, no git needed), else ``cwd``.

    A ``sharklib shell`` workspace (a directory holding ``.sharklib/shell``) is a
    project root too: a command run in one of its sub-directories is keyed and
    recorded relative to the workspace, as in a git checkout.
    """
    path = os.path.abspath(cwd)
    while True:
        if os.path.exists(os.path.join(path, ".git")) or \
                os.path.isdir(os.path.join(path, ".sharklib", "shell")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return os.path.abspath(cwd)
        path = parent


def _digest_text(text: str) -> str:
    return sha256_hex(text.encode("utf-8", "surrogateescape"))


def script_digest(script: str | None, code_text: str | None = None) -> str | None:
    """Digest of the code a run executes: the code string, or the script file."""
    if code_text is not None:
        return _digest_text(code_text)
    if not script:
        return None
    try:
        with open(script, "rb") as fh:
            return sha256_hex(fh.read())
    except OSError:
        return None


def module_source(name: str, cwd: str) -> str | None:
    """The source file ``python -m name`` will run, found without importing anything.

    The bootstrap runs before the interpreter puts the working directory on
    ``sys.path`` and before ``runpy`` imports the module's packages, and must not
    run a package's ``__init__`` early; so the path is searched as the import
    system would, for ``a/b.py`` or ``a/b/__main__.py``. ``None`` when not found
    plainly (a zip, a C extension, a path hook): such a run is then not reused,
    and :func:`main_file_is` confirms at exit that the file found is the one that ran.
    """
    parts = name.split(".")
    if not all(p.isidentifier() for p in parts):
        return None
    entries = ([] if sys.flags.safe_path else [cwd]) + [e or cwd for e in sys.path]
    for entry in entries:
        base = os.path.join(entry, *parts)
        for candidate in (base + ".py", os.path.join(base, "__main__.py")):
            if os.path.isfile(candidate):
                return os.path.abspath(candidate)
        top = os.path.join(entry, parts[0])
        if os.path.isfile(os.path.join(top, "__init__.py")) or os.path.isfile(top + ".py"):
            return None  # the import system stops at this entry; what it finds here is unusual
    return None


def main_file_is(path: str | None) -> bool:
    """Did ``__main__`` run from ``path``? (The module :func:`module_source` found.)"""
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    return bool(path and isinstance(file, str)
                and os.path.realpath(file) == os.path.realpath(path))


def key_places() -> list[tuple[str, str]]:
    """This interpreter's directories, as symbols in run keys (see :func:`~sharklib.model.runkey.relocate`).

    A venv at ``/home/ann/.venv`` and one at ``/opt/ci/venv`` are both ``<prefix>``:
    where an interpreter lives is not what it is (its implementation, version and the
    distributions a run imported are, and the reuse check compares those).
    """
    places: dict[str, str] = {}
    for directory, symbol in ((sys.prefix, "<prefix>"), (sys.base_prefix, "<base-prefix>")):
        for variant in (directory, os.path.realpath(directory)):
            if variant and variant != "/" and variant not in places:
                places[variant] = symbol
    return list(places.items())


def environment_key() -> dict[str, str]:
    """What of the environment enters the run key (cheap: no metadata scan).

    The interpreter by what it is, not where it lives: no path of it or its venv.
    """
    env = {"python": sys.version.split()[0], "implementation": sys.implementation.name}
    for name, value in allowed_variables().items():
        env["env:" + name] = value
    tag = os.environ.get(ENV_TAG)
    if tag:
        env["tag"] = tag
    return env


def stdin_identity(fd: int = 0) -> str | None:
    """What standard input holds, for the run key, when a rerun could be given the same bytes.

    ``python upper.py < A.txt`` then ``< B.txt`` are two questions with two answers, and the
    script's argv, code and environment are the same: the bytes on standard input must be in
    the key. A regular file (also a deleted one: a bash here-string or here-document) counts
    by the sha256 of what is left to read from its current offset (``pread``: the offset the
    script will start from is not moved); a device that is not a terminal (``< /dev/null``,
    the usual standard input of cron and batch jobs) by its device number, which is the same
    on every machine. A terminal, pipe or socket gives None: those bytes are gone once read,
    and a run that reads them is not cached at all (:mod:`sharklib.capture.stdin`).
    """
    import stat

    try:
        st = os.fstat(fd)
    except OSError:
        return None
    if stat.S_ISCHR(st.st_mode):
        if os.isatty(fd):
            return None
        return f"device:{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    if stat.S_ISFIFO(st.st_mode):
        return make_job_stdin(fd)
    if not stat.S_ISREG(st.st_mode):
        return None
    import hashlib

    try:
        offset = os.lseek(fd, 0, os.SEEK_CUR)
        h = hashlib.sha256()
        while True:
            chunk = os.pread(fd, 1 << 20, offset)
            if not chunk:
                break
            h.update(chunk)
            offset += len(chunk)
    except OSError:
        return None  # not readable (opened for writing only): nothing a script could read
    return "file:sha256:" + h.hexdigest()


#: stdin identities that read as nothing at all: ``/dev/null`` and a file with nothing left
_READS_EMPTY = ("device:1:3",
                "file:sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def make_job_stdin(fd: int) -> str | None:
    """The identity of make's standard input for a job of ``make -j`` handed make's dead pipe.

    GNU make gives its own standard input to one running job at a time and to every other
    job the read end of a pipe whose write end it closed: an immediate end of file. Which
    job holds the real one depends on timing, so with make's input on ``/dev/null`` (CI,
    cron, pytest) a step was keyed ``device:1:3`` in one run and without standard input in
    the next, and was run again instead of reused. A pipe that nobody can write to and that
    holds nothing reads exactly as an empty input, so under ``sharklib env -- make`` whose
    own input reads empty it gets that input's identity; any other pipe stays unkeyed.
    """
    made = os.environ.get(ENV_MAKE_STDIN)
    if made not in _READS_EMPTY:
        return None
    import select

    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        events = poller.poll(0)
    except (OSError, ValueError):
        return None
    revents = events[0][1] if events else 0
    if revents & select.POLLHUP and not revents & select.POLLIN:
        return made
    return None


def key_parts(argv: list[str], cwd: str, script: str | None, code_text: str | None = None,
              module: str | None = None, digest: str | None = None) -> RunKeyParts:
    """The run key parts of a Python run, computed before its body executes.

    ``digest`` is the script's sha256 when the caller already has it (no second read).
    """

    root = project_root(cwd)
    code: dict[str, str] = {}
    if digest is None:
        digest = script_digest(script, code_text)
    if module:
        code["module:" + module] = digest or ""
    elif code_text is not None:
        code["-c"] = digest or ""
    elif script:
        code[relative_to_root(os.path.abspath(script), root)] = digest or ""
    env = environment_key()
    fed = stdin_identity()
    if fed is not None:
        env["stdin"] = fed
    search = search_path_key(cwd, root)
    if search:
        env["pythonpath"] = search
    return run_key_parts(argv, cwd, root, code, env, key_places())


def search_path_key(cwd: str, root: str) -> str:
    """``PYTHONPATH`` as it decides which modules a run imports, sharklib's bootstrap left out.

    The reuse check re-hashes the local modules the recorded run imported; with another
    ``PYTHONPATH`` the same import could find another file, which that check never looks at.
    Entries inside the project are relative to its root, so clones share keys.
    """
    raw = os.environ.get("PYTHONPATH", "")
    if not raw:
        return ""
    own = {os.path.realpath(d) for d in paths.sharklib_dirs()}
    entries = []
    for entry in raw.split(os.pathsep):
        if not entry:
            continue
        full = os.path.realpath(os.path.join(cwd, entry))
        if full not in own:
            entries.append(relocate(relative_to_root(full, root), key_places()))
    return os.pathsep.join(entries)


# -- at exit -------------------------------------------------------------------------------


def _module_files(ignore: tuple[str, ...], exclude: Iterable[str]) -> list[str]:
    skip = set(exclude)
    files: list[str] = []
    for mod in list(sys.modules.values()):
        path = getattr(mod, "__file__", None)
        if not path or not isinstance(path, str):
            continue
        path = paths.normalise(path) if path.startswith("/") else os.path.abspath(path)
        if path in skip or path.startswith(ignore) or "/__pycache__/" in path:
            continue
        if path.endswith((".pyc", ".pyo")):
            continue
        files.append(path)
    return sorted(set(files))


def local_module_paths(ignore: tuple[str, ...], exclude: Iterable[str] = ()) -> list[str]:
    """Files of imported modules living outside stdlib, site-packages and sharklib."""
    return [p for p in _module_files(ignore, exclude) if os.path.isfile(p)]


def code_identity(script: str | None, code_text: str | None, modules: list[str],
                  digests: Mapping[str, tuple[str, int]], git: GitInfo | None = None) -> CodeIdentity:
    from sharklib.model import Artifact, CodeIdentity
    from sharklib.model.run import CODE_TEXT_PATH

    ident = CodeIdentity()
    if code_text is not None:
        ident.script = Artifact(path=CODE_TEXT_PATH, sha256=_digest_text(code_text),
                                size=len(code_text.encode("utf-8", "surrogateescape")))
    elif script and script in digests:
        sha, size = digests[script]
        ident.script = Artifact(path=script, sha256=sha, size=size)
    ident.modules = [_artifact(p, digests[p]) for p in modules if p in digests]
    ident.git = git
    return ident


def _artifact(path: str, d: tuple[str, int]) -> Artifact:
    from sharklib.model import Artifact

    return Artifact(path=path, sha256=d[0], size=d[1])


class GitProbe:
    """Commit, branch, dirty state and remote of the repository holding a path, asked of ``git``.

    One ``git status --porcelain=v2 --branch`` process starts at once and runs while
    the caller hashes files; :meth:`result` collects it. The remote is read from the
    repository's config (:func:`config_remote`), or, when that cannot be certain, a
    second process (``git remote -v``) runs beside the first. This replaced GitPython, whose import alone cost ~40 ms and which ran
    five ``git`` processes one after the other. ``status`` runs with
    ``GIT_OPTIONAL_LOCKS=0`` so it never writes the index under the user's own
    git commands. No repository (no ``.git`` up from the path) costs a few
    ``stat`` calls and no process. ``git`` is started with ``os.posix_spawnp`` (``-C ROOT``
    for the working directory): every recorded step asks, and importing ``subprocess`` for
    it was a few milliseconds of each step's start-up that its script did not ask for.
    """

    def __init__(self, path: str) -> None:
        root = project_root(path)
        self.root: str | None = root if os.path.exists(os.path.join(root, ".git")) else None
        #: (pid, read end of its stdout) of each ``git`` process started
        self._procs: list[tuple[int, int]] = []
        if self.root is None:
            return
        from sharklib.config import BOOKKEEPING_MARK

        env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
        #: the remote read from the repository's config, when that is provably what
        #: ``git remote -v`` would say: then one ``git`` process instead of two per step
        self._remote = config_remote(self.root)
        commands = [["status", "--porcelain=v2", "--branch", "--untracked-files=no", "-z"]]
        if self._remote is None:
            commands.append(["remote", "-v"])
        try:
            for args in commands:
                self._procs.append(_spawn(["git", "-c", BOOKKEEPING_MARK, "-C", self.root,
                                           *args], env))
        except OSError:  # no git on PATH: the repository is known, its state is not
            self.close()

    def close(self) -> None:
        """Stop and reap the ``git`` processes (when their answer is not wanted after all)."""
        import signal

        for pid, fd in self._procs:
            with contextlib.suppress(OSError):
                os.close(fd)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)
        self._procs = []

    def result(self, timeout: float = 60) -> GitInfo | None:
        """The repository's state (``None`` outside a repository); waits for ``git``."""
        if self.root is None:
            return None
        from sharklib.model import GitInfo

        info = GitInfo(root=self.root)
        import time

        deadline = time.monotonic() + timeout
        outputs: list[bytes | None] = []
        running = []
        for pid, fd in self._procs:
            out = None
            with contextlib.suppress(Exception):
                out = _read_all(fd, deadline)
            if out is None:
                running.append((pid, fd))  # killed and reaped by close()
                outputs.append(None)
                continue
            os.close(fd)
            try:
                _, status = os.waitpid(pid, 0)
            except OSError:
                status = -1
            outputs.append(out if status == 0 else None)
        self._procs = running
        self.close()
        if not outputs:
            return info
        status_out = outputs[0]
        if status_out is not None:
            _parse_status(status_out, info)
        if self._remote is not None:
            info.remote = self._remote[0]
        elif len(outputs) == 2 and outputs[1] is not None:
            info.remote = _pick_remote(outputs[1].decode("utf-8", "surrogateescape"))
        return info


def _spawn(argv: list[str], env: Mapping[str, str]) -> tuple[int, int]:
    """Start ``argv`` (looked up on ``PATH``) with stdin and stderr on /dev/null: (pid, stdout)."""
    read, write = os.pipe()
    try:
        null = os.open(os.devnull, os.O_RDWR)
        try:
            pid = os.posix_spawnp(argv[0], argv, env, file_actions=[
                (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, write, 1),
                (os.POSIX_SPAWN_DUP2, null, 2)])
        finally:
            os.close(null)
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)
    return pid, read


def _read_all(fd: int, deadline: float) -> bytes | None:
    """Everything ``fd`` yields until end of file, or None when ``deadline`` passes first."""
    import select
    import time

    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


_SECTION = re.compile(r'^\[\s*([A-Za-z0-9.-]+)(?:\s+"([^"\\]*)")?\s*\]$')
_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)\s*(?:=\s*(.*))?$")
#: configuration that can change what ``git remote -v`` prints beyond a plain ``url =``
_UNSURE = ("include", "insteadof")


def config_remote(root: str) -> tuple[str | None] | None:
    """``(url,)``: what :func:`_pick_remote` would take from ``git remote -v``, read from the
    repository's config file without starting ``git``; None when that is not certain.

    Certain means: no ``GIT_*`` variable that moves the repository or its config, the
    ``.git`` directory (or the ``gitdir:`` file of a worktree and its ``commondir``) found,
    no ``config.worktree``, no legacy ``remotes/``/``branches/`` files, a config with no
    ``include``/``insteadOf`` and only plain values for ``url``, and no user or system
    config (the usual places) that mentions remotes, includes or URL rewriting. Anything
    else keeps the ``git remote -v`` process, so the recorded remote never differs.
    """
    if any(k.startswith(("GIT_CONFIG", "GIT_DIR", "GIT_COMMON_DIR", "GIT_WORK_TREE"))
           for k in os.environ):
        return None
    gitdir = _git_dir(root)
    if gitdir is None or os.path.exists(os.path.join(gitdir, "config.worktree")):
        return None
    common = gitdir
    if any(_foreign(p) for p in (root, gitdir)):
        return None  # git's "dubious ownership" refusal is git's to make
    try:
        with open(os.path.join(gitdir, "commondir"), encoding="utf-8") as fh:
            common = os.path.join(gitdir, fh.read().strip())
    except FileNotFoundError:
        pass
    except OSError:
        return None
    for legacy in ("remotes", "branches"):
        with contextlib.suppress(OSError):
            if os.listdir(os.path.join(common, legacy)):
                return None
    home = os.path.expanduser("~")
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    for other in (os.path.join(home, ".gitconfig"), os.path.join(xdg, "git", "config"),
                  "/etc/gitconfig", "/usr/local/etc/gitconfig"):
        try:
            with open(other, encoding="utf-8", errors="replace") as fh:
                text = fh.read().lower()
        except FileNotFoundError:
            continue
        except OSError:
            return None
        if "remote" in text or any(u in text for u in _UNSURE):
            return None
    try:
        with open(os.path.join(common, "config"), encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):
        return None
    if any(u in text.lower() for u in _UNSURE):
        return None
    urls: dict[str, str] = {}
    section: tuple[str, str | None] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            m = _SECTION.match(line)
            if m is None:
                return None
            section = (m.group(1).lower(), m.group(2))
            if section[0].startswith("remote") and (section[0] != "remote" or section[1] is None):
                return None  # [remote.name] or [remote "a.b"] forms: leave them to git
            continue
        if section is None or section[0] != "remote":
            continue
        m = _KEY.match(line)
        if m is None:
            return None
        if m.group(1).lower() != "url":
            continue
        value = m.group(2)
        if not value or any(c in value for c in '"\\#;') or raw.rstrip().endswith("\\"):
            return None
        assert section[1] is not None
        urls.setdefault(section[1], value.strip())
    if "origin" in urls:
        return (urls["origin"],)
    return (urls[min(urls)] if urls else None,)


def _foreign(path: str) -> bool:
    try:
        return os.stat(path).st_uid != os.getuid()
    except OSError:
        return True


def _git_dir(root: str) -> str | None:
    """The repository's git directory: ``ROOT/.git``, or where a worktree's ``.git`` file points."""
    dot = os.path.join(root, ".git")
    if os.path.isdir(dot):
        return dot
    try:
        with open(dot, encoding="utf-8") as fh:
            first = fh.readline().strip()
    except OSError:
        return None
    if not first.startswith("gitdir:"):
        return None
    target = os.path.join(root, first[len("gitdir:"):].strip())
    return target if os.path.isdir(target) else None


def _parse_status(out: bytes, info: GitInfo) -> None:
    """Fill commit, branch and dirty from ``git status --porcelain=v2 --branch -z``."""
    for record in out.split(b"\0"):
        if not record:
            continue
        if record.startswith(b"# branch.oid "):
            oid = record[len(b"# branch.oid "):].decode("ascii", "replace")
            info.commit = None if oid == "(initial)" else oid
        elif record.startswith(b"# branch.head "):
            head = record[len(b"# branch.head "):].decode("utf-8", "surrogateescape")
            info.branch = None if head == "(detached)" else head
        elif not record.startswith(b"#") and record[:2] in (b"1 ", b"2 ", b"u "):
            info.dirty = True  # a changed, renamed or unmerged tracked entry


def _pick_remote(text: str) -> str | None:
    """The fetch URL of ``origin``, else of the first remote (``git remote -v`` lines)."""
    first: str | None = None
    for line in text.splitlines():
        name, _, rest = line.partition("\t")
        url, _, kind = rest.rpartition(" ")
        if kind != "(fetch)" or not url:
            continue
        if name == "origin":
            return url
        if first is None:
            first = url
    return first


def git_info(path: str) -> GitInfo | None:
    """Commit, branch, dirty state and remote of the repository holding ``path``, if any."""
    return GitProbe(path).result()


def _norm(name: str) -> str:
    """A distribution name normalised as PEP 503 does (``[-_.]+`` -> ``-``, lower case)."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _dist_infos(dirs: Iterable[str]) -> list[tuple[str, str, str]]:
    """(normalised name, version, dist-info path) of every installed distribution."""
    found: list[tuple[str, str, str]] = []
    for d in dirs:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if e.name.endswith(".dist-info") or e.name.endswith(".egg-info"):
                stem = e.name.rsplit(".", 1)[0]
                name, _, version = stem.partition("-")
                found.append((_norm(name), version.split("-")[0], e.path))
    return found


def _top_name(entry: str) -> str:
    """The importable name of a site-packages entry (``six.py``, ``x.cpython-311-...so``, ``pkg``)."""
    if entry.endswith(".py"):
        return entry[:-3]
    if ".cpython-" in entry or entry.endswith((".so", ".pyd")):
        return entry.split(".", 1)[0]
    return entry


def _top_levels(info: str) -> set[str]:
    tops: set[str] = set()
    try:
        with open(os.path.join(info, "top_level.txt"), encoding="utf-8") as fh:
            tops.update(line.strip() for line in fh if line.strip())
        return tops
    except OSError:
        pass
    try:
        with open(os.path.join(info, "RECORD"), encoding="utf-8") as fh:
            for line in fh:
                first = _top_name(line.split(",", 1)[0].split("/", 1)[0])
                if first and not first.endswith((".dist-info", ".data")) and first != "..":
                    tops.add(first)
    except OSError:
        pass
    return tops


def imported_distributions(site_dirs: Iterable[str], ignore_names: Iterable[str] = ("sharklib",),
                           preloaded: Iterable[str] = (),
                           modules: Mapping[str, object] | None = None) -> dict[str, str]:
    """Name → version of the distributions whose modules were actually imported.

    Much cheaper than ``importlib.metadata.packages_distributions()`` (which
    parses every RECORD, ~0.2 s here): distribution names come from the
    ``*.dist-info`` directory names, and a distribution's files are only read
    when its name does not already match an imported top-level name (the
    first path component under site-packages). The files of likely owners are
    read first: distributions whose name contains the module's
    (``python-dateutil`` for ``dateutil``), then those already found; only a
    module no likely owner provides costs a full scan.
    """
    site_dirs = [d for d in dict.fromkeys(site_dirs) if os.path.isdir(d)]
    prefixes = tuple(d.rstrip("/") + "/" for d in site_dirs)
    skip = set(ignore_names)
    before = set(preloaded)
    tops: set[str] = set()
    for name, mod in list((sys.modules if modules is None else modules).items()):
        if name in before:
            continue
        path = getattr(mod, "__file__", None)
        if not isinstance(path, str) or not path.startswith(prefixes):
            continue
        # the top-level name a distribution installs is the file's first path component
        # under site-packages, not the module name (an extension may be registered under
        # another name, e.g. pandas/_libs/_cyutility.so as the module ``_cyutility``)
        rel = path[len(next(p for p in prefixes if path.startswith(p))):]
        top = _top_name(rel.split("/", 1)[0])
        if top in skip or top.startswith("__editable__"):
            continue
        tops.add(top)
    if not tops:
        return {}
    infos = _dist_infos(site_dirs)
    result: dict[str, str] = {}
    remaining = set(tops)
    by_name = {n: (v, p) for n, v, p in infos}
    for top in list(remaining):
        hit = by_name.get(_norm(top))
        if hit is not None:
            result[_norm(top)] = hit[0]
            remaining.discard(top)
    if remaining:
        wanted = [_norm(t).strip("-") for t in remaining]

        def likely(info: tuple[str, str, str]) -> int:
            if any(w and w in info[0] for w in wanted):
                return 0
            return 1 if info[0] in result else 2

        for name, version, path in sorted(infos, key=likely):
            provided = _top_levels(path) & remaining
            if provided:
                result[name] = version
                remaining -= provided
            if not remaining:
                break
    result.pop("sharklib", None)
    return dict(sorted(result.items()))


def environment_identity(full: bool, site_dirs: Iterable[str], preloaded: Iterable[str] = (),
                         modules: Mapping[str, object] | None = None) -> Environment:
    from sharklib.model import Environment

    uname = os.uname()
    env = Environment(
        interpreter=sys.executable,
        python_version=sys.version.split()[0],
        platform=f"{sys.platform}-{uname.machine}-{uname.release}",
        prefix=sys.prefix,
        variables=allowed_variables(),
        tag=os.environ.get(ENV_TAG) or None,
    )
    if full:
        env.distributions = imported_distributions(site_dirs, preloaded=preloaded, modules=modules)
    return env


def user_and_host() -> tuple[str, str]:
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or ""
    if not user:
        with contextlib.suppress(Exception):
            import pwd

            user = pwd.getpwuid(os.getuid()).pw_name
    return user, os.uname().nodename
