"""A file's lineage as a graph of steps, loaded from its sidecar alone: the one lineage reader.

Verification (:mod:`sharklib.attest.verify`) and every view (show, why, diff,
graph, export, pipeline-from) start here, so the structural checks live here once: a sidecar that parses line by
line (``sharklib.attest.sidecar.parse_line``) can still be nonsense as a
lineage — the same attestation twice, two different records of one run's
output, a predicate nobody knows, or links that loop. Each of those is a
one-line :class:`~sharklib.errors.SidecarError` naming the sidecar and line,
because a lineage that cannot be a DAG cannot be shown or trusted.

Steps are linked by the attestation digest an input recorded (the normal
case) and, failing that, by an input's (path, sha256) matching another step's
output, so lineages written by tools that do not record links still connect.
An attestation may name several outputs of its run; a step then stands for
those of them the file's lineage involves, with their inputs only
(:mod:`sharklib.model.links`).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sharklib.attest.dsse import check_signatures
from sharklib.attest.naming import SUFFIX, is_sidecar, sidecar_path
from sharklib.attest.sidecar import (
    MAX_LINE,
    Bundle,
    BundleEntry,
    iter_lines,
    parse_line_payload,
    reject_repeats,
)
from sharklib.errors import SidecarError
from sharklib.model import Artifact, Output, Run, narrowed, statement_subjects
from sharklib.model.links import head_subject, link

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from sharklib.hashing import StatCache


@dataclass(slots=True)
class Step:
    """One attestation: the run it describes and the output(s) of it this lineage involves.

    ``run`` holds only what those outputs read (``run.inputs``) and them
    (``run.outputs``); ``output`` is the first of ``outputs`` (for the head
    step, the lineage's own file).
    """

    entry: BundleEntry
    run: Run
    output: Output
    #: key ids whose signatures verify / reasons others do not (None: not checked)
    signers: list[str] | None = None
    bad_signatures: list[str] | None = None
    #: input path -> digest of the step that produced it (only inputs with a producer here)
    producers: dict[str, str] = field(default_factory=dict)
    #: the attestation's outputs this lineage involves, ``output`` first
    outputs: list[Output] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return self.entry.digest

    @property
    def line(self) -> int:
        return self.entry.line

    @property
    def inputs(self) -> list[Artifact]:
        return self.run.inputs

    @property
    def command(self) -> str:
        """The step as a user would name it (see :func:`step_label`)."""
        return step_label(self.run)

    @property
    def run_id(self) -> str:
        return self.run.run_id or self.digest


def command_text(argv: list[str], width: int | None = None) -> str:
    import shlex

    parts = [os.path.basename(a) if i == 0 else a for i, a in enumerate(argv)]
    text = shlex.join(parts) if parts else "?"
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text


_SHELLS = {"sh", "bash", "dash", "zsh", "ksh"}
_MP_WORKERS = (("from multiprocessing.spawn import spawn_main", "spawn"),
               ("from multiprocessing.forkserver import main", "forkserver"))


def step_label(run: Run) -> str:
    """What a step is called in show, why, graph and verify: the command the user wrote.

    The recorded argv is kept whole in the record; only the label changes. A
    pipeline stage runs as ``sh -c 'CMD'``, so it is labelled ``CMD`` (graph
    nodes read ``sh -c 'python steps/clean.p…``); an import stage as ``import
    SRC -> DEST``, as the plan names it; a multiprocessing spawn/forkserver
    worker, whose argv is CPython's bootstrap (``spawn_main(tracker_fd=…)``),
    as a worker of the program whose main module it re-imported (the first
    local module it recorded). Everything else is :func:`command_text`.
    """
    import shlex

    argv = run.argv
    text = None
    if len(argv) >= 3 and os.path.basename(argv[0]) in _SHELLS and argv[1] == "-c":
        text = argv[2].strip()
        try:
            argv = shlex.split(text)
        except ValueError:
            return text
    if len(argv) >= 5 and argv[1:3] == ["-m", "sharklib.pipeline.fetch"]:
        return f"import {argv[3]} -> {argv[4]}"
    if text:
        return text
    code = next((a for a in argv[1:4] if a.startswith("from multiprocessing.")), None)
    for prefix, method in _MP_WORKERS:
        if code is not None and code.startswith(prefix):
            modules = [m.path for m in run.code.modules if m.path.endswith(".py")]
            main = os.path.basename(modules[0]) if modules else "python"
            return f"{main} worker (multiprocessing {method})"
    return command_text(argv)


def _under(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root if root == "/" else root + "/")


@dataclass(slots=True, frozen=True)
class Relocation:
    """The recorded tree ``recorded`` now lives at ``current`` (a copied or moved project).

    Recorded paths are absolute. Checking them after the project was copied
    or moved checks the *original's* files: a tampered copy verified because
    its original was intact, and with the original gone every input showed as
    missing. So a recorded path inside the recorded tree is looked for at the
    same place in the current one; paths outside it are checked where they
    were recorded (and the views say how many).
    """

    recorded: str
    current: str

    def locate(self, path: str) -> str | None:
        """Where the recorded ``path`` is now, or None when it lies outside the recorded tree."""
        if not _under(path, self.recorded):
            return None
        rest = path[len(self.recorded.rstrip("/")):]
        return (self.current.rstrip("/") or "") + rest if rest else self.current

    def note(self, outside: int) -> str:
        """The one line saying which tree is checked."""
        text = (f"recorded in {self.recorded}; checking the files of this tree, {self.current}")
        if outside:
            text += (f" ({outside} recorded file{'s' if outside != 1 else ''} outside it "
                     "checked at the recorded path)")
        return text


def find_relocation(recorded_output: str, path: str, run: Run) -> Relocation | None:
    """How the head's recorded output ``recorded_output`` maps onto ``path``, where it is now.

    The recorded tree is the head step's git root, else its working
    directory, when it holds the output; it is mapped onto the current
    location by the output's position in it (``results/report.txt`` under the
    root). When ``path`` does not end that way (the file was copied on its
    own), the output's directory is mapped onto the file's directory. Same
    directory (a rename in place) or the same directory by another name (a
    symlink) is no relocation.
    """
    if recorded_output == path:
        return None
    rec_dir, cur_dir = os.path.dirname(recorded_output), os.path.dirname(path)
    if rec_dir == cur_dir:
        return None
    try:
        if os.path.samefile(rec_dir, cur_dir):
            return None
    except OSError:
        pass
    git = run.code.git
    for root in (git.root if git else None, run.cwd):
        if not root or not os.path.isabs(root) or not _under(recorded_output, root):
            continue
        rel = os.path.relpath(recorded_output, root)
        if rel != "." and path.endswith("/" + rel):
            return Relocation(os.path.normpath(root), path[: -len(rel) - 1] or "/")
    return Relocation(rec_dir, cur_dir)


@dataclass(slots=True)
class Lineage:
    """The steps of one file's lineage, head first, linked into a DAG."""

    path: str
    sidecar: str
    bundle: Bundle
    steps: dict[str, Step]
    #: digests of files on disk gathered while loading (None: not gathered)
    on_disk: dict[str, str] | None = None
    #: the recorded tree is elsewhere now (see :class:`Relocation`); None: checked where recorded
    relocation: Relocation | None = None

    def locate(self, path: str) -> str:
        """Where a recorded ``path`` is to be checked on disk now (the file itself: where it is)."""
        if path == self.path or self.relocation is None:
            return path
        return self.relocation.locate(path) or path

    def relocation_note(self, code: bool = True) -> str | None:
        """One line naming the tree whose files are checked, when it is not the recorded one."""
        if self.relocation is None:
            return None
        outside = sum(1 for p in self.artifact_paths(code)
                      if p != self.path and self.relocation.locate(p) is None)
        return self.relocation.note(outside)

    @property
    def head(self) -> Step:
        return self.steps[self.bundle.head.digest]

    def parents(self, step: Step) -> list[Step]:
        return [self.steps[d] for d in dict.fromkeys(step.producers.values())]

    def reachable(self) -> list[Step]:
        """Steps reachable from the head (a bundle may carry extras; views ignore them)."""
        seen: dict[str, Step] = {}
        stack = [self.head]
        while stack:
            step = stack.pop()
            if step.digest in seen:
                continue
            seen[step.digest] = step
            stack.extend(self.parents(step))
        return [s for d, s in self.steps.items() if d in seen]

    def topological(self) -> list[Step]:
        """Steps reachable from the head, every producer before its consumers."""
        order: list[Step] = []
        done: set[str] = set()
        for start in self.reachable():
            if start.digest in done:
                continue
            stack: list[tuple[Step, Iterator[Step]]] = [(start, iter(self.parents(start)))]
            done.add(start.digest)
            while stack:
                step, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    order.append(step)
                elif nxt.digest not in done:
                    done.add(nxt.digest)
                    stack.append((nxt, iter(self.parents(nxt))))
        return order

    def artifact_paths(self, code: bool = True, signed_only: bool = False) -> set[str]:
        """The file itself and what its steps name; ``signed_only``: only steps whose signature
        by a trusted key verified (what an unproved statement names is not looked at: a
        forged sidecar naming ``/etc/shadow`` must not get its digest printed)."""
        paths = {self.path}
        for step in self.steps.values():
            if signed_only and not step.signers:
                continue
            paths.update(o.path for o in step.outputs or [step.output])
            paths.update(a.path for a in step.inputs)
            if code:
                c = step.run.code
                paths.update(m.path for m in ([c.script] if c.script else []) + c.modules)
        return paths

    def disk_digests(self, statcache: StatCache | None = None, code: bool = True,
                     signed_only: bool = False) -> dict[str, str]:
        """Current sha256 of every artifact of the lineage still on disk (a stat when known)."""
        from sharklib.hashing import StatCache

        known = self.on_disk or {}
        # no on_disk filter: the stat cache stats each path itself and answers only for
        # regular files and directory listings, so filtering first stated every file twice
        where = {p: self.locate(p) for p in self.artifact_paths(code, signed_only)
                 if p not in known}
        cache = statcache or StatCache()
        found = {q: d for q, (d, _) in cache.digests(list(set(where.values()))).items()} \
            if where else {}
        return {**known, **{p: found[now] for p, now in where.items() if now in found}}


def disk_state(path: str, recorded: str, on_disk: dict[str, str]) -> str:
    """``ok``, ``stale`` (content differs from the record) or ``missing``."""
    now = on_disk.get(path)
    if now is None:
        return "missing"
    return "ok" if now == recorded else "stale"


@dataclass(slots=True)
class Decoded:
    """One sidecar line, decoded; signatures checked when keys were given.

    ``run`` is the whole run the statement describes (all its inputs), and
    ``outputs`` every output it names; ``output`` is the first of them.
    """

    entry: BundleEntry
    run: Run
    output: Output
    good: list[str] | None = None
    bad: list[str] | None = None
    outputs: list[Output] = field(default_factory=list)


def _decode(entry: BundleEntry, sidecar: str) -> tuple[Run, list[Output]]:
    try:
        run, outputs = statement_subjects(entry.statement)
    except ValueError as exc:
        raise SidecarError(str(exc)[:120], sidecar, entry.line) from None
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)[:80]
        raise SidecarError(f"statement of the wrong shape ({what})", sidecar, entry.line) from None
    if not isinstance(run.argv, list) or not run.cwd:
        raise SidecarError("statement has no command or working directory", sidecar, entry.line)
    return run, outputs


def decode_line(raw: bytes, sidecar: str, lineno: int,
                 keys: dict[str, Ed25519PublicKey] | None) -> Decoded | None:
    if len(raw) > MAX_LINE:
        raise SidecarError(f"line longer than {MAX_LINE // (1024 * 1024)} MiB "
                           "(not a sidecar?)", sidecar, lineno)
    if not raw.strip():
        return None
    entry, payload = parse_line_payload(raw, sidecar, lineno)
    run, outputs = _decode(entry, sidecar)
    d = Decoded(entry, run, outputs[0], outputs=outputs)
    if keys is not None:
        d.good, d.bad = check_signatures(entry.envelope, keys, payload)
    return d


def _iter_serial(sidecar: str, keys: dict[str, Ed25519PublicKey] | None) -> Iterator[Decoded]:
    for lineno, raw in iter_lines(sidecar, "no sidecar (this file has no recorded lineage)"):
        d = decode_line(raw, sidecar, lineno, keys)
        if d is not None:
            yield d


def decode_sidecar(sidecar: str, keys: dict[str, Ed25519PublicKey] | None = None,
                   ) -> list[Decoded]:
    """Every line decoded (signatures checked when ``keys`` are given).

    A repeated attestation is an error naming both lines.
    """
    enabled = gc.isenabled()
    gc.disable()  # many small acyclic objects: cyclic collections would only cost time
    try:
        decoded = list(_iter_serial(sidecar, keys))
    finally:
        if enabled:
            gc.enable()
    reject_duplicates(decoded, sidecar)
    return decoded


def reject_duplicates(decoded: list[Decoded], sidecar: str) -> None:
    """:func:`sharklib.attest.sidecar.reject_repeats` over decoded lines."""
    reject_repeats([d.entry for d in decoded], sidecar)


def read_entries(sidecar: str) -> list[BundleEntry]:
    """Every line of a sidecar, validated (see :func:`decode_sidecar`)."""
    return [d.entry for d in decode_sidecar(sidecar)]


def _check_conflicts(decoded: list[Decoded], sidecar: str) -> None:
    """Two records of one run's output with different digests cannot both be true."""
    owner: dict[tuple[str, str], tuple[str, int]] = {}
    for d in decoded:
        if not d.run.run_id:
            continue
        for o in d.outputs or [d.output]:
            other = owner.get((d.run.run_id, o.path))
            if other is not None and other[0] != o.sha256:
                raise SidecarError(
                    f"conflicting attestations: run {d.run.run_id[:16]} recorded "
                    f"{os.path.basename(o.path)!r} with two different digests "
                    f"(see line {other[1]})", sidecar, d.entry.line)
            owner[(d.run.run_id, o.path)] = (o.sha256, d.entry.line)


def _current_sha256(path: str) -> str | None:
    from sharklib.hashing import sha256_file

    if not os.path.isfile(path):  # a FIFO or device in the file's place is not read
        return None
    try:
        return sha256_file(path)[0]
    except OSError:
        return None


class _Once:
    """A lazily computed value, computed at most once (the file's digest, wanted by two checks)."""

    def __init__(self, make: Callable[[], str | None]) -> None:
        self._make = make
        self._done = False
        self._value: str | None = None

    def __call__(self) -> str | None:
        if not self._done:
            self._value, self._done = self._make(), True
        return self._value


def _check_head_records(outputs: list[Output], path: str, sidecar: str, line: int,
                        current: Callable[[], str | None]) -> None:
    """The sidecar's first attestation must be about ``path``, else it is another file's.

    Two outputs' sidecars swapped (or one copied over another) used to be
    shown as the file's own lineage — made by the other step, marked STALE,
    "content changed" in verify — because a head naming no subject like the
    file fell back to its first subject. A subject records the file when it
    has the file's path, or its base name (the file and its sidecar moved or
    copied together to another tree), or the file's current digest (the
    file published under another name).
    """
    name = os.path.basename(path)
    if any(o.path == path or os.path.basename(o.path.rstrip("/")) == name for o in outputs):
        return
    sha = current()
    if sha is not None and any(o.sha256 == sha for o in outputs):
        return
    names = [os.path.basename(o.path.rstrip("/")) or o.path for o in outputs]
    shown = ", ".join(names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")
    raise SidecarError(f"{os.path.basename(sidecar)} does not record {name} "
                       f"(its attestation is for {shown})", sidecar, line)


def _check_acyclic(lineage: Lineage) -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in lineage.steps.values():
        if start.digest in state:
            continue
        path: list[Step] = [start]
        iters = [iter(lineage.parents(start))]
        state[start.digest] = 1
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop().digest] = 2
                iters.pop()
                continue
            st = state.get(nxt.digest)
            if st == 1:
                start_at = next(i for i, s in enumerate(path) if s is nxt)
                loop = [*path[start_at:], nxt]
                chain = " -> ".join(f"line {s.line}" for s in loop)
                raise SidecarError(f"lineage has a cycle ({chain})", lineage.sidecar, nxt.line)
            if st is None:
                state[nxt.digest] = 1
                path.append(nxt)
                iters.append(iter(lineage.parents(nxt)))


def lineage_from_decoded(path: str, sidecar: str, decoded: list[Decoded]) -> Lineage:
    """Link and check decoded lines (the first is the head).

    Each step keeps only the outputs the lineage of ``path`` involves, and
    only their inputs; the decoded runs are narrowed in place.
    """
    bundle = Bundle(sidecar, [d.entry for d in decoded])
    _check_conflicts(decoded, sidecar)
    whole = {d.entry.digest: (d.run, d.outputs or [d.output]) for d in decoded}
    head = decoded[0] if decoded else None
    current = _Once(lambda: _current_sha256(path))
    head_index = 0 if head is None else head_subject(whole[head.entry.digest][1], path, current)
    if head is not None:
        _check_head_records(whole[head.entry.digest][1], path, sidecar, head.entry.line, current)
    links = link(whole, head.entry.digest if head else "", head_index)
    steps: dict[str, Step] = {}
    for d in decoded:
        everything = whole[d.entry.digest][1]
        outputs = [everything[i] for i in links.chosen[d.entry.digest]]
        steps[d.entry.digest] = Step(d.entry, narrowed(d.run, outputs), outputs[0],
                                     signers=d.good, bad_signatures=d.bad,
                                     producers=links.producers[d.entry.digest], outputs=outputs)
    lineage = Lineage(path=path, sidecar=sidecar, bundle=bundle, steps=steps)
    _check_acyclic(lineage)
    if head is not None:
        head_step = steps[head.entry.digest]
        lineage.relocation = find_relocation(head_step.output.path, path, head_step.run)
    return lineage


def lineage_from_entries(path: str, sidecar: str, entries: Iterable[BundleEntry]) -> Lineage:
    """Decode, link and check already-parsed entries (the first is the head)."""
    decoded = []
    for entry in entries:
        run, outputs = _decode(entry, sidecar)
        decoded.append(Decoded(entry, run, outputs[0], outputs=outputs))
    return lineage_from_decoded(path, sidecar, decoded)


def split_target(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(file, sidecar) for a file or for its sidecar."""
    p = os.path.abspath(os.fspath(path))
    if is_sidecar(p):
        return p[: -len(SUFFIX)], p
    return p, sidecar_path(p)


def load_lineage(path: str | os.PathLike[str],
                 keys: dict[str, Ed25519PublicKey] | None = None) -> Lineage:
    """The lineage of ``path`` (a file with a sidecar, or the sidecar itself).

    With ``keys``, every signature is checked while decoding (``Step.signers``).
    A path with neither a file nor a sidecar is "no such file" (a typo), not
    "no sidecar" (a file sharklib did not record).
    """
    p, sidecar = split_target(path)
    if not os.path.lexists(p) and not os.path.lexists(sidecar):
        from sharklib.errors import SharkError

        raise SharkError(f"no such file: {os.fspath(path)}")
    return lineage_from_decoded(p, sidecar, decode_sidecar(sidecar, keys))
