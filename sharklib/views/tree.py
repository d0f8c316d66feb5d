"""``sharklib show``: a file's lineage as a tree a person can read.

The file, the step that made it (command, when, exit status, signer, code
commit), then each input with the step that made *it*, recursively, and the
downloads. A step that feeds several others is drawn once and referred to
afterwards ("see above"), so a wide DAG does not explode into a huge tree.
Every file is marked against the disk: stale (different bytes now) or missing.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rich.tree import Tree

from sharklib.attest import check_signatures, trusted_keys
from sharklib.attest.lineage import Lineage, Step, disk_state, load_lineage
from sharklib.model.provenance import iso
from sharklib.views.text import display_path, note
from sharklib.views.text import safe_markup as escape

if TYPE_CHECKING:
    from rich.console import Console

    from sharklib.model import Artifact

MARK = {"ok": "", "stale": " [bold yellow]STALE[/bold yellow] (content on disk differs)",
        "missing": " [dim]missing[/dim]"}


def short(digest: str | None) -> str:
    return (digest or "?")[:12]


def origin_of(art: Artifact, lineage: Lineage) -> str:
    """What an input without a producer in the sidecar is.

    An input that records the attestation of the step that made it, when that
    attestation is not in the sidecar (a line deleted, a sidecar trimmed), is
    not a primary input: its lineage is just not included.
    """
    if art.attestation and art.attestation not in lineage.steps:
        return "lineage not included"
    return "primary input"


class LineageTree:
    """Builds the rich Tree; separated from printing so tests can render it to text."""

    def __init__(self, lineage: Lineage, on_disk: dict[str, str], base: str | None = None) -> None:
        self.lineage = lineage
        self.on_disk = on_disk
        self.base = base or lineage.head.run.cwd or os.path.dirname(lineage.path)
        self.shown: dict[str, int] = {}
        self.keys = trusted_keys()
        from sharklib.attest.keys import trusted_key_names

        self.names = trusted_key_names()

    def _file_label(self, path: str, sha: str, note: str = "") -> str:
        state = disk_state(path, sha, self.on_disk)
        return (f"[bold]{escape(display_path(path, self.base))}[/bold] "
                f"[dim]sha256:{short(sha)}[/dim]{note}{MARK[state]}")

    def _signers(self, step: Step) -> str:
        good, _bad = check_signatures(step.entry.envelope, self.keys)
        if not good:
            sigs = step.entry.envelope.get("signatures") or []
            return "[red]unverified[/red]" if sigs else "[red]unsigned[/red]"
        return ", ".join(escape(self.names.get(k, k[:16])) + f" ({k[:8]})" for k in good)

    def _step_label(self, step: Step) -> str:
        run = step.run
        bits = [f"[cyan]{escape(step.command)}[/cyan]"]
        when = iso(run.ended or run.started) or "?"
        bits.append(when[:19].replace("T", " "))
        status = run.exit_status
        bits.append("exit 0" if status == 0 else f"[red]exit {status}[/red]")
        bits.append(f"signed by {self._signers(step)}")
        git = run.code.git
        if git and git.commit:
            bits.append(f"commit {git.commit[:10]}{' (dirty)' if git.dirty else ''}")
        elif run.code.script:
            bits.append(f"script sha256:{short(run.code.script.sha256)}")
        return " · ".join(bits)

    def add_step(self, node: Tree, step: Step) -> None:
        if step.digest in self.shown:
            node.add(f"[dim]made by {escape(step.command)} (see above)[/dim]")
            return
        self.shown[step.digest] = 1
        snode = node.add(self._step_label(step))
        for art in step.inputs:
            producer = step.producers.get(art.path)
            note = "" if producer else f" [dim]({origin_of(art, self.lineage)})[/dim]"
            child = snode.add(self._file_label(art.path, art.sha256, note))
            if producer:
                self.add_step(child, self.lineage.steps[producer])
        for d in step.run.downloads:
            size = f", {d.size} bytes" if d.size is not None else ""
            snode.add(f"[magenta]download[/magenta] {escape(d.url)} "
                      f"[dim]sha256:{short(d.sha256)}{size}[/dim]")

    def build(self) -> Tree:
        head = self.lineage.head
        root = Tree(self._file_label(self.lineage.path, head.output.sha256))
        self.add_step(root, head)
        return root


def lineage_tree(path: str | os.PathLike[str]) -> Tree:
    lineage = load_lineage(path)
    said = lineage.relocation_note()
    if said:
        note(said)
    return LineageTree(lineage, lineage.disk_digests()).build()


def show_command(path: str, console: Console) -> int:
    """What ``sharklib show`` does."""
    console.print(lineage_tree(path))
    return 0
