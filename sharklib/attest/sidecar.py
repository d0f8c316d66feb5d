"""Sidecar bundles: ``X.intoto.jsonl`` beside every output ``X``.

Line 1 is the DSSE envelope of the attestation about ``X``; the following lines
hold every upstream attestation in ``X``'s lineage, one envelope per line,
deduplicated by attestation digest (the in-toto bundle convention). Flat, not
nested, so size grows with the number of steps, not with depth x fan-in.

One attestation may name several outputs of its run (their sidecars then
start with the same line); which subject is the sidecar's own file is decided
by path or digest (:func:`sharklib.model.links.head_subject`).

Reading is defensive: sidecars travel with published files and may be
truncated, tampered with or hostile. Every problem is a one-line
:class:`~sharklib.errors.SidecarError` naming the file and line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from typing import IO, Any

from sharklib.attest.dsse import attestation_digest, envelope_line, merge_signatures, payload_of
from sharklib.attest.naming import SUFFIX, sidecar_path
from sharklib.errors import SidecarError
from sharklib.hashing import atomic_write
from sharklib.model.provenance import PAYLOAD_TYPE, STATEMENT_TYPE

MAX_LINE = 32 * 1024 * 1024
#: lines at least this long are decoded once per process and shared (see :func:`parse_line`)
_SHARED_MIN = 4096
_SHARED_MAX = 16
_shared: dict[bytes, BundleEntry] = {}


class BundleEntry:
    """One attestation in a bundle: its digest, envelope, decoded statement and line number.

    Plain classes here, not dataclasses: a captured script reads upstream
    sidecars at exit, where importing ``dataclasses`` would cost ~8 ms.
    """

    __slots__ = ("digest", "envelope", "line", "statement")

    def __init__(self, digest: str, envelope: dict[str, Any], statement: dict[str, Any],
                 line: int) -> None:
        self.digest = digest
        self.envelope = envelope
        self.statement = statement
        self.line = line

    def __repr__(self) -> str:
        return f"BundleEntry(digest={self.digest!r}, line={self.line})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        o: BundleEntry = other
        return (self.digest, self.envelope, self.statement, self.line) == (
            o.digest, o.envelope, o.statement, o.line)

    __hash__ = None  # type: ignore[assignment]

    @property
    def subject_digest(self) -> str | None:
        """The first subject's sha256 (an attestation may name several outputs)."""
        subjects = self.statement.get("subject") or []
        return (subjects[0].get("digest") or {}).get("sha256") if subjects else None

    @property
    def subject_name(self) -> str | None:
        """The first subject's name."""
        subjects = self.statement.get("subject") or []
        return subjects[0].get("name") if subjects else None

    @property
    def subject_digests(self) -> list[str]:
        """The sha256 of every subject, in order."""
        return [str((s.get("digest") or {}).get("sha256")) for s in self.statement.get("subject") or []]


class Bundle:
    """A sidecar: its path and its entries, the head (the file's own attestation) first."""

    __slots__ = ("entries", "path")

    def __init__(self, path: str, entries: list[BundleEntry] | None = None) -> None:
        self.path = path
        self.entries = [] if entries is None else entries

    def __repr__(self) -> str:
        return f"Bundle(path={self.path!r}, entries={self.entries!r})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        o: Bundle = other
        return (self.path, self.entries) == (o.path, o.entries)

    __hash__ = None  # type: ignore[assignment]

    @property
    def head(self) -> BundleEntry:
        return self.entries[0]

    @property
    def by_digest(self) -> dict[str, BundleEntry]:
        return {e.digest: e for e in self.entries}


def _check_statement(statement: Any, path: str, lineno: int) -> None:
    if not isinstance(statement, dict):
        raise SidecarError("payload is not a JSON object", path, lineno)
    if statement.get("_type") != STATEMENT_TYPE:
        raise SidecarError(f"payload is not an in-toto Statement v1 (_type={statement.get('_type')!r})",
                           path, lineno)
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects or not isinstance(subjects[0], dict):
        raise SidecarError("statement has no subject", path, lineno)
    for s in subjects:
        name = s.get("name") if isinstance(s, dict) else None
        digest = s.get("digest") if isinstance(s, dict) else None
        if not isinstance(name, str) or not isinstance(digest, dict):
            raise SidecarError("subject without name or digest", path, lineno)
        if ".." in name.replace("\\", "/").split("/"):
            raise SidecarError(f"subject name {name[:80]!r} escapes its directory", path, lineno)
    if not isinstance(statement.get("predicate"), dict):
        raise SidecarError("statement has no predicate object", path, lineno)


def parse_line(raw: bytes, path: str, lineno: int) -> BundleEntry:
    """Validate one sidecar line and decode its statement.

    The outputs of one run share their first line, and a step that read many
    of them opens all their sidecars: a long line already decoded in this
    process is not decoded again. Such entries share their envelope and
    statement dictionaries, which readers treat as read-only.
    """
    if len(raw) >= _SHARED_MIN:
        known = _shared.get(raw)
        if known is not None:
            return BundleEntry(known.digest, known.envelope, known.statement, lineno)
        entry = _parse_line(raw, path, lineno)
        if len(_shared) >= _SHARED_MAX:
            del _shared[next(iter(_shared))]
        _shared[raw] = entry
        return BundleEntry(entry.digest, entry.envelope, entry.statement, lineno)
    return _parse_line(raw, path, lineno)


def parse_line_payload(raw: bytes, path: str, lineno: int) -> tuple[BundleEntry, bytes | None]:
    """:func:`parse_line`, and the payload bytes it decoded (None for a shared long line),
    for a caller that checks the signatures next (:func:`sharklib.attest.dsse.check_signatures`)."""
    if len(raw) >= _SHARED_MIN:
        return parse_line(raw, path, lineno), None
    return _parse(raw, path, lineno)


def _parse_line(raw: bytes, path: str, lineno: int) -> BundleEntry:
    return _parse(raw, path, lineno)[0]


def _parse(raw: bytes, path: str, lineno: int) -> tuple[BundleEntry, bytes]:
    try:
        envelope = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SidecarError(f"malformed JSON ({exc.__class__.__name__}: {str(exc)[:80]})",
                           path, lineno) from None
    except RecursionError:
        # json's decoder recurses per nesting level: a hostile line of 100,000 '[' must be
        # the sidecar's fault, said on one line, not an internal error
        raise SidecarError("malformed JSON (nested too deeply)", path, lineno) from None
    if not isinstance(envelope, dict):
        raise SidecarError("line is not a DSSE envelope object", path, lineno)
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise SidecarError(f"wrong payload type {str(envelope.get('payloadType'))[:60]!r}", path, lineno)
    sigs = envelope.get("signatures")
    if not isinstance(sigs, list) or not all(isinstance(s, dict) for s in sigs):
        raise SidecarError("envelope has no signature list", path, lineno)
    try:
        payload = payload_of(envelope)
        statement = json.loads(payload)
    except ValueError as exc:
        raise SidecarError(f"undecodable payload ({str(exc)[:80]})", path, lineno) from None
    except RecursionError:
        raise SidecarError("undecodable payload (JSON nested too deeply)", path, lineno) from None
    _check_statement(statement, path, lineno)
    return (BundleEntry("sha256:" + hashlib.sha256(payload).hexdigest(), envelope, statement,
                        lineno), payload)


def open_sidecar(path: str, missing: str = "no sidecar") -> IO[bytes]:
    """Open a sidecar for reading, refusing anything but a regular file.

    A FIFO, socket or device in a sidecar's place would block a plain
    ``open`` (a FIFO without a writer) or never end (``/dev/zero``). The file
    is opened non-blocking, so opening never waits, and the *opened* file is
    checked with ``fstat`` (no window between a check and the open in which
    the name could be swapped); only a regular file is then read, blocking.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        # the user named the file, not its sidecar: say it of the file
        output = path.removesuffix(SUFFIX) if path.endswith(SUFFIX) else None
        if output is not None and os.path.lexists(output):
            raise SidecarError(f"no recorded lineage (no sidecar {os.path.basename(path)} "
                               f"beside it)", output) from None
        raise SidecarError(missing, path) from None
    except OSError as exc:
        raise SidecarError(f"cannot read sidecar: {exc.strerror}", path) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SidecarError("not a regular file (a sidecar must be one)", path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def iter_lines(path: str | os.PathLike[str],
               missing: str = "no sidecar") -> Iterator[tuple[int, bytes]]:
    """``(line number, raw line)`` of a sidecar, refusing over-long and unterminated lines.

    The one place a sidecar is opened and split, for :func:`read_bundle` and
    the views' parallel decoder alike.
    """
    p = os.fspath(path)
    with open_sidecar(p, missing) as fh:
        lineno = 0
        while True:
            raw = fh.readline(MAX_LINE + 1)
            if not raw:
                return
            lineno += 1
            if len(raw) > MAX_LINE:
                raise SidecarError(f"line longer than {MAX_LINE // (1024 * 1024)} MiB", p, lineno)
            if not raw.endswith(b"\n") and fh.read(1):
                raise SidecarError("unterminated line", p, lineno)
            yield lineno, raw


def read_bundle(path: str | os.PathLike[str], head_only: bool = False) -> Bundle:
    """Read and validate a sidecar (see :func:`reject_repeats`); ``head_only``: line 1 only."""
    p = os.fspath(path)
    bundle = Bundle(p)
    for lineno, raw in iter_lines(p):
        if not raw.strip():
            continue
        bundle.entries.append(parse_line(raw, p, lineno))
        if head_only:
            break
    reject_repeats(bundle.entries, p)
    return bundle


def reject_repeats(entries: list[BundleEntry], path: str) -> None:
    """The same attestation on two lines is an error naming both; so is an empty sidecar.

    sharklib writes each attestation once (:func:`write_bundle` unites the
    signatures of copies), so a repeated line was put there by something else;
    every reader (the lineage views, verification, reuse) refuses it alike.
    """
    first_line: dict[str, int] = {}
    for e in entries:
        if e.digest in first_line:
            raise SidecarError(f"duplicate attestation {e.digest[:19]} "
                               f"(same as line {first_line[e.digest]})", path, e.line)
        first_line[e.digest] = e.line
    if not entries:
        raise SidecarError("empty sidecar", path)


def write_bundle(path: str | os.PathLike[str], envelopes: list[dict[str, Any]]) -> None:
    """Write envelopes (the head first) as a sidecar, deduplicated, atomically."""
    seen: dict[str, int] = {}
    ordered: list[dict[str, Any]] = []
    for env in envelopes:
        d = attestation_digest(env)
        if d in seen:
            ordered[seen[d]] = merge_signatures(ordered[seen[d]], env)
            continue
        seen[d] = len(ordered)
        ordered.append(env)
    write_sidecar(path, b"".join(envelope_line(e) + b"\n" for e in ordered))


def write_sidecar(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a sidecar's bytes atomically (temporary file + rename; no fsync: a sidecar that
    a crash loses is re-made by the next run, and syncing hundreds costs seconds)."""
    atomic_write(path, data, fsync=False)


class SidecarWriter:
    """Writes the sidecars of one run; identical bytes in one directory share one file.

    The outputs an attestation names often get byte-identical sidecars (the
    shared head line, and the same upstream lines or none). Each distinct
    content is written once, to a private temporary file, and every sidecar
    with those bytes becomes a hard link of it: a new name appears whole
    (``link``), an existing sidecar is replaced (``link`` to a temporary name,
    then ``rename``), so a reader never sees a partial file, as with
    :func:`write_sidecar`. Allocating a file is what costs on many file
    systems (~0.2 ms each here, ten times a link); sharklib never edits a
    sidecar in place (countersigning replaces the file), so sharing is
    invisible to it. Where links fail (another file system, no hard links),
    the sidecar is written on its own.
    """

    #: distinct contents kept as link sources at once (identical sidecars come in runs)
    KEEP = 4

    def __init__(self) -> None:
        self._sources: dict[tuple[str, bytes], str] = {}

    def write(self, path: str | os.PathLike[str], data: bytes) -> None:
        target = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(target))
        key = (directory, data)
        source = self._sources.get(key)
        if source is None:
            try:
                source = self._source(directory, data)
            except OSError:
                write_sidecar(target, data)
                return
            self._sources[key] = source
        try:
            _link_into_place(source, target)
        except OSError:
            write_sidecar(target, data)

    def _source(self, directory: str, data: bytes) -> str:
        from sharklib.hashing.atomic import write_temporary

        if len(self._sources) >= self.KEEP:
            oldest = next(iter(self._sources))
            _unlink_quietly(self._sources.pop(oldest))
        return write_temporary(directory, data)

    def close(self) -> None:
        """Remove the private link sources (the sidecars keep their links)."""
        for source in self._sources.values():
            _unlink_quietly(source)
        self._sources.clear()

    def __enter__(self) -> SidecarWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _link_into_place(source: str, target: str) -> None:
    try:
        os.link(source, target)
        return
    except FileExistsError:
        pass
    directory = os.path.dirname(os.path.abspath(target))
    tmp = os.path.join(directory, f".sharklib-{os.urandom(6).hex()}.tmp")
    os.link(source, tmp)
    try:
        os.replace(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def input_attestation(path: str, sha256: str) -> str | None:
    """Digest of the attestation that produced ``path``, if its sidecar describes these bytes.

    A sidecar whose head names no subject with this digest (the file changed
    since) does not link. Unreadable or malformed sidecars do not link either;
    verification reports them.
    """
    side = sidecar_path(path)
    if not os.path.exists(side):
        return None
    try:
        head = read_bundle(side, head_only=True).head
    except SidecarError:
        return None
    return head.digest if sha256 in head.subject_digests else None
