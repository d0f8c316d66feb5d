"""``sharklib graph``: the lineage DAG as DOT, Mermaid, JSON or one self-contained HTML page.

The graph is bipartite: file nodes (a path *at a digest*, so two versions of
one path are two nodes) and step nodes (one per run; a run that wrote several
files of the lineage is one node with several out-edges), plus download nodes.
Each node carries what the details panel shows: digest, command, time, signer
and verification state, and whether the file on disk still matches (stale).

Map stages are folded (:func:`fold`): steps with one command shape (the same
program and arguments, only the file names varying), one code identity, one
verification state and the same downstream steps are drawn as one node
``cp raw/{…}.txt out/{…}.txt ×10,000`` that lists its members, and so are the
files they read and write. Ten thousand identical ``cp`` steps feeding one
combine step are five nodes, not 30,003: a fan-in drawn node by node is one
vertical line nobody can read, and its page was 17 MB.

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
from sharklib.attest.lineage import _SHELLS, Lineage, Step, disk_state, load_lineage, step_label
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
    #: a folded node's members, in lineage order (empty for an ordinary node)
    members: list[Node] = field(default_factory=list)
    #: a folded node's label as literal pieces around holes: member k's label is
    #: parts[0] + fills[k][0] + parts[1] + ... (a str fill stands for every hole)
    parts: list[str] = field(default_factory=list)
    fills: list[str | list[str]] = field(default_factory=list)


@dataclass(slots=True)
class Graph:
    target: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self, compact: bool = False) -> dict[str, Any]:
        """The graph as JSON data. A folded node lists its members whole (id, label, state,
        details); ``compact`` (the HTML page) gives only its label pieces and each member's
        fill, so 10,000 members cost ~10 bytes each instead of ~600."""
        def one(n: Node) -> dict[str, Any]:
            d: dict[str, Any] = {"id": n.id, "kind": n.kind, "label": n.label, "state": n.state,
                                 "details": n.details, "x": round(n.x, 1), "y": round(n.y, 1)}
            if n.members:
                d["count"] = len(n.members)
                if compact:
                    d["parts"] = n.parts
                    d["fills"] = n.fills
                else:
                    d["members"] = [{"id": m.id, "label": m.label, "state": m.state,
                                     "details": m.details} for m in n.members]
            return d

        return {
            "target": self.target,
            "nodes": [one(n) for n in self.nodes],
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


def _tokens(run: Any) -> list[str]:
    """The words of a step's label, each as it is displayed (quoted when it needs it): a
    pipeline stage's ``sh -c 'CMD'`` is CMD's words, anything else is its argv with the
    program's base name."""
    import shlex

    argv = list(run.argv)
    if len(argv) >= 3 and os.path.basename(argv[0]) in _SHELLS and argv[1] == "-c":
        try:
            argv = shlex.split(argv[2])
        except ValueError:
            return [argv[2]]
        if len(argv) >= 5 and argv[1:3] == ["-m", "sharklib.pipeline.fetch"]:
            return [step_label(run)]
    elif any(a.startswith("from multiprocessing.") for a in argv[1:4]) or (
            len(argv) >= 5 and argv[1:3] == ["-m", "sharklib.pipeline.fetch"]):
        return [step_label(run)]
    if argv:
        argv[0] = os.path.basename(argv[0])
    return [shlex.quote(a) for a in argv] or ["?"]


def _shape(steps: list[Step]) -> tuple[tuple[Any, ...], list[str]]:
    """What must be equal for steps to be one map stage: each word of the command, except
    that a word naming one of the step's own files counts only by its directory and
    extension; and the code (script, local modules, git commit) that ran."""
    import shlex

    run = steps[0].run
    cwd = run.cwd or ""
    files = {a.path for s in steps for a in s.inputs}
    files.update(o.path for s in steps for o in s.outputs or [s.output])
    words: list[Any] = []
    tokens = _tokens(run)
    for tok in tokens:
        raw = shlex.split(tok)[0] if tok.startswith("'") else tok
        if os.path.normpath(os.path.join(cwd, raw)) in files:
            head, tail = os.path.split(raw)
            words.append(("file", head, os.path.splitext(tail)[1]))
        else:
            words.append(tok)
    code = run.code
    git = code.git
    return (tuple(words),
            (code.script.path, code.script.sha256) if code.script else None,
            tuple(sorted((m.path, m.sha256) for m in code.modules)),
            (git.commit, git.dirty) if git else None), tokens


def build_graph(lineage: Lineage, on_disk: dict[str, str] | None = None,
                keys: dict[str, Ed25519PublicKey] | None = None, group: bool = True) -> Graph:
    """The lineage's graph, laid out; ``group`` folds map stages (see :func:`fold`).

    The cyclic garbage collector is off meanwhile: a 10,000-step lineage is millions of
    acyclic objects, and each full collection walking them cost more than the work itself."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_graph(lineage, on_disk, keys, group)
    finally:
        if enabled:
            gc.enable()


def _build_graph(lineage: Lineage, on_disk: dict[str, str] | None,
                 keys: dict[str, Ed25519PublicKey] | None, group: bool) -> Graph:
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

    shapes: dict[int, tuple[tuple[Any, ...], list[str]]] = {}
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
        if group:
            shapes[si] = _shape(steps)
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
    if group:
        graph = fold(graph, shapes)
    layout(graph)
    return graph


def _common_prefix(words: list[str]) -> str:
    """The characters every word starts with (character by character: a hole may sit inside a
    path component, ``part{…}.csv``)."""
    lo, hi = min(words), max(words)
    k = 0
    while k < len(lo) and lo[k] == hi[k]:
        k += 1
    return lo[:k]


def _template(labels: list[list[str]]) -> tuple[list[str], list[str | list[str]]]:
    """Label pieces around holes, and each member's fill: words equal in every member stay
    whole; a varying word keeps the prefix and suffix all members share, cut back to a
    separator (``raw/{…}.txt``, not ``raw/input1{…}.csv`` for input10..input19)."""
    parts = [""]
    holes: list[tuple[int, int, int]] = []  # (word, prefix length, suffix length)
    for w in range(len(labels[0])):
        words = [lab[w] for lab in labels]
        sep = " " if w else ""
        first = words[0]
        if all(x == first for x in words):
            parts[-1] += sep + first
            continue
        pre = _common_prefix(words)
        while pre and pre[-1].isalnum():
            pre = pre[:-1]
        suf = _common_prefix([x[len(pre):][::-1] for x in words])[::-1]
        while suf and suf[0].isalnum():
            suf = suf[1:]
        parts[-1] += sep + pre
        parts.append(suf)
        holes.append((w, len(pre), len(suf)))
    fills: list[str | list[str]] = []
    for lab in labels:
        mids = [lab[w][p:len(lab[w]) - q] for w, p, q in holes]
        fills.append(mids[0] if all(m == mids[0] for m in mids) else mids)
    return parts, fills


def fold(graph: Graph, shapes: dict[int, tuple[tuple[Any, ...], list[str]]]) -> Graph:
    """Fold map stages: one node for the steps that share a command shape, code and state
    and whose outputs feed the same (folded) steps, then one node for the files that share
    a directory, extension and state, the same producers and the same consumers, when one
    of those is a folded step. Steps are keyed from the sink backwards so that a chain of
    maps (raw -> clean -> count -> combine) folds stage by stage; files are keyed after."""
    n = len(graph.nodes)
    succ, pred, order = _topology(graph)
    nodes = graph.nodes
    ids: dict[Any, int] = {}  # keys nest (a step's key holds its consumers'): intern them as ints

    def intern(k: Any) -> int:
        return ids.setdefault(k, len(ids))

    key = [intern(("node", i)) for i in range(n)]
    for i in reversed(order):
        if i in shapes:
            after = frozenset(key[c] for f in succ[i] for c in succ[f])
            key[i] = intern(("step", shapes[i][0], nodes[i].state, after))
    size: dict[int, int] = {}
    for i in shapes:
        size[key[i]] = size.get(key[i], 0) + 1
    folded = [i in shapes and size[key[i]] > 1 for i in range(n)]
    for i in range(n):
        nd = nodes[i]
        if nd.kind != "file" or not any(folded[j] for j in (*pred[i], *succ[i])):
            continue
        head, tail = os.path.split(nd.details.get("path", ""))
        key[i] = intern(("file", head, os.path.splitext(tail)[1], nd.state,
                         frozenset(key[j] for j in pred[i]), frozenset(key[j] for j in succ[i])))
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(key[i], []).append(i)
    out = Graph(target=graph.target)
    where = [0] * n
    for idx in members.values():
        for i in idx:
            where[i] = len(out.nodes)
        if len(idx) == 1:
            out.nodes.append(nodes[idx[0]])
        else:
            idx.sort(key=lambda i: _natural(nodes[i].label))
            words = [shapes[i][1] for i in idx] if idx[0] in shapes else [[nodes[i].label] for i in idx]
            out.nodes.append(_group([nodes[i] for i in idx], words))
    out.edges = sorted({(where[a], where[b]) for a, b in graph.edges})
    return out


def _natural(text: str) -> list[Any]:
    """Sort key putting ``part2`` before ``part10``."""
    import re

    return [(0, int(w), "") if w.isdigit() else (1, 0, w) for w in re.split(r"(\d+)", text)]


def _group(members: list[Node], labels: list[list[str]]) -> Node:
    """One node standing for ``members`` (``labels``: each one's words): its label is their
    shared shape with a count, its details are the ones all members agree on."""
    first = members[0]
    parts, fills = _template(labels)
    details: dict[str, str] = {}
    for k, v in first.details.items():
        if all(m.details.get(k) == v for m in members):
            details[k] = v
    noun = "steps" if first.kind == "step" else "files"
    shape = "{…}".join(parts)
    details = {("command" if first.kind == "step" else "paths"): shape,
               noun: f"{len(members):,}", **details}
    return Node(f"group:{first.id}", first.kind, f"{shape} ×{len(members):,}", first.state,
                details, members=members, parts=parts, fills=fills)




def _topology(graph: Graph) -> tuple[list[list[int]], list[list[int]], list[int]]:
    """Successors and predecessors of every node, and the nodes in a topological order."""
    n = len(graph.nodes)
    succ: list[list[int]] = [[] for _ in range(n)]
    pred: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    for a, b in graph.edges:
        succ[a].append(b)
        pred[b].append(a)
        indeg[b] += 1
    order: list[int] = []
    queue = [i for i in range(n) if indeg[i] == 0]
    while queue:
        i = queue.pop()
        order.append(i)
        for j in succ[i]:
            indeg[j] -= 1
            if not indeg[j]:
                queue.append(j)
    return succ, pred, order

def layout(graph: Graph, dx: float = 260.0, dy: float = 56.0) -> None:
    """Layered layout: layer = longest path from a source; barycenter order inside a layer."""
    n = len(graph.nodes)
    succ, pred, order = _topology(graph)
    layer = [0] * n
    for i in order:  # topological: every predecessor's layer is final before its successors'
        for j in succ[i]:
            layer[j] = max(layer[j], layer[i] + 1)
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
        if nd.members:
            attrs.append("peripheries=2")
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
        if nd.members:
            lines.append(f"  class n{i} folded")
    lines.extend(f"  n{a} --> n{b}" for a, b in graph.edges)
    lines += ["  classDef stale fill:#f9c46b", "  classDef missing fill:#ddd,stroke-dasharray:4",
              "  classDef unverified fill:#f88", "  classDef unsigned fill:#f88",
              "  classDef folded stroke-width:3px"]
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
        "DATA": _script_json(graph.to_dict(compact=True)),
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
    """What ``sharklib graph`` does: render, write to ``out`` (atomically) or return the text.

    The cyclic garbage collector is off while the lineage loads, as in :func:`build_graph`."""
    import gc

    from sharklib.views.output import write_output
    from sharklib.views.text import note

    enabled = gc.isenabled()
    gc.disable()
    try:
        lineage = load_lineage(path)
        said = lineage.relocation_note()
        if said:
            note(said)
        text = render(build_graph(lineage), fmt)
    finally:
        if enabled:
            gc.enable()
    if out:
        write_output(out, text.encode("utf-8"))
        return ""
    return text
