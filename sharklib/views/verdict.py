"""``sharklib verify``: the verifier's report said plainly, one row per step, one line per problem.

The checks are :func:`sharklib.attest.verify_file`'s (the same report the
Python API returns); this module only presents them, each problem naming the
sidecar line and the step's command.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sharklib.attest.verify import VerifyReport, verify_file
from sharklib.hashing import on_disk as digestible

if TYPE_CHECKING:
    from rich.console import Console

    from sharklib.attest.lineage import Step


def render_verification(v: VerifyReport, console: Console, max_rows: int = 60) -> None:
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
    # a file whose digest was just compared is on disk: only the others are looked at again
    compared = {lineage.locate(p) for p in lineage.on_disk or ()}
    files = len(compared.intersection(checked)) + sum(
        1 for p in checked.difference(compared) if digestible(p))
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
    from sharklib.views.text import safe_markup

    return safe_markup(text)


def verify_command(path: str, policy: str | None, console: Console) -> int:
    """What ``sharklib verify`` does: verify, print, exit 0 (ok) or 1 (problems).

    The cyclic garbage collector stays paused while the report is rendered, as it is
    while it is made (:func:`~sharklib.attest.verify.verify_file`): the lineage is
    all alive until the end, and collections would only walk it again.
    """
    import gc

    from sharklib.views.text import note

    enabled = gc.isenabled()
    gc.disable()
    try:
        v = verify_file(path, policy=policy)
        said = v.lineage.relocation_note(code=False)
        if said:
            note(said)
        render_verification(v, console)
    finally:
        if enabled:
            gc.enable()
    return 0 if v.ok else 1
