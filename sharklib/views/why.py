"""``sharklib why``: everything a file depends on, gathered from its lineage.

Where ``show`` walks the steps, ``why`` answers "what would I have to have to
rebuild this": the transitive data inputs (with the depth at which they enter),
the code (scripts and local modules with digests, git commits), the
environment (interpreters and the distributions the steps imported, with the
steps that used each version) and the downloads. ``--depth N`` stops at N
steps upstream (1 = what the file's own step read).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.tree import Tree

from sharklib.attest.lineage import Lineage, Step, disk_state, load_lineage
from sharklib.views.text import display_path, note
from sharklib.views.text import safe_markup as escape
from sharklib.views.tree import short

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(slots=True)
class Dependencies:
    file: str
    sha256: str
    inputs: list[dict[str, Any]] = field(default_factory=list)
    code: list[dict[str, Any]] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    downloads: list[dict[str, Any]] = field(default_factory=list)
    #: paths a step asked about without reading them (``os.path.exists``), what it saw, and
    #: ``changed``: the one line saying how they differ now (None while they answer the same)
    probes: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "steps": self.steps,
                "truncated": self.truncated, "inputs": self.inputs, "code": self.code,
                "environment": self.environment, "downloads": self.downloads,
                "probes": self.probes}


def dependencies(lineage: Lineage, depth: int | None = None,
                 on_disk: dict[str, str] | None = None) -> Dependencies:
    """Breadth-first over the steps from the head, at most ``depth`` steps deep."""
    head = lineage.head
    deps = Dependencies(file=lineage.path, sha256=head.output.sha256)
    on_disk = on_disk if on_disk is not None else lineage.disk_digests()
    seen_steps: set[str] = set()
    seen_inputs: set[tuple[str, str]] = set()
    seen_code: set[tuple[str, str]] = set()
    seen_dl: set[tuple[str, str | None]] = set()
    interpreters: dict[str, set[str]] = {}
    dists: dict[str, dict[str, list[str]]] = {}
    variables: dict[str, dict[str, list[str]]] = {}
    frontier: list[Step] = [head]
    level = 1
    while frontier:
        nxt: list[Step] = []
        for step in frontier:
            if step.digest in seen_steps:
                continue
            seen_steps.add(step.digest)
            run = step.run
            label = step.command
            for art in step.inputs:
                key = (art.path, art.sha256)
                producer = step.producers.get(art.path)
                if key not in seen_inputs:
                    seen_inputs.add(key)
                    deps.inputs.append({
                        "path": art.path, "sha256": art.sha256, "size": art.size, "depth": level,
                        "made_by": lineage.steps[producer].command if producer else None,
                        "primary": producer is None and not (
                            art.attestation and art.attestation not in lineage.steps),
                        "lineage_included": producer is not None or not art.attestation,
                        "state": disk_state(art.path, art.sha256, on_disk)})
                if producer:
                    if depth is None or level < depth:
                        nxt.append(lineage.steps[producer])
                    else:
                        deps.truncated = True
            code_arts = ([("script", run.code.script)] if run.code.script else []) + \
                [("module", m) for m in run.code.modules]
            for role, art in code_arts:
                if (art.path, art.sha256) in seen_code:
                    continue
                seen_code.add((art.path, art.sha256))
                git = run.code.git
                deps.code.append({"role": role, "path": art.path, "sha256": art.sha256,
                                  "git_commit": git.commit if git else None,
                                  "git_dirty": git.dirty if git else None,
                                  "git_branch": git.branch if git else None, "step": label,
                                  "state": "inline" if role == "script" and run.code.inline
                                  else disk_state(art.path, art.sha256, on_disk)})
            for path, saw in run.probes.items():
                from sharklib.runner.decide import kind_now, probe_reason

                deps.probes.append({"path": path, "saw": saw, "depth": level, "step": label,
                                    "changed": probe_reason(path, saw, kind_now(path),
                                                            run.cwd or None)})
            env = run.environment
            if env.python_version or env.interpreter:
                interpreters.setdefault(f"{env.interpreter} (Python {env.python_version})".strip(),
                                        set()).add(label)
            for name, version in env.distributions.items():
                dists.setdefault(name, {}).setdefault(version, []).append(label)
            for name, value in env.variables.items():
                variables.setdefault(name, {}).setdefault(value, []).append(label)
            for d in run.downloads:
                if (d.url, d.sha256) in seen_dl:
                    continue
                seen_dl.add((d.url, d.sha256))
                deps.downloads.append({"url": d.url, "sha256": d.sha256, "size": d.size,
                                       "etag": d.etag, "last_modified": d.last_modified,
                                       "saved_to": d.saved_to, "step": label})
        frontier = nxt
        level += 1
    deps.steps = len(seen_steps)
    deps.environment = {
        "interpreters": {k: sorted(v) for k, v in sorted(interpreters.items())},
        "distributions": {k: dists[k] for k in sorted(dists)},
        "variables": {k: variables[k] for k in sorted(variables)},
    }
    return deps


def why_tree(deps: Dependencies, base: str) -> Tree:
    root = Tree(f"[bold]{escape(display_path(deps.file, base))}[/bold] "
                f"[dim]sha256:{short(deps.sha256)}[/dim] depends on "
                f"{deps.steps} step{'s' if deps.steps != 1 else ''}"
                + (" [dim](cut at --depth)[/dim]" if deps.truncated else ""))
    marks = {"ok": "", "stale": " [yellow]STALE[/yellow]", "missing": " [dim]missing[/dim]",
             "inline": " [dim](python -c: the code is in the command line)[/dim]"}
    inp = root.add(f"[bold]inputs[/bold] ({len(deps.inputs)})")
    by_depth: dict[int, Tree] = {}
    for i in deps.inputs:
        level = by_depth.get(i["depth"])
        if level is None:
            level = by_depth[i["depth"]] = inp.add(
                "read directly" if i["depth"] == 1 else f"{i['depth']} steps upstream")
        origin = ("primary input" if i["primary"] else f"made by {escape(i['made_by'])}"
                  if i["made_by"] else "lineage not included")
        level.add(f"{escape(display_path(i['path'], base))} [dim]sha256:{short(i['sha256'])} · "
                  f"{origin}[/dim]{marks[i['state']]}")
    if deps.probes:
        asked = root.add(f"[bold]asked about, not read[/bold] ({len(deps.probes)})")
        for pr in deps.probes:
            state = f" [yellow]CHANGED[/yellow]: {escape(pr['changed'])}" if pr["changed"] else ""
            asked.add(f"{escape(display_path(pr['path'], base))} [dim]the run saw it "
                      f"{escape(pr['saw'])}[/dim]{state}")
    code = root.add(f"[bold]code[/bold] ({len(deps.code)})")
    for c in deps.code:
        git = ""
        if c["git_commit"]:
            git = f" · commit {c['git_commit'][:10]}{' (dirty)' if c['git_dirty'] else ''}"
        code.add(f"{escape(display_path(c['path'], base))} [dim]{c['role']} "
                 f"sha256:{short(c['sha256'])}{escape(git)}[/dim]{marks[c['state']]}")
    env = root.add("[bold]environment[/bold]")
    for interp in deps.environment["interpreters"]:
        env.add(escape(interp))
    dnode = env.add(f"distributions ({len(deps.environment['distributions'])})")
    for name, versions in deps.environment["distributions"].items():
        vs = ", ".join(versions)
        note = " [red](several versions)[/red]" if len(versions) > 1 else ""
        dnode.add(f"{escape(name)} {escape(vs)}{note}")
    if deps.environment["variables"]:
        vnode = env.add("variables")
        for name, values in deps.environment["variables"].items():
            vnode.add(f"{escape(name)}={escape(', '.join(values))}")
    dl = root.add(f"[bold]downloads[/bold] ({len(deps.downloads)})")
    for d in deps.downloads:
        dl.add(f"{escape(d['url'])} [dim]sha256:{short(d['sha256'])}[/dim]")
    return root


def why_command(path: str, depth: int | None, as_json: bool, console: Console) -> int:
    """What ``sharklib why`` does."""
    lineage = load_lineage(path)
    said = lineage.relocation_note()
    if said:
        note(said)
    deps = dependencies(lineage, depth)
    if as_json:
        console.file.write(json.dumps(deps.to_dict(), indent=2, sort_keys=True) + "\n")
    else:
        console.print(why_tree(deps, lineage.head.run.cwd or os.path.dirname(lineage.path)))
    return 0
