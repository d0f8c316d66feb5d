"""Verify a file's lineage: every signature, every digest still on disk, every link.

The report says exactly what failed and where (the sidecar line and the step's
command), so a user can tell a tampered attestation from a file that was
simply edited after it was recorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sharklib.attest.dsse import check_signatures
from sharklib.attest.keys import trusted_keys
from sharklib.attest.sidecar import Bundle, BundleEntry, read_bundle, sidecar_path
from sharklib.hashing import on_disk as digestible
from sharklib.model import Run, narrowed, statement_subjects
from sharklib.model.links import head_subject, link

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from sharklib.hashing import StatCache
    from sharklib.model import Output


@dataclass(slots=True)
class EntryReport:
    """What verification found for one attestation in the bundle."""

    entry: BundleEntry
    run: Run | None
    output: Output | None
    #: the attestation's outputs this lineage involves (``output`` first)
    outputs: list[Output] = field(default_factory=list)
    signers: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        cmd = " ".join(self.run.argv)[:60] if self.run else "?"
        return f"line {self.entry.line} ({cmd})"


@dataclass(slots=True)
class VerifyReport:
    path: str
    bundle: Bundle
    entries: list[EntryReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _step_name(run: Run | None) -> str:
    if run is None:
        return "?"
    return " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(run.argv))[:60]


def verify_bundle(path: str, bundle: Bundle, keys: dict[str, Ed25519PublicKey] | None = None,
                  statcache: StatCache | None = None) -> VerifyReport:
    """Check ``bundle`` (the sidecar of ``path``) and the files it names that are on disk.

    Of an attestation naming several outputs, only those the lineage of
    ``path`` involves (:mod:`sharklib.model.links`) and their inputs are checked.
    """
    from sharklib.hashing import StatCache

    keys = trusted_keys() if keys is None else keys
    statcache = statcache or StatCache()
    report = VerifyReport(path=path, bundle=bundle)

    decoded: dict[str, tuple[Run, list[Output]]] = {}
    for entry in bundle.entries:
        try:
            run, outputs = statement_subjects(entry.statement)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            er = EntryReport(entry, None, None)
            er.problems.append(f"{bundle.path}:{entry.line}: cannot read statement ({exc})")
            report.entries.append(er)
            continue
        decoded.setdefault(entry.digest, (run, outputs))
        er = EntryReport(entry, run, None)
        good, bad = check_signatures(entry.envelope, keys)
        er.signers = good
        where = f"{bundle.path}:{entry.line} [{_step_name(run)}]"
        if not good:
            er.problems.append(f"{where}: not signed by a trusted key"
                               + (f" ({'; '.join(bad)})" if bad else " (no signatures)"))
        report.entries.append(er)

    head = decoded.get(bundle.head.digest)
    head_index = 0 if head is None else head_subject(
        head[1], path, lambda: (statcache.digest(path) or (None,))[0])
    links = link(decoded, bundle.head.digest, head_index)
    wanted: set[str] = {path}
    for er in report.entries:
        if er.run is None:
            continue
        outputs = decoded[er.entry.digest][1]
        er.outputs = [outputs[i] for i in links.chosen[er.entry.digest]]
        er.output = er.outputs[0]
        er.run = narrowed(er.run, er.outputs)
        wanted.update(o.path for o in er.outputs)
        wanted.update(a.path for a in er.run.inputs)

    on_disk = statcache.digests(p for p in wanted if digestible(p))
    head_digest = head[1][head_index].sha256 if head is not None else bundle.head.subject_digest
    now = on_disk.get(path)
    if now is None:
        report.problems.append(f"{path}: file is missing")
    elif now[0] != head_digest:
        report.problems.append(f"{path}: content changed since it was recorded "
                               f"(recorded {str(head_digest)[:12]}, now {now[0][:12]})")

    known = bundle.by_digest
    for er in report.entries:
        report.problems.extend(er.problems)
        if er.run is None or er.output is None:
            continue
        checks = [(o.path, o.sha256, "output") for o in er.outputs]
        checks += [(a.path, a.sha256, "input") for a in er.run.inputs]
        for p, recorded, role in checks:
            if er.entry is bundle.head and p == path:
                continue
            cur = on_disk.get(p)
            if cur is None:
                er.missing.append(p)
            elif cur[0] != recorded:
                er.stale.append(p)
                report.problems.append(
                    f"{p}: {role} of [{_step_name(er.run)}] changed since it was recorded "
                    f"(recorded {recorded[:12]}, now {cur[0][:12]})")
        for a in er.run.inputs:
            if a.attestation and a.attestation not in known:
                report.problems.append(
                    f"{bundle.path}:{er.entry.line}: lineage incomplete: the attestation of input "
                    f"{a.path} ({a.attestation[:19]}) is not in the sidecar")
    return report


def verify_file(path: str | os.PathLike[str], keys: dict[str, Ed25519PublicKey] | None = None,
                statcache: StatCache | None = None) -> VerifyReport:
    """Verify ``path`` against its sidecar; raises SidecarError for an unreadable sidecar."""
    p = os.path.abspath(os.fspath(path))
    bundle = read_bundle(sidecar_path(p))
    return verify_bundle(p, bundle, keys, statcache)
