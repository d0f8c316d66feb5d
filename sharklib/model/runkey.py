"""The run key: what must be equal for a past run to count as this one.

Inputs are deliberately not part of the key: a script discovers what it reads
while it runs, so the runner looks up past runs by key and then checks each
recorded input (see :mod:`sharklib.runner`). Everything here is pure: callers
pass in the facts (digests, versions) they gathered.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence

TYPE_CHECKING = False  # no ``typing`` at run time: captured scripts import this before their body
if TYPE_CHECKING:
    from typing import Any

#: v2: a v1 cache could hold runs that read a pipe on stdin or ran programs Python capture does
#: not see (never cached since), and keyed Python runs without their PYTHONPATH
#: v3: a v2 cache could hold runs that appended to or updated a file in place (a log, a
#: SQLite database) without that file's old content among their inputs: reusing one
#: restored the recorded file over what was appended since
#: v4: relocatable: no absolute path of the interpreter, its prefix or the project (a
#: teammate's checkout and venv elsewhere hit the same runs)
KEY_VERSION = "sharklib-runkey-v4"


def sha256_hex(data: bytes) -> str:
    """sha256 of bytes in memory (a script's source, a run key's JSON).

    Without ``hashlib`` when it is not loaded yet: importing it loads OpenSSL,
    ~2.5 ms of every captured script's start-up, while the interpreter's own
    sha256 module is as fast for a few kilobytes. Files are hashed through
    :mod:`sharklib.hashing` (OpenSSL).
    """
    hashlib = sys.modules.get("hashlib")
    if hashlib is not None:
        return hashlib.sha256(data).hexdigest()  # type: ignore[no-any-return]
    try:
        from _sha256 import sha256  # CPython 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # type: ignore[import-not-found,no-redef]  # CPython 3.12+
        except ImportError:
            from hashlib import sha256  # type: ignore[assignment]
    return sha256(data).hexdigest()  # type: ignore[no-any-return]


def sha256_constructor() -> Callable[..., Any]:
    """``hashlib.sha256`` when hashlib is loaded, else the interpreter's own (no OpenSSL load).

    For digests of short strings (run keys, stage signatures) in processes that
    may never need OpenSSL: a no-op pipeline re-check, a captured script's start.
    """
    hashlib = sys.modules.get("hashlib")
    if hashlib is not None:
        return hashlib.sha256  # type: ignore[no-any-return]
    try:
        from _sha256 import sha256  # CPython 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # type: ignore[import-not-found,no-redef]  # CPython 3.12+
        except ImportError:
            from hashlib import sha256  # type: ignore[assignment]
    return sha256  # type: ignore[no-any-return]


def canonical_json(value: object) -> bytes:
    """Deterministic JSON bytes (sorted keys, no spaces) for digests."""
    import json  # here, not at the top: a captured script builds RunKeyParts before its body runs

    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8", "surrogateescape")


#: roots already checked to be normalised (a run's inputs share one or two roots)
_NORMAL_ROOTS: dict[str, bool] = {}


def _normal(root: str) -> bool:
    known = _NORMAL_ROOTS.get(root)
    if known is None:
        if len(_NORMAL_ROOTS) > 256:
            _NORMAL_ROOTS.clear()
        known = _NORMAL_ROOTS[root] = root == os.path.normpath(root)
    return known


def relative_to_root(path: str, root: str) -> str:
    """``path`` relative to ``root`` when inside it, else unchanged (absolute).

    A normalised path under a normalised root is cut by text: ``os.path.relpath`` asks
    for the working directory twice per call, which made recording a traced step with
    20,000 inputs spend a second here. Anything else (``.``/``..`` parts, doubled
    slashes, a relative root) takes ``relpath``, so the answer is the same either way.
    """
    if not os.path.isabs(path):
        return path
    if root.startswith("/") and "/." not in path and "//" not in path and _normal(root):
        base = root if root == "/" else root + "/"
        if path.startswith(base) and len(path) > len(base):
            return path[len(base):]
    rel = os.path.relpath(path, root)
    if rel == ".." or rel.startswith(".." + os.sep):
        return path
    return rel + "/" if path.endswith("/") and not rel.endswith("/") else rel


def relative_to_root_all(paths: list[str], root: str) -> list[str]:
    """:func:`relative_to_root` of each path, the root's checks made once for all of them.

    A traced step's record relativises every input (20,000 for a step reading 20,000 files);
    a plain path under the normalised root is cut by text here without a call per path,
    anything else gets :func:`relative_to_root`'s own answer.
    """
    if not (root.startswith("/") and _normal(root)):
        return [relative_to_root(p, root) for p in paths]
    base = root if root == "/" else root + "/"
    cut = len(base)
    return [p[cut:] if p.startswith(base) and len(p) > cut and "/." not in p and "//" not in p
            else relative_to_root(p, root) for p in paths]


def relocate(text: str, places: Sequence[tuple[str, str]]) -> str:
    """``text`` with each absolute directory of ``places`` replaced by its symbol.

    ``places`` pairs a directory (``/home/ann/proj``, a venv's prefix) with the
    symbol it stands for in a key (``<project>``, ``<prefix>``); longer
    directories win, and a directory only matches at a path boundary
    (``/a/proj`` does not match ``/a/project``). Pure text: a shell line with
    the interpreter's path inside it is relocated as a plain argument is.
    """
    if "/" not in text:
        return text
    for directory, symbol in sorted(places, key=lambda p: -len(p[0])):
        d = directory.rstrip("/")
        if not d or d not in text:
            continue
        out = []
        i = 0
        n = len(d)
        while True:
            j = text.find(d, i)
            if j < 0:
                out.append(text[i:])
                break
            end = j + n
            before_ok = j == 0 or not (text[j - 1].isalnum() or text[j - 1] in "._-/")
            after_ok = end == len(text) or text[end] in "/'\" \t\n;:|&)>"
            out.append(text[i:j])
            out.append(symbol if before_ok and after_ok else d)
            i = end
        text = "".join(out)
    return text


class RunKeyParts:
    """The facts a run key is made of, kept so ``sharklib diff``/plans can say *what* differs.

    A plain class rather than a dataclass: it is built at the start of every
    captured script, before its body runs, where every millisecond of import shows.
    """

    __slots__ = ("argv", "code", "cwd", "environment")

    def __init__(self, argv: list[str], cwd: str, code: dict[str, str] | None = None,
                 environment: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.cwd = cwd
        self.code = code or {}
        self.environment = environment or {}

    def __repr__(self) -> str:
        return (f"RunKeyParts(argv={self.argv!r}, cwd={self.cwd!r}, code={self.code!r}, "
                f"environment={self.environment!r})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunKeyParts) and (
            (self.argv, self.cwd, self.code, self.environment)
            == (other.argv, other.cwd, other.code, other.environment))

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, object]:
        """The body the key is the digest of (kept beside a recorded run, for ``--explain``)."""
        return {"v": KEY_VERSION, "argv": self.argv, "cwd": self.cwd, "code": self.code,
                "environment": self.environment}

    def digest(self) -> str:
        return "sha256:" + sha256_hex(canonical_json(self.to_dict()))


def run_key_parts(argv: Sequence[str], cwd: str, root: str, code: Mapping[str, str],
                  environment: Mapping[str, str],
                  places: Sequence[tuple[str, str]] = ()) -> RunKeyParts:
    """Normalise argv and cwd against the project root.

    ``code`` maps a code identifier (the script path relative to the root, or
    ``"command"`` for a native program) to its digest; ``environment`` holds the
    environment identity (interpreter implementation and version, allow-listed
    variables, an environment tag from a pipeline's ``shark-build`` block).
    ``places`` (see :func:`relocate`) are machine-specific directories (the
    interpreter's prefix) whose absolute paths inside an argument are replaced
    by symbols, as the project root is; so the key does not depend on where
    the project or the interpreter lives.
    """
    where = [(root, "<project>"), *places]
    norm_argv = [relocate(relative_to_root(a, root), places) if os.path.isabs(a)
                 else relocate(a, where) for a in argv]
    return RunKeyParts(argv=norm_argv, cwd=relative_to_root(os.path.abspath(cwd), root),
                       code=dict(code), environment=dict(environment))


def first_difference(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> str | None:
    """The first part in which two run keys' bodies (:meth:`RunKeyParts.to_dict`) differ, in words.

    Ordered as a user would look: the key recipe's version, the command line, the
    working directory, the code, then the environment, one named entry at a time.
    """
    def short(value: object) -> str:
        text = value if isinstance(value, str) else canonical_json(value).decode()
        return text if len(text) <= 60 else text[:57] + "…"

    if recorded.get("v") != now.get("v"):
        return f"run key recipe changed ({recorded.get('v')} -> {now.get('v')})"
    if recorded.get("argv") != now.get("argv"):
        return f"command line differs: recorded {short(recorded.get('argv'))}, now {short(now.get('argv'))}"
    if recorded.get("cwd") != now.get("cwd"):
        return f"working directory differs: recorded {recorded.get('cwd')}, now {now.get('cwd')}"
    for part, label in (("code", "code"), ("environment", "environment")):
        old = recorded.get(part) or {}
        new = now.get(part) or {}
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                was = "absent" if name not in old else short(old[name])
                is_ = "absent" if name not in new else short(new[name])
                if part == "code":
                    what = name.removeprefix("module:")
                    return f"code changed: {what}" if name in old and name in new else \
                        f"code differs: {what} (recorded {was[:12]}, now {is_[:12]})"
                if name in ("python", "implementation"):
                    return f"interpreter differs: {name} {was} -> {is_}"
                return f"{label} differs: {name} (recorded {was}, now {is_})"
    return None
