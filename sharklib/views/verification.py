"""``sharklib verify``: signatures, digests on disk and a trust policy, said plainly.

The checks are :func:`sharklib.attest.verify_bundle`'s, run over the lineage
as :mod:`sharklib.views.lineage` decodes it once (with its structural checks),
and for big sidecars decoded and checked in forked worker processes
(:mod:`sharklib.views.parallel_load`); this module adds signatures by known keys that do not
verify (a tampered envelope that still carries another good signature) and a
:class:`~sharklib.views.trust.TrustPolicy`, and presents one row per step and
one line per problem, each naming the sidecar line and the step's command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sharklib.attest import check_signatures, trusted_keys
from sharklib.hashing import on_disk as digestible
from sharklib.views.lineage import Lineage, Step, load_lineage
from sharklib.views.parallel_load import load_for_verification, wants_parallel
from sharklib.views.trust import TrustPolicy, default_policy_path, load_policy

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from rich.console import Console

    from sharklib.hashing import StatCache


@dataclass(slots=True)
class StepResult:
    step: Step
    signers: list[str]
    rule: str | None = None
    problems: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class Verification:
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


def _failed_status(step: Step) -> str | None:
    """How a step that did not exit 0 ended (``"1"``, ``"-2 (signal SIGINT)"``), else None.

    Signatures and digests only say the record is authentic and the bytes are
    the recorded ones; a step interrupted by Ctrl-C or failing half-way still
    had its outputs signed, and verify passed a result built on a half-written
    file. No exit status recorded (``None``) is not a failure: it means unknown.
    Nor is SIGTERM for a child process (a run with a parent): ``multiprocessing.Pool``
    ends its workers that way once their tasks are done, and the capture, folding a
    run's children, counts it the same way.
    """
    import signal

    status = step.run.exit_status
    if status is None or (isinstance(status, int) and not isinstance(status, bool) and status == 0):
        return None
    if status == -signal.SIGTERM and step.run.parent:
        return None
    if isinstance(status, int) and status < 0:

        try:
            return f"{status} (signal {signal.Signals(-status).name})"
        except ValueError:
            return f"{status} (signal {-status})"
    return str(status)[:40]


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
    lineage.on_disk = lineage.disk_digests(statcache or StatCache(), code=False)


def verify_lineage(path: str | os.PathLike[str], policy: str | os.PathLike[str] | None = None,
                   keys: dict[str, Ed25519PublicKey] | None = None,
                   statcache: StatCache | None = None, use_default_policy: bool = True,
                   ) -> Verification:
    """Verify ``path``'s lineage; raises SidecarError/SharkError for unreadable input.

    The checks are those of :func:`sharklib.attest.verify_bundle` (a trusted
    signature on every attestation, the file and every recorded output and
    input still on disk has its recorded digest, every linked upstream
    attestation is present), done over the lineage decoded once — for big
    sidecars in parallel worker processes that also check the signatures and
    look the files up — plus bad signatures by known keys and the policy.
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
    result = Verification(lineage=lineage, policy=pol, key_names=names)
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
    for step in lineage.steps.values():
        good = list(dict.fromkeys(step.signers or []))  # a copied signature entry is one signer
        verified_as = lineage.path if step is head else None
        sr = StepResult(step=step, signers=good)
        here = where(lineage, step)
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
            if step is head and lineage.locate(p) == lineage.path:
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
        failed = _failed_status(step)
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


def render_verification(v: Verification, console: Console, max_rows: int = 60) -> None:
    from rich.table import Table

    n = len(v.steps)
    if n <= max_rows:
        table = Table(title=f"lineage of {_escape(v.lineage.path)}", title_justify="left",
                      show_lines=False, expand=False)
        table.add_column("line", justify="right")
        table.add_column("step")
        table.add_column("output")
        table.add_column("signed by")
        if v.policy is not None:
            table.add_column("rule")
        table.add_column("status")
        for sr in v.steps:
            signers = _escape(", ".join(v.signer_label(k) for k in sr.signers)) or \
                _no_good_signer(sr.step)
            if sr.signers:
                signers += _other_signers(sr.step, sr.signers)
            status = "[green]ok[/green]" if sr.ok else "[red]FAIL[/red]"
            outs = sr.step.outputs or [sr.step.output]
            shown = os.path.basename(outs[0].path) + (f" (+{len(outs) - 1})" if len(outs) > 1 else "")
            row = [str(sr.step.line), _escape(sr.step.command[:50]), _escape(shown), signers]
            if v.policy is not None:
                row.append(_escape(sr.rule or "-"))
            row.append(status)
            table.add_row(*row)
        console.print(table)
    lineage = v.lineage
    checked = {lineage.locate(p) for p in lineage.artifact_paths()}
    files = len({p for p in checked if digestible(p)})
    sigs = sum(len(sr.signers) for sr in v.steps)
    if v.ok:
        pol = f", policy {os.path.basename(v.policy.path)}" if v.policy else ""
        where = "on disk"
        rel = lineage.relocation
        if rel is not None:
            outside = sum(1 for p in lineage.artifact_paths()
                          if p != lineage.path and rel.locate(p) is None and digestible(p))
            where = f"in {_escape(rel.current)}" + (
                f" ({outside} of them outside it, at their recorded paths)" if outside else "")
        console.print(f"[green]verified[/green]: {n} attestation{'s' if n != 1 else ''}, "
                      f"{sigs} good signature{'s' if sigs != 1 else ''}, {files} file"
                      f"{'s' if files != 1 else ''} {where} match{'es' if files == 1 else ''} "
                      f"the record{_escape(pol)}")
        return
    console.print(f"[red]FAILED[/red]: {len(v.problems)} problem"
                  f"{'s' if len(v.problems) != 1 else ''}")
    for p in v.problems:
        console.print(f"  [red]✗[/red] {_escape(p)}", soft_wrap=True)


def _no_good_signer(step: Step) -> str:
    """The 'signed by' cell when no signature verified: unsigned, an unknown key, or a bad one.

    "none" read as "unsigned" for an envelope signed by a key nobody imported.
    """
    kids = [str(s.get("keyid", "")) for s in step.entry.envelope.get("signatures") or []]
    if not kids:
        return "[red]unsigned[/red]"
    unknown = {b.rsplit(" ", 1)[-1] for b in step.bad_signatures or []
               if b.startswith("signature by unknown key ")}
    labels = [f"unknown key {k[:8]}…" if k[:16] in unknown or step.bad_signatures is None
              else f"bad signature by {k[:8]}…" for k in kids]
    return "[red]" + _escape(", ".join(dict.fromkeys(labels))) + "[/red]"


def _other_signers(step: Step, good: list[str]) -> str:
    """", unknown key 6130a7dc…" for signatures beside the good ones that did not verify.

    A countersignature by a key this machine does not know was dropped from the
    cell, so an institution's signature looked absent; without a policy it
    does not fail verify, but it is listed.
    """
    def is_good(kid: str) -> bool:
        return any(g[:16] == kid[:16] for g in good if g and kid)

    kids = [str(s.get("keyid", "")) for s in step.entry.envelope.get("signatures") or []]
    unknown = {b.rsplit(" ", 1)[-1] for b in step.bad_signatures or []
               if b.startswith("signature by unknown key ")}
    labels = [f"unknown key {k[:8]}…" if k[:16] in unknown or step.bad_signatures is None
              else f"bad signature by {k[:8]}…" for k in kids if not is_good(k)]
    if not labels:
        return ""
    return ", [yellow]" + _escape(", ".join(dict.fromkeys(labels))) + "[/yellow]"


def _escape(text: str) -> str:
    from sharklib.views.lineage import safe_markup

    return safe_markup(text)


def verify_command(path: str, policy: str | None, console: Console) -> int:
    """What ``sharklib verify`` does: verify, print, exit 0 (ok) or 1 (problems)."""
    from sharklib.views.lineage import note

    v = verify_lineage(path, policy)
    said = v.lineage.relocation_note(code=False)
    if said:
        note(said)
    render_verification(v, console)
    return 0 if v.ok else 1
