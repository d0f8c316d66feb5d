"""Verify a file's lineage: every signature, every digest still on disk, every link, the policy.

The one verifier: ``sharklib verify`` renders its :class:`VerifyReport`
(:mod:`sharklib.views.verdict`), the Python API returns it, and both read the
sidecar through the one lineage reader (:mod:`sharklib.attest.lineage`). The
report says exactly what failed and where (the sidecar line and the step's
command), so a user can tell a tampered attestation from a file that was
simply edited after it was recorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sharklib.attest.dsse import check_signatures
from sharklib.attest.keys import trusted_keys
from sharklib.attest.lineage import Lineage, Step, load_lineage
from sharklib.attest.parallel_load import load_for_verification, wants_parallel
from sharklib.attest.policy import TrustPolicy, default_policy_path, load_policy

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from sharklib.hashing import StatCache


@dataclass(slots=True)
class StepResult:
    """One attestation's verdict: who signed it, the policy rule that covered it, its problems."""

    step: Step
    signers: list[str]
    rule: str | None = None
    problems: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class VerifyReport:
    """What verification found: ``ok``, one line per problem, one :class:`StepResult` per step."""

    lineage: Lineage
    policy: TrustPolicy | None
    steps: list[StepResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    key_names: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def signer_label(self, keyid: str) -> str:
        name = self.key_names.get(keyid)
        return f"{name} ({keyid[:8]})" if name else keyid[:16]


def where(lineage: Lineage, step: Step) -> str:
    return f"{lineage.sidecar}:{step.line} [{step.command[:60]}]"


class _Where:
    """:func:`where` of one step, computed when a problem first says it."""

    __slots__ = ("_lineage", "_step", "_text")

    def __init__(self, lineage: Lineage, step: Step) -> None:
        self._lineage = lineage
        self._step = step
        self._text: str | None = None

    def __format__(self, spec: str) -> str:
        if self._text is None:
            self._text = where(self._lineage, self._step)
        return format(self._text, spec)


def _names_the_file(head: Step, path: str) -> bool:
    """Whether the head attestation lists ``path`` as a subject: by its path, or by its base
    name (the file and its sidecar copied or published to another directory together).

    Loading a lineage also accepts a subject with the file's *digest* under another name (so
    ``show`` and ``why`` explain a renamed copy), but verify must not: a lab-signed draft.txt
    copied with its sidecar to report.txt would pass as a signed report.txt.
    """
    name = os.path.basename(path)
    return any(o.path == path or os.path.basename(o.path.rstrip("/")) == name
               for o in head.outputs or [head.output])


def check_lineage(lineage: Lineage, keys: dict[str, Ed25519PublicKey],
                  statcache: StatCache | None = None) -> None:
    """Fill ``Step.signers``/``bad_signatures`` and ``Lineage.on_disk`` in this process."""
    from sharklib.hashing import StatCache

    for step in lineage.steps.values():
        if step.signers is None:
            step.signers, step.bad_signatures = check_signatures(step.entry.envelope, keys)
    lineage.on_disk = None
    lineage.on_disk = lineage.disk_digests(statcache or StatCache(), code=False, signed_only=True)


def verify_file(path: str | os.PathLike[str], keys: dict[str, Ed25519PublicKey] | None = None,
                statcache: StatCache | None = None, policy: str | os.PathLike[str] | None = None,
                use_default_policy: bool = True) -> VerifyReport:
    """Verify ``path``'s lineage (``path`` a file with a sidecar, or the sidecar itself).

    The one verifier: ``sharklib verify`` renders this report, the Python API
    returns it. Raises :class:`~sharklib.errors.SidecarError` (one line naming
    sidecar and line) for a sidecar that cannot be read as a lineage, and
    SharkError for a bad policy. Otherwise every problem is a line of
    ``VerifyReport.problems``: an attestation without a trusted signature, or
    with a signature by a known key that does not verify; the file, or a
    recorded output or input still on disk, whose digest is not the recorded
    one; a linked upstream attestation missing from the sidecar; a step that
    failed (:meth:`sharklib.model.Run.failure`) unless the trust policy allows
    it; and what the policy (``policy``, else ``config_dir()/trust.toml`` when
    ``use_default_policy``) asks for. The lineage is decoded once, for big
    sidecars in parallel worker processes that also check the signatures and
    look the files up.
    """
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        return _verify_file(path, keys, statcache, policy, use_default_policy)
    finally:
        if enabled:
            gc.enable()


def _verify_file(path: str | os.PathLike[str], keys: dict[str, Ed25519PublicKey] | None,
                 statcache: StatCache | None, policy: str | os.PathLike[str] | None,
                 use_default_policy: bool) -> VerifyReport:
    """:func:`verify_file` with the cyclic garbage collector paused.

    A 10,000-attestation lineage is a million acyclic objects that all stay alive:
    collections walking them again and again took three quarters of the checks'
    time and freed nothing.
    """
    from sharklib.attest.keys import trusted_key_names

    policy_path = os.fspath(policy) if policy is not None else (
        default_policy_path() if use_default_policy else None)
    pol = load_policy(policy_path) if policy_path else None
    all_keys = dict(trusted_keys() if keys is None else keys)
    names = trusted_key_names()
    if pol is not None:
        all_keys.update(pol.public_keys())
        names.update(pol.names())
    if statcache is None and wants_parallel(path):
        lineage = load_for_verification(path, all_keys)
    else:
        lineage = load_lineage(path, keys=all_keys)
        check_lineage(lineage, all_keys, statcache)
    on_disk = lineage.on_disk or {}
    result = VerifyReport(lineage=lineage, policy=pol, key_names=names)
    problems = result.problems

    head = lineage.head
    now = on_disk.get(lineage.path)
    if now is None:
        problems.append(f"{lineage.path}: file is missing")
    elif now != head.output.sha256:
        problems.append(f"{lineage.path}: content changed since it was recorded "
                        f"(recorded {head.output.sha256[:12]}, now {now[:12]})")
    if not _names_the_file(head, lineage.path):
        outs = [os.path.basename(o.path) for o in head.outputs or [head.output]]
        problems.append(f"{lineage.path}: not a subject of its attestation (it records "
                        f"{', '.join(outs[:3])}{' …' if len(outs) > 3 else ''}): a signature "
                        "vouches for the names it lists, not for a copy under another name")
    # a version of a file that a step of this lineage read and rewrote in place (a log it
    # appended to, a database it updated): that its old content is gone is the point
    superseded = {(a.path, a.sha256) for s in lineage.steps.values() for a in s.inputs
                  if any(o.path == a.path for o in s.outputs or [s.output])}
    for step in lineage.steps.values():
        good = list(dict.fromkeys(step.signers or []))  # a copied signature entry is one signer
        verified_as = lineage.path if step is head else None
        sr = StepResult(step=step, signers=good)
        # the step's label is only wanted in a problem; naming every step cost a third of
        # the checks of a big lineage that had none
        here = _Where(lineage, step)
        if not good:
            bad = step.bad_signatures or []
            sr.problems.append(f"{here}: not signed by a trusted key"
                               + (f" ({'; '.join(bad)})" if bad else " (no signatures)"))
        for sig in step.entry.envelope.get("signatures", []):
            kid = str(sig.get("keyid", ""))
            if kid in all_keys and kid not in good:
                sr.problems.append(f"{here}: signature by {result.signer_label(kid)} does not "
                                   "verify (envelope altered after signing?)")
        checks = [(o.path, o.sha256, "output") for o in step.outputs or [step.output]]
        checks += [(a.path, a.sha256, "input") for a in step.inputs]
        for p, recorded, role in checks:
            if (step is head and lineage.locate(p) == lineage.path) or (p, recorded) in superseded:
                continue
            cur = on_disk.get(p)
            if cur is not None and cur != recorded:
                sr.stale.append(p)
                sr.problems.append(f"{lineage.locate(p)}: {role} of [{step.command[:60]}] "
                                   "changed since it was "
                                   f"recorded (recorded {recorded[:12]}, now {cur[:12]})")
        for a in step.inputs:
            if a.attestation and a.attestation not in lineage.steps:
                sr.problems.append(f"{lineage.sidecar}:{step.line}: lineage incomplete: the "
                                   f"attestation of input {a.path} ({a.attestation[:19]}) "
                                   "is not in the sidecar")
        failed = step.run.failure()
        if failed and not (pol is not None and pol.allows_failure(step, verified_as)):
            sr.problems.append(f"{here}: step `{step.command[:60]}` exited {failed}: "
                               "its output may be incomplete")
        if pol is not None:
            rule = pol.rule_for(step, verified_as)
            sr.rule = rule.name if rule else None
            sr.problems.extend(f"{here}: {why}"
                               for why in pol.evaluate(step, good, verified_as=verified_as))
        problems.extend(sr.problems)
        result.steps.append(sr)
    result.problems = list(dict.fromkeys(problems))
    return result
