"""Which outputs of each attestation a file's lineage involves, and how its steps link.

A sidecar holds the attestation of its file and every upstream attestation.
One attestation may name several outputs of its run (see
:mod:`sharklib.model.provenance`), each with its own inputs; a lineage only
involves the outputs that were actually consumed on the way to the file.
Starting from the file's own output, each step's inputs (the union of its
involved outputs' inputs) are linked to the attestation that produced them —
by the attestation digest an input recorded, failing that by an output with
the same path and digest — and the producing output becomes involved in turn,
until nothing changes. Attestations the file's lineage never reaches (a bundle
may carry extras) involve their first output.

Pure: the caller decodes the statements and supplies the file's current
digest when it is needed to tell which subject the file is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sharklib.model.run import Artifact, Output, Run


class Links:
    """For each attestation digest: the involved subject indices (primary first) and producers."""

    __slots__ = ("chosen", "producers")

    def __init__(self) -> None:
        #: attestation digest -> indices of the involved outputs, the primary one first
        self.chosen: dict[str, list[int]] = {}
        #: attestation digest -> {input path: digest of the attestation that produced it}
        self.producers: dict[str, dict[str, str]] = {}


def head_subject(outputs: Sequence[Output], path: str,
                 current_sha256: Callable[[], str | None] = lambda: None) -> int:
    """Which of an attestation's outputs is the file ``path`` (whose sidecar it heads).

    The recorded path, else the file's current digest (a file moved or
    published under another name), else the longest common path tail, else
    the first output.
    """
    if len(outputs) <= 1:
        return 0
    for i, o in enumerate(outputs):
        if o.path == path:
            return i
    sha = current_sha256()
    if sha:
        for i, o in enumerate(outputs):
            if o.sha256 == sha:
                return i
    parts = path.split("/")
    best, best_len = 0, 0
    for i, o in enumerate(outputs):
        theirs = o.path.split("/")
        n = 0
        while n < min(len(parts), len(theirs)) and parts[-1 - n] == theirs[-1 - n]:
            n += 1
        if n > best_len:
            best, best_len = i, n
    return best


def _subject_of(outputs: Sequence[Output], art: Artifact) -> int:
    """The producer's output an input is: same path and digest, else same digest, else the first."""
    for i, o in enumerate(outputs):
        if o.path == art.path and o.sha256 == art.sha256:
            return i
    for i, o in enumerate(outputs):
        if o.sha256 == art.sha256:
            return i
    return 0


def _inputs(run: Run, outputs: Sequence[Output], chosen: list[int]) -> list[Artifact]:
    if len(chosen) == 1:
        return run.inputs_of(outputs[chosen[0]])
    wanted: set[str] = set()
    for i in chosen:
        wanted.update(a.path for a in run.inputs_of(outputs[i]))
    return [a for a in run.inputs if a.path in wanted]


def link(steps: Mapping[str, tuple[Run, Sequence[Output]]], head: str, head_index: int = 0) -> Links:
    """Involved outputs and producers of every attestation in ``steps`` (digest -> whole run).

    ``steps`` is in bundle order (the head first); each value is the Run with
    all of the statement's inputs and the statement's outputs, each output
    naming its own inputs.
    """
    by_output: dict[tuple[str, str], str] = {}
    for digest, (_, outputs) in steps.items():
        for o in outputs:
            by_output.setdefault((o.path, o.sha256), digest)

    def producer_of(art: Artifact) -> str | None:
        if art.attestation and art.attestation in steps:
            return art.attestation
        return by_output.get((art.path, art.sha256))

    links = Links()
    chosen = links.chosen

    def spread(start: list[str], growable: Callable[[str], bool]) -> None:
        queue = list(start)
        while queue:
            digest = queue.pop()
            run, outputs = steps[digest]
            for art in _inputs(run, outputs, chosen[digest]):
                prod = producer_of(art)
                if prod is None or not growable(prod):
                    continue
                k = _subject_of(steps[prod][1], art)
                have = chosen.setdefault(prod, [])
                if k not in have:
                    have.append(k)
                    queue.append(prod)

    if head in steps:
        chosen[head] = [head_index]
        spread([head], lambda d: True)
    reached = set(chosen)
    extras = [d for d in steps if d not in reached]
    for d in extras:
        chosen[d] = [0]
    spread(extras, lambda d: d not in reached)

    for digest, (run, outputs) in steps.items():
        have = chosen[digest]
        chosen[digest] = have[:1] + sorted(set(have[1:]) - set(have[:1]))
        found: dict[str, str] = {}
        for art in _inputs(run, outputs, chosen[digest]):
            prod = producer_of(art)
            if prod is not None:
                found[art.path] = prod
        links.producers[digest] = found
    return links
