"""``sharklib verify``: signatures, digests on disk and a trust policy, said plainly.

The core checks are :func:`sharklib.attest.verify_bundle`'s; this module adds
the structural checks of :mod:`sharklib.views.lineage`, flags signatures by
known keys that do not verify (a tampered envelope that still carries another
good signature), applies a :class:`~sharklib.views.trust.TrustPolicy`, and
presents one row per step and one line per problem, each naming the sidecar
line and the step's command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sharklib.attest import trusted_keys, verify_bundle
from sharklib.views.lineage import Lineage, Step, load_lineage
from sharklib.views.trust import TrustPolicy, default_policy_path, load_policy

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from rich.console import Console

    from sharklib.attest.verify import VerifyReport
    from sharklib.hashing import StatCache


@dataclass(slots=True)
class StepResult:
    step: Step
    signers: list[str]
    rule: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class Verification:
    lineage: Lineage
    report: VerifyReport
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


def verify_lineage(path: str | os.PathLike[str], policy: str | os.PathLike[str] | None = None,
                   keys: dict[str, Ed25519PublicKey] | None = None,
                   statcache: StatCache | None = None, use_default_policy: bool = True,
                   ) -> Verification:
    """Verify ``path``'s lineage; raises SidecarError/SharkError for unreadable input."""
    from sharklib.attest.keys import trusted_key_names

    lineage = load_lineage(path)
    policy_path = os.fspath(policy) if policy is not None else (
        default_policy_path() if use_default_policy else None)
    pol = load_policy(policy_path) if policy_path else None
    all_keys = dict(trusted_keys() if keys is None else keys)
    names = trusted_key_names()
    if pol is not None:
        all_keys.update(pol.public_keys())
        names.update(pol.names())
    report = verify_bundle(lineage.path, lineage.bundle, all_keys, statcache)
    result = Verification(lineage=lineage, report=report, policy=pol, key_names=names)
    result.problems.extend(report.problems)
    by_digest = {er.entry.digest: er for er in report.entries}
    for step in lineage.steps.values():
        er = by_digest.get(step.digest)
        good = er.signers if er is not None else []
        sr = StepResult(step=step, signers=good)
        if er is not None:
            sr.problems.extend(er.problems)
            sr.problems.extend(f"{p}: changed since it was recorded" for p in er.stale)
        for sig in step.entry.envelope.get("signatures", []):
            kid = str(sig.get("keyid", ""))
            if kid in all_keys and kid not in good:
                msg = (f"{where(lineage, step)}: signature by {result.signer_label(kid)} "
                       "does not verify (envelope altered after signing?)")
                sr.problems.append(msg)
                result.problems.append(msg)
        if pol is not None:
            rule = pol.rule_for(step)
            sr.rule = rule.name if rule else None
            for why in pol.evaluate(step, good):
                msg = f"{where(lineage, step)}: {why}"
                sr.problems.append(msg)
                result.problems.append(msg)
        result.steps.append(sr)
    result.problems = list(dict.fromkeys(result.problems))
    return result


def render_verification(v: Verification, console: Console, max_rows: int = 60) -> None:
    from rich.table import Table

    n = len(v.steps)
    if n <= max_rows:
        table = Table(title=f"lineage of {v.lineage.path}", title_justify="left",
                      show_lines=False, expand=False)
        table.add_column("line", justify="right")
        table.add_column("step")
        table.add_column("output")
        table.add_column("signed by")
        if v.policy is not None:
            table.add_column("rule")
        table.add_column("status")
        for sr in v.steps:
            signers = ", ".join(v.signer_label(k) for k in sr.signers) or "[red]none[/red]"
            status = "[green]ok[/green]" if sr.ok else "[red]FAIL[/red]"
            row = [str(sr.step.line), _escape(sr.step.command[:50]),
                   _escape(os.path.basename(sr.step.output.path)), signers]
            if v.policy is not None:
                row.append(_escape(sr.rule or "-"))
            row.append(status)
            table.add_row(*row)
        console.print(table)
    files = len({p for p in v.lineage.artifact_paths() if os.path.isfile(p)})
    sigs = sum(len(sr.signers) for sr in v.steps)
    if v.ok:
        pol = f", policy {os.path.basename(v.policy.path)}" if v.policy else ""
        console.print(f"[green]verified[/green]: {n} attestation{'s' if n != 1 else ''}, "
                      f"{sigs} good signature{'s' if sigs != 1 else ''}, {files} file"
                      f"{'s' if files != 1 else ''} on disk match{'es' if files == 1 else ''} "
                      f"the record{_escape(pol)}")
        return
    console.print(f"[red]FAILED[/red]: {len(v.problems)} problem"
                  f"{'s' if len(v.problems) != 1 else ''}")
    for p in v.problems:
        console.print(f"  [red]✗[/red] {_escape(p)}", soft_wrap=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def verify_command(path: str, policy: str | None, console: Console) -> int:
    """What ``sharklib verify`` does: verify, print, exit 0 (ok) or 1 (problems)."""
    v = verify_lineage(path, policy)
    render_verification(v, console)
    return 0 if v.ok else 1
