"""The Run: what one execution read, wrote, downloaded and ran.

This module is the centre of sharklib and does no I/O: capture and the tracer
fill a :class:`Run`, attest signs it, stores index it, the runner compares it,
views read it. Every field is plain data so a Run round-trips through JSON
(``to_dict`` / ``from_dict``) without loss; the cache index keeps that JSON and
attestations carry the same facts in the SLSA provenance shape
(:mod:`sharklib.model.provenance`).

Paths are absolute, normalised POSIX strings. A path that is not valid UTF-8
is kept losslessly with ``os.fsdecode`` (surrogateescape) in memory and
written to JSON through :func:`encode_path` / :func:`decode_path`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection

# Neither ``dataclasses`` nor ``typing`` at run time: a captured script builds a Run at exit,
# and those imports (with ``inspect``) plus generating the methods cost ~12 ms there. The
# classes below are plain slotted classes with the same constructors, equality and repr.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal

    Role = Literal["input", "code", "output"]
    Backend = Literal["python", "ebpf", "ptrace", "merged"]

SCHEMA_VERSION = 1

#: The recorded digest of a file that did not exist when the run depended on its content (a
#: file appended to, updated in place or read-then-rewritten that the run created). No file
#: hashes to it, so such an input never matches: a run that created the file is redone once
#: the file exists (or is deleted again), as plain Python would redo the append.
ABSENT_SHA256 = "0" * 64

#: What a path can be when a run asks about it without opening it (``os.path.exists``,
#: ``os.stat``, ``Path.is_file``...). A probe is recorded as the set of kinds that would have
#: given the script the same answer, as bits: ``isdir()`` answering False is "absent, file or
#: other"; ``exists()`` answering True is "file, dir or other"; ``stat()`` tells the exact kind.
PROBE_KINDS = ("absent", "file", "dir", "other")
PROBE_ABSENT, PROBE_FILE, PROBE_DIR, PROBE_OTHER = 1, 2, 4, 8
PROBE_ALL = 15


def probe_text(mask: int) -> str:
    """``"absent"``, ``"file|other"``...: a probe's answer set as recorded (kinds in order)."""
    return "|".join(k for i, k in enumerate(PROBE_KINDS) if mask & (1 << i))


def probe_mask(text: str) -> int:
    """Inverse of :func:`probe_text`; ValueError for a kind it does not know (or none)."""
    mask = 0
    for k in text.split("|"):
        mask |= 1 << PROBE_KINDS.index(k)
    return mask


def probe_kind(st_mode: int | None) -> int:
    """The kind bit of a ``stat`` result's mode (None: the path does not exist)."""
    if st_mode is None:
        return PROBE_ABSENT
    kind = st_mode & 0o170000
    return PROBE_FILE if kind == 0o100000 else PROBE_DIR if kind == 0o040000 else PROBE_OTHER


def probes_from(data: Any) -> dict[str, str]:
    """``[[path, answer], ...]`` as recorded (None: a record from before probes) -> dict.

    ValueError for a malformed list or an unknown kind: a record is never half believed.
    """
    if data is None:
        return {}
    if not isinstance(data, list):
        raise ValueError("probes is not a list")
    out: dict[str, str] = {}
    for item in data:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], str)):
            raise ValueError("malformed probe")
        probe_mask(item[1])
        out[decode_path(item[0])] = item[1]
    return out


def merge_probes(first: str | None, then: str) -> str:
    """Two processes' answers about one path: both must hold (when they can at once)."""
    if first is None or first == then:
        return then
    both = probe_mask(first) & probe_mask(then)
    return probe_text(both) if both else first


def variables_from(data: Any) -> dict[str, str]:
    """``{name: digest}`` of the environment variables a run read, as recorded (None: none).

    ValueError for anything else: a record is never half believed.
    """
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError("variables_read is not a map of names to digests")
    return dict(data)


class _Record:
    """Plain data: equality and repr over ``_fields`` (what ``@dataclass`` would generate)."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    __match_args__: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._fields)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"{type(self).__qualname__}("
                + ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields) + ")")


class FrozenRecord(_Record):
    """:class:`_Record` that cannot change once built, and so hashes by its fields.

    What ``@dataclass(frozen=True, slots=True)`` generates, without importing
    ``dataclasses`` (and ``inspect``) on the paths every step takes. Subclasses
    declare ``__slots__``/``_fields`` and set their fields with :meth:`_set`.
    """

    __slots__ = ()

    def _set(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(getattr(self, f) for f in self._fields))


def encode_path(path: str) -> str:
    """Turn an in-memory path (maybe with surrogate escapes) into JSON-safe text.

    Valid UTF-8 paths are returned unchanged; others become ``b64:<base64 of the
    raw bytes>`` so that newlines, tabs and invalid UTF-8 survive a round trip.
    """
    if not path.startswith("b64:"):
        if path.isascii():  # valid UTF-8 without encoding it (this runs per file, several times)
            return path
        try:
            path.encode("utf-8")
            return path
        except UnicodeEncodeError:
            pass
    import base64

    return "b64:" + base64.b64encode(os.fsencode(path)).decode("ascii")


def encode_paths(paths: list[str]) -> list[str]:
    """:func:`encode_path` of each path, in one pass of C code when all are plain ASCII.

    A run's outputs each list the inputs read before them, so a script that reads file
    *i* and writes output *i* holds outputs x inputs paths (45,000 for 300 of each), and
    its record is serialised several times at exit (session, signed entry, index): one
    Python call per path was ~12 ms of each.
    """
    joined = "\0".join(paths)
    if joined.isascii() and "b64:" not in joined:
        return list(paths)
    return [encode_path(p) for p in paths]


def decode_path(text: str) -> str:
    """Inverse of :func:`encode_path`."""
    if text.startswith("b64:"):
        import base64

        return os.fsdecode(base64.b64decode(text[4:]))
    return text


class Artifact(_Record):
    """A file identified by its content.

    ``attestation`` is the digest (``sha256:<hex>``) of the DSSE envelope that
    produced this file, when the file was read and had a sidecar; it is how a
    later step links to its upstream lineage.
    """

    __slots__ = ("attestation", "mtime_ns", "path", "sha256", "size")
    _fields: tuple[str, ...] = ("path", "sha256", "size", "attestation", "mtime_ns")
    __match_args__: tuple[str, ...] = _fields

    def __init__(self, path: str, sha256: str, size: int = 0, attestation: str | None = None,
                 mtime_ns: int | None = None) -> None:
        self.path = path
        self.sha256 = sha256
        self.size = size
        self.attestation = attestation
        self.mtime_ns = mtime_ns

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": encode_path(self.path), "sha256": self.sha256, "size": self.size}
        if self.attestation:
            d["attestation"] = self.attestation
        if self.mtime_ns is not None:
            d["mtime_ns"] = self.mtime_ns
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Artifact:
        return cls(
            path=decode_path(str(d["path"])),
            sha256=str(d["sha256"]),
            size=int(d.get("size", 0)),
            attestation=d.get("attestation"),
            mtime_ns=d.get("mtime_ns"),
        )


class Output(Artifact):
    """An artifact the run wrote.

    ``inputs`` lists the paths of the data inputs read before this output was
    finished (closed, renamed into place, or the run ended), so unrelated later
    reads do not pollute its lineage. ``None`` means "all inputs of the run".
    """

    __slots__ = ("inputs", "stream")
    _fields = (*Artifact._fields, "inputs", "stream")
    __match_args__ = _fields

    def __init__(self, path: str, sha256: str, size: int = 0, attestation: str | None = None,
                 mtime_ns: int | None = None, inputs: list[str] | None = None,
                 stream: Literal["stdout", "stderr"] | None = None) -> None:
        Artifact.__init__(self, path, sha256, size, attestation, mtime_ns)
        self.inputs = inputs
        self.stream = stream

    def to_dict(self) -> dict[str, Any]:
        d = Artifact.to_dict(self)
        if self.inputs is not None:
            d["inputs"] = encode_paths(self.inputs)
        if self.stream:
            d["stream"] = self.stream
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Output:
        a = Artifact.from_dict(d)
        inputs = d.get("inputs")
        return cls(
            path=a.path, sha256=a.sha256, size=a.size, attestation=a.attestation,
            mtime_ns=a.mtime_ns,
            inputs=[decode_path(str(p)) for p in inputs] if inputs is not None else None,
            stream=d.get("stream"),
        )


class Download(_Record):
    """Bytes fetched over the network, hashed as they streamed."""

    __slots__ = ("etag", "last_modified", "method", "saved_to", "sha256", "size", "status", "url")
    _fields = ("url", "sha256", "size", "etag", "last_modified", "status", "method", "saved_to")
    __match_args__ = _fields

    def __init__(self, url: str, sha256: str | None = None, size: int | None = None,
                 etag: str | None = None, last_modified: str | None = None,
                 status: int | None = None, method: str = "GET",
                 saved_to: str | None = None) -> None:
        from sharklib.model.redact import redact_url

        # whoever records a download (a library patch, the trace proxy, a record read back),
        # its credentials never reach a sidecar, the cache index or `show`
        self.url = redact_url(url)
        self.sha256 = sha256
        self.size = size
        self.etag = etag
        self.last_modified = last_modified
        self.status = status
        self.method = method
        self.saved_to = saved_to

    def to_dict(self) -> dict[str, Any]:
        return {f: v for f in self._fields if (v := getattr(self, f)) is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Download:
        return cls(**{k: v for k, v in d.items() if k in _DOWNLOAD_FIELDS})


class GitInfo(_Record):
    """Where the code came from, when it lives in a git repository."""

    __slots__ = ("branch", "commit", "dirty", "remote", "root")
    _fields = ("root", "commit", "branch", "dirty", "remote")
    __match_args__ = _fields

    def __init__(self, root: str, commit: str | None = None, branch: str | None = None,
                 dirty: bool = False, remote: str | None = None) -> None:
        self.root = root
        self.commit = commit
        self.branch = branch
        self.dirty = dirty
        if remote is not None:  # `https://TOKEN@github.com/o/r` is a common remote
            from sharklib.model.redact import redact_url

            remote = redact_url(remote)
        self.remote = remote

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "commit": self.commit, "branch": self.branch,
                "dirty": self.dirty, "remote": self.remote}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GitInfo:
        return cls(root=d["root"], commit=d.get("commit"), branch=d.get("branch"),
                   dirty=bool(d.get("dirty", False)), remote=d.get("remote"))


#: the script path of code given on the command line (``python -c CODE``): not a file
CODE_TEXT_PATH = "<string>"


class CodeIdentity(_Record):
    """The code that ran: the main script, local modules it imported, git state."""

    __slots__ = ("git", "modules", "script")
    _fields = ("script", "modules", "git")
    __match_args__ = _fields

    def __init__(self, script: Artifact | None = None, modules: list[Artifact] | None = None,
                 git: GitInfo | None = None) -> None:
        self.script = script
        self.modules = [] if modules is None else modules
        self.git = git

    @property
    def inline(self) -> bool:
        """The script is code given on the command line (``python -c``), not a file."""
        return self.script is not None and self.script.path == CODE_TEXT_PATH

    def files(self) -> list[Artifact]:
        """The code that lives in files: the script unless it was ``-c`` text, and the modules."""
        if self.script is None or self.inline:
            return list(self.modules)
        return [self.script, *self.modules]

    def to_dict(self) -> dict[str, Any]:
        return {
            "script": self.script.to_dict() if self.script else None,
            "modules": [m.to_dict() for m in self.modules],
            "git": self.git.to_dict() if self.git else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CodeIdentity:
        return cls(
            script=Artifact.from_dict(d["script"]) if d.get("script") else None,
            modules=[Artifact.from_dict(m) for m in d.get("modules", [])],
            git=GitInfo.from_dict(d["git"]) if d.get("git") else None,
        )


class Environment(_Record):
    """The environment the code ran in.

    ``distributions`` maps distribution names (normalised, lower-case) to the
    versions of those whose modules were actually imported; ``variables`` holds
    only allow-listed environment variables.
    """

    __slots__ = ("distributions", "interpreter", "platform", "prefix", "python_version", "tag",
                 "variables")
    _fields = ("interpreter", "python_version", "platform", "prefix", "distributions",
               "variables", "tag")
    __match_args__ = _fields

    def __init__(self, interpreter: str = "", python_version: str = "", platform: str = "",
                 prefix: str = "", distributions: dict[str, str] | None = None,
                 variables: dict[str, str] | None = None, tag: str | None = None) -> None:
        self.interpreter = interpreter
        self.python_version = python_version
        self.platform = platform
        self.prefix = prefix
        self.distributions = {} if distributions is None else distributions
        self.variables = {} if variables is None else variables
        self.tag = tag

    def to_dict(self) -> dict[str, Any]:
        return {"interpreter": self.interpreter, "python_version": self.python_version,
                "platform": self.platform, "prefix": self.prefix,
                "distributions": dict(self.distributions), "variables": dict(self.variables),
                "tag": self.tag}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Environment:
        return cls(**{k: v for k, v in d.items() if k in _ENVIRONMENT_FIELDS})


_DOWNLOAD_FIELDS = frozenset(Download._fields)
_ENVIRONMENT_FIELDS = frozenset(Environment._fields)


#: what every credential :func:`sharklib.model.redact.redact_argv` removes contains (a URL,
#: or the name of a credential header or option, lower-cased); other command lines skip it
_MAYBE_SECRET = ("://", "pass", "pwd", "token", "key", "secret", "auth", "cookie", "bearer",
                 "sig", "session", "cred", "code", "access")


def redact_argv(argv: list[str]) -> list[str]:
    """:func:`sharklib.model.redact.redact_argv`, imported only for a command line that may
    hold a credential."""
    for a in argv:
        if isinstance(a, str) and any(m in a.lower() for m in _MAYBE_SECRET):
            from sharklib.model.redact import redact_argv as redact

            return redact(argv)
    return argv


class Exec(_Record):
    """A program executed inside the run (native tracer), with its argv."""

    __slots__ = ("argv", "cwd", "parent_pid", "path", "pid")
    _fields = ("pid", "path", "argv", "cwd", "parent_pid")
    __match_args__ = _fields

    def __init__(self, pid: int, path: str, argv: list[str], cwd: str | None = None,
                 parent_pid: int | None = None) -> None:
        self.pid = pid
        self.path = path
        self.argv = redact_argv(argv)  # the program got the real ones; no record holds secrets
        self.cwd = cwd
        self.parent_pid = parent_pid

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "path": encode_path(self.path),
                "argv": [encode_path(a) for a in self.argv],
                "cwd": encode_path(self.cwd) if self.cwd else None,
                "parent_pid": self.parent_pid}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Exec:
        return cls(pid=int(d["pid"]), path=decode_path(d["path"]),
                   argv=[decode_path(a) for a in d.get("argv", [])],
                   cwd=decode_path(d["cwd"]) if d.get("cwd") else None,
                   parent_pid=d.get("parent_pid"))


class Run(_Record):
    """One execution of a command and what it touched.

    ``children`` holds the ``run_id`` of every captured child process run (a
    Python subprocess under the bootstrap, or a recipe line under the tracer);
    a child's ``parent`` points back. ``run_key`` is filled by the runner
    (:mod:`sharklib.model.runkey`). ``stdin`` names the kind of stream (``pipe``,
    ``terminal``, ``socket``) the run read as standard input: bytes no record
    holds, so such a run is never reused. A file it was redirected from is an input.
    ``probes`` maps a path the run asked about without reading it (exists, stat, is_file),
    before it wrote that path itself, to what it saw (:func:`probe_text`): an input as
    much as a file read is, since the script may have taken another branch.
    ``variables_read`` maps an environment variable the user's own code read to a digest of
    the value it saw (:mod:`sharklib.common.envread`; never the value): a reuse needs the same.
    """

    __slots__ = ("argv", "backend", "children", "code", "connects", "cwd", "downloads", "ended",
                 "environment", "execs", "exit_status", "host", "inputs", "outputs", "parent",
                 "pid", "probes", "removed", "run_id", "run_key", "started", "stdin",
                 "temporaries", "user", "variables_read", "warnings")
    _fields = ("run_id", "argv", "cwd", "started", "ended", "exit_status", "user", "host", "pid",
               "backend", "code", "environment", "inputs", "downloads", "outputs", "temporaries",
               "removed", "execs", "connects", "children", "parent", "run_key", "warnings", "stdin",
               "probes", "variables_read")
    __match_args__ = _fields

    def __init__(self, run_id: str, argv: list[str], cwd: str, started: float,
                 ended: float | None = None, exit_status: int | None = None, user: str = "",
                 host: str = "", pid: int = 0, backend: Backend = "python",
                 code: CodeIdentity | None = None, environment: Environment | None = None,
                 inputs: list[Artifact] | None = None, downloads: list[Download] | None = None,
                 outputs: list[Output] | None = None, temporaries: list[str] | None = None,
                 removed: list[str] | None = None, execs: list[Exec] | None = None,
                 connects: list[str] | None = None, children: list[str] | None = None,
                 parent: str | None = None, run_key: str | None = None,
                 warnings: list[str] | None = None, stdin: str | None = None,
                 probes: dict[str, str] | None = None,
                 variables_read: dict[str, str] | None = None) -> None:
        self.run_id = run_id
        self.argv = redact_argv(argv)  # the program got the real ones; no record holds secrets
        self.cwd = cwd
        self.started = started
        self.ended = ended
        self.exit_status = exit_status
        self.user = user
        self.host = host
        self.pid = pid
        self.backend = backend
        self.code = CodeIdentity() if code is None else code
        self.environment = Environment() if environment is None else environment
        self.inputs = [] if inputs is None else inputs
        self.downloads = [] if downloads is None else downloads
        self.outputs = [] if outputs is None else outputs
        self.temporaries = [] if temporaries is None else temporaries
        self.removed = [] if removed is None else removed
        self.execs = [] if execs is None else execs
        self.connects = [] if connects is None else connects
        self.children = [] if children is None else children
        self.parent = parent
        self.run_key = run_key
        self.warnings = [] if warnings is None else warnings
        self.stdin = stdin
        self.probes = {} if probes is None else probes
        self.variables_read = {} if variables_read is None else variables_read

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "run_id": self.run_id,
            "argv": [encode_path(a) for a in self.argv],
            "cwd": encode_path(self.cwd),
            "started": self.started,
            "ended": self.ended,
            "exit_status": self.exit_status,
            "user": self.user,
            "host": self.host,
            "pid": self.pid,
            "backend": self.backend,
            "code": self.code.to_dict(),
            "environment": self.environment.to_dict(),
            "inputs": [a.to_dict() for a in self.inputs],
            "downloads": [d.to_dict() for d in self.downloads],
            "outputs": [o.to_dict() for o in self.outputs],
            "temporaries": [encode_path(p) for p in self.temporaries],
            "removed": [encode_path(p) for p in self.removed],
            "execs": [e.to_dict() for e in self.execs],
            "connects": list(self.connects),
            "children": list(self.children),
            "parent": self.parent,
            "run_key": self.run_key,
            "warnings": list(self.warnings),
            "stdin": self.stdin,
            # only when there are some: a record without probes reads as before
            **({"probes": [[encode_path(p), t] for p, t in self.probes.items()]}
               if self.probes else {}),
            # only when there are some: a record without them reads (and verifies) as before
            **({"variables_read": dict(self.variables_read)} if self.variables_read else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Run:
        """Rebuild a Run; raises ``KeyError``/``TypeError``/``ValueError`` on bad data.

        Callers that read untrusted files wrap this and turn the exception into
        a one-line :class:`sharklib.errors.SharkError` naming the file.
        """
        return cls(
            run_id=str(d["run_id"]),
            argv=[decode_path(str(a)) for a in d["argv"]],
            cwd=decode_path(str(d["cwd"])),
            started=float(d["started"]),
            ended=None if d.get("ended") is None else float(d["ended"]),
            exit_status=d.get("exit_status"),
            user=str(d.get("user", "")),
            host=str(d.get("host", "")),
            pid=int(d.get("pid", 0)),
            backend=d.get("backend", "python"),
            code=CodeIdentity.from_dict(d.get("code") or {}),
            environment=Environment.from_dict(d.get("environment") or {}),
            inputs=[Artifact.from_dict(a) for a in d.get("inputs", [])],
            downloads=[Download.from_dict(x) for x in d.get("downloads", [])],
            outputs=[Output.from_dict(o) for o in d.get("outputs", [])],
            temporaries=[decode_path(p) for p in d.get("temporaries", [])],
            removed=[decode_path(p) for p in d.get("removed", [])],
            execs=[Exec.from_dict(e) for e in d.get("execs", [])],
            connects=list(d.get("connects", [])),
            children=list(d.get("children", [])),
            parent=d.get("parent"),
            run_key=d.get("run_key"),
            warnings=list(d.get("warnings", [])),
            stdin=d["stdin"] if isinstance(d.get("stdin"), str) else None,
            probes=probes_from(d.get("probes")),
            variables_read=variables_from(d.get("variables_read")),
        )

    def failure(self) -> str | None:
        """How this run failed (``"3"``, ``"-2 (signal SIGINT)"``), or None when it did not.

        The one rule for a failed step, used by verification and by capture when it
        folds a run's children. A run that did not exit 0 failed: a step interrupted
        by Ctrl-C or failing half-way still had its outputs signed, and a result built
        on a half-written file must not verify. No exit status recorded (``None``)
        means unknown, not failed. Nor is SIGTERM for a child process (a run with a
        parent): ``multiprocessing.Pool`` ends its workers that way once their tasks
        are done. A trust policy may still accept a failed step (``allow_failed``).
        """
        import signal

        status = self.exit_status
        if status is None or (isinstance(status, int) and not isinstance(status, bool)
                              and status == 0):
            return None
        if status == -signal.SIGTERM and self.parent:
            return None
        if isinstance(status, int) and status < 0:
            try:
                return f"{status} (signal {signal.Signals(-status).name})"
            except ValueError:
                return f"{status} (signal {-status})"
        return str(status)[:40]

    def fold(self, others: list[Run], keep_output: Callable[[Output], bool] = lambda o: True,
             gone: Collection[str] = ()) -> None:
        """Fold the runs of other processes of the same tree into this one, in place.

        What any of them read (data, and their code, which is data to the tree
        as a whole) joins the inputs unless the tree itself produced those very
        bytes; their outputs (those ``keep_output`` accepts, later runs winning)
        join the outputs; downloads, programs started and imported distributions are united. This
        is how a stage, or a script with captured children, becomes one
        reusable record. An output that is ``gone`` by the end of the run (a worker's partial
        result that the parent combined and deleted) is a temporary of the tree, wherever it
        lived: never an output, and never an input either, since the tree produced it.
        """
        seen = {a.path for a in self.inputs}
        outputs = {o.path: o for o in self.outputs}
        for r in others:
            # ``-c`` code is no file to re-check: its text is in the command line, so in the key
            for a in (*r.inputs, *r.code.files()):
                if a.path not in seen:
                    seen.add(a.path)
                    self.inputs.append(a)
            outputs.update((o.path, o) for o in r.outputs if keep_output(o))
            self.downloads.extend(r.downloads)
            self.execs.extend(r.execs)
            self.stdin = self.stdin or r.stdin
            for name, value_seen in r.variables_read.items():
                self.variables_read.setdefault(name, value_seen)
            self.environment.distributions.update(r.environment.distributions)
            for p, t in r.probes.items():
                self.probes[p] = merge_probes(self.probes.get(p), t)
        produced = {(o.path, o.sha256) for o in outputs.values()}
        produced.update((o.path, o.sha256) for r in others for o in r.outputs if o.path in gone)
        self.outputs = [o for o in outputs.values() if o.path not in gone]
        temporaries = dict.fromkeys(self.temporaries)
        for r in others:
            temporaries.update(dict.fromkeys(r.temporaries))
            temporaries.update((o.path, None) for o in r.outputs if o.path in gone)
        self.temporaries = list(temporaries)
        self._temporaries_of_tree(self.temporaries)
        self.inputs = [a for a in self.inputs if (a.path, a.sha256) not in produced]
        # a probed path that is also an input with a digest is checked by that digest
        hashed = {a.path for a in self.inputs if a.sha256 and a.sha256 != ABSENT_SHA256}
        self.probes = {p: t for p, t in self.probes.items() if p not in hashed}

    def _temporaries_of_tree(self, made: Collection[str]) -> None:
        """Files another process of the tree wrote and this one deleted are temporaries.

        This process saw only the deletion, so it listed them as files it removed; a removal
        is of a file that existed before the run, which these did not.
        """
        made = set(made)
        moved = [p for p in self.removed if p in made]
        if moved:
            self.removed = [p for p in self.removed if p not in made]
            self.temporaries.extend(p for p in moved if p not in self.temporaries)

    def read_through(self, others: list[Run], gone: Collection[str]) -> None:
        """Let this run's lineage flow through files the tree's processes passed it, in place.

        A pool of workers that writes partial results into a temporary directory, and a parent
        that combines and deletes them, is one step: the partials are no data of it, the maps
        the workers read are. So an input that is ``gone`` by the end of the run and that another
        run of ``others`` wrote (same path and digest) is replaced by what fed that file in its
        producer, transitively; an output's own list of feeding inputs is rewritten the same way.
        A produced file that still exists stays an input: its sidecar links it to its producer.
        An input recorded without a digest (``""``: read, then gone before it could be hashed)
        is matched to its producer by path alone, and dropped when the tree did not produce it.
        """
        producers: dict[tuple[str, str], tuple[Run, Output]] = {}
        for r in others:  # oldest first: the last writer of a path is its producer
            for o in r.outputs:
                producers[(o.path, o.sha256)] = producers[(o.path, "")] = (r, o)
        self._temporaries_of_tree({p for p, _ in producers if p in gone})

        def sources(art: Artifact, seen: set[tuple[str, str]]) -> list[Artifact]:
            key = (art.path, art.sha256)
            if art.path not in gone or key not in producers or key in seen:
                return [art] if art.sha256 else []
            seen.add(key)
            run, out = producers[key]
            found: list[Artifact] = []
            for a in run.inputs_of(out):
                found.extend(sources(a, seen))
            return found

        expanded: dict[str, list[Artifact]] = {}
        inputs: dict[str, Artifact] = {}
        for a in self.inputs:
            feeding = sources(a, set())
            expanded[a.path] = feeding
            for f in feeding:
                inputs.setdefault(f.path, f)
        if all(len(v) == 1 and v[0].path == k for k, v in expanded.items()):
            return
        # an input without a digest was read and gone before it could be hashed: one the tree
        # produced was replaced by its sources above; of any other, nothing is left to check
        self.inputs = list(inputs.values())
        for o in self.outputs:
            if o.inputs is not None:
                o.inputs = list(dict.fromkeys(
                    f.path for p in o.inputs for f in expanded.get(p, ())))

    def inputs_of(self, output: Output) -> list[Artifact]:
        """The data inputs that fed ``output`` (read before it was finished)."""
        if output.inputs is None:
            return list(self.inputs)
        wanted = set(output.inputs)
        return [a for a in self.inputs if a.path in wanted]
