"""``sharklib graph``: the lineage DAG as DOT, Mermaid, JSON or one self-contained HTML page.

The graph is bipartite: file nodes (a path *at a digest*, so two versions of
one path are two nodes) and step nodes (one per run; a run that wrote several
files of the lineage is one node with several out-edges), plus download nodes.
Each node carries what the details panel shows: digest, command, time, signer
and verification state, and whether the file on disk still matches (stale).

The layout is a layered DAG computed here (longest-path layers, one barycenter
sweep to reduce crossings), so the page only draws: that keeps 10,000 nodes
fast in a browser. Every string taken from a manifest reaches the page only
as JSON data read with ``JSON.parse`` and shown with ``textContent`` or canvas
``fillText``, never as markup.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from sharklib.attest import check_signatures, trusted_keys
from sharklib.attest.lineage import Lineage, Step, disk_state, load_lineage
from sharklib.model.provenance import iso
from sharklib.views.text import display_path

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMATS = ("dot", "mermaid", "json", "html")


@dataclass(slots=True)
class Node:
    id: str
    kind: str  # file | step | download
    label: str
    state: str  # file: ok/stale/missing; step: verified/unverified/unsigned; download: remote
    details: dict[str, str] = field(default_factory=dict)
    x: float = 0.0
    y: float = 0.0


@dataclass(slots=True)
class Graph:
    target: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "nodes": [{"id": n.id, "kind": n.kind, "label": n.label, "state": n.state,
                       "details": n.details, "x": round(n.x, 1), "y": round(n.y, 1)}
                      for n in self.nodes],
            "edges": [[self.nodes[a].id, self.nodes[b].id] for a, b in self.edges],
        }


def _base(lineage: Lineage) -> str:
    return lineage.head.run.cwd or os.path.dirname(lineage.path)


def _step_state(steps: list[Step], keys: dict[str, Ed25519PublicKey],
                names: dict[str, str]) -> tuple[str, str]:
    signers: list[str] = []
    state = "verified"
    for s in steps:
        good, _ = check_signatures(s.entry.envelope, keys)
        if not good:
            state = "unsigned" if not s.entry.envelope.get("signatures") else "unverified"
        signers.extend(names.get(k, k[:16]) + f" ({k[:8]})" for k in good)
    return state, ", ".join(dict.fromkeys(signers)) or "none"


def build_graph(lineage: Lineage, on_disk: dict[str, str] | None = None,
                keys: dict[str, Ed25519PublicKey] | None = None) -> Graph:
    from sharklib.attest.keys import trusted_key_names

    on_disk = lineage.disk_digests() if on_disk is None else on_disk
    keys = trusted_keys() if keys is None else keys
    names = trusted_key_names()
    base = _base(lineage)
    graph = Graph(target=lineage.path)
    index: dict[str, int] = {}
    edges: set[tuple[int, int]] = set()

    def node(nid: str, make: Any) -> int:
        i = index.get(nid)
        if i is None:
            i = index[nid] = len(graph.nodes)
            graph.nodes.append(make())
        return i

    def file_node(path: str, sha: str, size: int | None) -> int:
        def make() -> Node:
            state = disk_state(path, sha, on_disk)
            return Node(f"file:{path}@{sha}", "file", display_path(path, base), state,
                        {"path": path, "sha256": sha, "size": str(size if size is not None else "?"),
                         "on disk": {"ok": "matches the record", "stale": "content differs now",
                                     "missing": "not on disk"}[state]})
        return node(f"file:{path}@{sha}", make)

    groups: dict[str, list[Step]] = {}
    for step in lineage.reachable():
        groups.setdefault(step.run_id, []).append(step)
    for run_id, steps in groups.items():
        first = steps[0]
        run = first.run

        def make_step(first: Step = first, steps: list[Step] = steps, run_id: str = run_id) -> Node:
            state, signers = _step_state(steps, keys, names)
            r = first.run
            git = r.code.git
            details = {"command": " ".join(r.argv), "cwd": r.cwd,
                       "started": iso(r.started) or "?", "finished": iso(r.ended) or "?",
                       "exit status": str(r.exit_status), "signed by": signers,
                       "verification": state, "run id": run_id,
                       "attestation": ", ".join(s.digest for s in steps),
                       "sidecar line": ", ".join(str(s.line) for s in steps)}
            if r.code.script:
                details["script"] = f"{r.code.script.path} sha256:{r.code.script.sha256}"
            if git and git.commit:
                details["git commit"] = git.commit + (" (dirty)" if git.dirty else "")
            return Node(f"step:{run_id}", "step", first.command, state, details)

        si = node(f"step:{run_id}", make_step)
        for step in steps:
            for o in step.outputs or [step.output]:
                edges.add((si, file_node(o.path, o.sha256, o.size)))
            for art in step.inputs:
                edges.add((file_node(art.path, art.sha256, art.size), si))
        for d in run.downloads:
            def make_dl(d: Any = d) -> Node:
                return Node(f"download:{d.url}@{d.sha256}", "download", d.url, "remote",
                            {"url": d.url, "sha256": str(d.sha256), "size": str(d.size),
                             "etag": str(d.etag), "last modified": str(d.last_modified)})
            edges.add((node(f"download:{d.url}@{d.sha256}", make_dl), si))
    graph.edges = sorted(edges)
    layout(graph)
    return graph


def layout(graph: Graph, dx: float = 260.0, dy: float = 56.0) -> None:
    """Layered layout: layer = longest path from a source; barycenter order inside a layer."""
    n = len(graph.nodes)
    succ: list[list[int]] = [[] for _ in range(n)]
    pred: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    for a, b in graph.edges:
        succ[a].append(b)
        pred[b].append(a)
        indeg[b] += 1
    layer = [0] * n
    queue = [i for i in range(n) if indeg[i] == 0]
    order: list[int] = []
    while queue:
        i = queue.pop()
        order.append(i)
        for j in succ[i]:
            layer[j] = max(layer[j], layer[i] + 1)
            indeg[j] -= 1
            if indeg[j] == 0:
                queue.append(j)
    for i in order:  # sources sit just before their first consumer, not all in column 0
        if not pred[i] and succ[i]:
            layer[i] = min(layer[j] for j in succ[i]) - 1
    layers: dict[int, list[int]] = {}
    for i in order:
        layers.setdefault(layer[i], []).append(i)
    pos = [0.0] * n
    for lv in sorted(layers):
        members = layers[lv]
        if lv > 0:
            members.sort(key=lambda i: (sum(pos[p] for p in pred[i]) / len(pred[i]))
                         if pred[i] else 0.0)
        half = (len(members) - 1) / 2
        for k, i in enumerate(members):
            pos[i] = k - half
    for i, nd in enumerate(graph.nodes):
        nd.x = layer[i] * dx
        nd.y = pos[i] * dy


def _dot_str(text: str) -> str:
    """A DOT quoted string: control characters as visible escapes (``\\x1b``, ``\\n``; a file
    name's ESC must not reach the terminal of whoever cats the .dot), then DOT's own quoting."""
    from sharklib.errors import printable

    return '"' + printable(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: Graph) -> str:
    colours = {"stale": "orange", "missing": "grey", "unverified": "red", "unsigned": "red"}
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for i, nd in enumerate(graph.nodes):
        shape = {"step": "box", "file": "note", "download": "cds"}[nd.kind]
        attrs = [f"label={_dot_str(nd.label)}", f"shape={shape}",
                 f"tooltip={_dot_str(nd.details.get('sha256') or nd.details.get('command', ''))}"]
        if nd.state in colours:
            attrs += ["style=filled", f"fillcolor={colours[nd.state]}"]
        lines.append(f"  n{i} [{', '.join(attrs)}];")
    lines.extend(f"  n{a} -> n{b};" for a, b in graph.edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_str(text: str) -> str:
    out = []
    for ch in text:
        if ch.isalnum() or ch in " ./_-:,=+@":
            out.append(ch)
        else:
            out.append(f"#{ord(ch)};")
    return '"' + "".join(out) + '"'


def to_mermaid(graph: Graph) -> str:
    lines = ["flowchart LR"]
    for i, nd in enumerate(graph.nodes):
        label = _mermaid_str(nd.label)
        shape = {"step": f"[{label}]", "file": f"[/{label}/]", "download": f"(({label}))"}[nd.kind]
        lines.append(f"  n{i}{shape}")
        if nd.state in ("stale", "missing", "unverified", "unsigned"):
            lines.append(f"  class n{i} {nd.state}")
    lines.extend(f"  n{a} --> n{b}" for a, b in graph.edges)
    lines += ["  classDef stale fill:#f9c46b", "  classDef missing fill:#ddd,stroke-dasharray:4",
              "  classDef unverified fill:#f88", "  classDef unsigned fill:#f88"]
    return "\n".join(lines) + "\n"


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no '<', '>', '&' or line separators survive raw."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _asset(name: str) -> str:
    return resources.files("sharklib.views").joinpath("assets").joinpath(name).read_text("utf-8")


def to_html(graph: Graph) -> str:
    """One self-contained page; placeholders are filled in one pass so no value is re-scanned."""
    import html
    import re

    values = {
        "TITLE": html.escape(f"lineage of {os.path.basename(graph.target)}", quote=True),
        "CSS": _asset("graph.css"),
        "JS": _asset("graph.js").replace("</", "<\\/"),
        "DATA": _script_json(graph.to_dict()),
    }
    return re.sub(r"\{\{(TITLE|CSS|JS|DATA)\}\}", lambda m: values[m.group(1)],
                  _asset("graph.html"))


def render(graph: Graph, fmt: str) -> str:
    if fmt == "dot":
        return to_dot(graph)
    if fmt == "mermaid":
        return to_mermaid(graph)
    if fmt == "json":
        return json.dumps(graph.to_dict(), indent=1, ensure_ascii=False) + "\n"
    if fmt == "html":
        return to_html(graph)
    raise ValueError(f"unknown graph format {fmt!r}")


def graph_command(path: str, fmt: str, out: str | None) -> str:
    """What ``sharklib graph`` does: render, write to ``out`` (atomically) or return the text."""
    from sharklib.views.output import write_output
    from sharklib.views.text import note

    lineage = load_lineage(path)
    said = lineage.relocation_note()
    if said:
        note(said)
    text = render(build_graph(lineage), fmt)
    if out:
        write_output(out, text.encode("utf-8"))
        return ""
    return text
