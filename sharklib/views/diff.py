"""``sharklib diff A B``: the first points where two lineages part ways.

Both lineages are walked from their heads in step. Two steps are compared on
what the run key and the inputs are made of — arguments (paths made relative
to the step's directory, so two checkouts compare equal), script and module
digests, git commit, interpreter, distribution versions, allow-listed
environment variables, downloads — and their inputs are matched by name. An
input whose digest differs is followed upstream when both sides know the step
that made it; only when nothing upstream explains the difference is the input
itself reported. So the report names root causes (a changed raw file, a new
package version), each with the chain of files through which it reached the
result, not every downstream file that merely changed as a consequence.

When nothing that reaches the result differs, the walk is made once more
through inputs of equal content as well: two runs that gave the same file
with another numpy, other arguments or another commit are told so ("did not
change the result"), rather than reported as having no difference at all.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sharklib.attest.lineage import Lineage, Step, load_lineage
from sharklib.views.text import display_path
from sharklib.views.text import safe_markup as escape
from sharklib.views.tree import short

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(slots=True)
class Divergence:
    kind: str
    what: str
    a: str | None
    b: str | None
    step_a: str
    step_b: str
    via: list[str] = field(default_factory=list)
    #: False for a difference upstream of files that came out the same on both sides
    changes_result: bool = True


@dataclass(slots=True)
class LineageDiff:
    a: str
    b: str
    a_sha256: str
    b_sha256: str
    points: list[Divergence] = field(default_factory=list)

    @property
    def same_content(self) -> bool:
        return self.a_sha256 == self.b_sha256

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "a_sha256": self.a_sha256, "b_sha256": self.b_sha256,
                "same_content": self.same_content, "points": [asdict(p) for p in self.points]}


def _rel(path: str, cwd: str) -> str:
    return display_path(path, cwd) if os.path.isabs(path) else path


def _norm_argv(step: Step) -> list[str]:
    argv = step.run.argv
    out = [os.path.basename(argv[0])] if argv else []
    out.extend(_rel(a, step.run.cwd) for a in argv[1:])
    return out


def _mapping_diff(kind: str, a: dict[str, str], b: dict[str, str], sa: Step, sb: Step,
                  via: list[str]) -> list[Divergence]:
    pts = []
    for name in sorted(set(a) | set(b)):
        if a.get(name) != b.get(name):
            pts.append(Divergence(kind, name, a.get(name), b.get(name), sa.command, sb.command,
                                  list(via)))
    return pts


class _Walker:
    def __init__(self, la: Lineage, lb: Lineage, through_equal: bool = False) -> None:
        self.la, self.lb = la, lb
        self.points: list[Divergence] = []
        self.visited: dict[tuple[str, str], bool] = {}
        #: also follow inputs of equal content (their differences did not change the result)
        self.through_equal = through_equal

    def local(self, sa: Step, sb: Step, via: list[str]) -> list[Divergence]:
        """Differences in what the two steps *are*, not in what they read."""
        pts: list[Divergence] = []
        ra, rb = sa.run, sb.run
        aa, ab = _norm_argv(sa), _norm_argv(sb)
        if aa != ab:
            if len(aa) == len(ab):
                for i, (x, y) in enumerate(zip(aa, ab, strict=True)):
                    if x != y:
                        pts.append(Divergence("argument", f"argument {i}", x, y, sa.command,
                                              sb.command, list(via)))
            else:
                pts.append(Divergence("arguments", "command line", " ".join(aa), " ".join(ab),
                                      sa.command, sb.command, list(via)))
        ca, cb = ra.code, rb.code
        if ca.script and cb.script and ca.script.sha256 != cb.script.sha256:
            pts.append(Divergence("code", f"script {_rel(ca.script.path, ra.cwd)}",
                                  "sha256:" + short(ca.script.sha256),
                                  "sha256:" + short(cb.script.sha256), sa.command, sb.command,
                                  list(via)))
        ma = {_rel(m.path, ra.cwd): "sha256:" + short(m.sha256) for m in ca.modules}
        mb = {_rel(m.path, rb.cwd): "sha256:" + short(m.sha256) for m in cb.modules}
        pts += _mapping_diff("module", ma, mb, sa, sb, via)
        ga = ca.git.commit if ca.git else None
        gb = cb.git.commit if cb.git else None
        if ga != gb:
            pts.append(Divergence("commit", "git commit", ga, gb, sa.command, sb.command,
                                  list(via)))
        ea, eb = ra.environment, rb.environment
        if ea.python_version != eb.python_version:
            pts.append(Divergence("interpreter", "Python version", ea.python_version,
                                  eb.python_version, sa.command, sb.command, list(via)))
        pts += _mapping_diff("package", ea.distributions, eb.distributions, sa, sb, via)
        pts += _mapping_diff("variable", ea.variables, eb.variables, sa, sb, via)
        da = {d.url: d.sha256 or "?" for d in ra.downloads}
        db = {d.url: d.sha256 or "?" for d in rb.downloads}
        pts += _mapping_diff("download", da, db, sa, sb, via)
        return pts

    def walk(self, sa: Step, sb: Step, via: list[str]) -> bool:
        """Record divergences reachable from this pair; True if any was found."""
        if sa.digest == sb.digest:
            return False
        pair = (sa.digest, sb.digest)
        if pair in self.visited:
            return self.visited[pair]
        self.visited[pair] = False
        found = False
        ia = {_rel(a.path, sa.run.cwd): a for a in sa.inputs}
        ib = {_rel(b.path, sb.run.cwd): b for b in sb.inputs}
        if set(ia) != set(ib):
            base_b = {os.path.basename(k): k for k in ib}
            for name in sorted(set(ia) - set(ib)):
                alt = base_b.get(os.path.basename(name))
                if alt is not None and alt not in ia:
                    ib[name] = ib.pop(alt)
        for name in sorted(set(ia) | set(ib)):
            a, b = ia.get(name), ib.get(name)
            if a is None or b is None:
                self.points.append(Divergence(
                    "input", name, None if a is None else "sha256:" + short(a.sha256),
                    None if b is None else "sha256:" + short(b.sha256), sa.command, sb.command,
                    list(via)))
                found = True
                continue
            pa, pb = sa.producers.get(a.path), sb.producers.get(b.path)
            if a.sha256 == b.sha256:
                if self.through_equal and pa and pb and self.walk(
                        self.la.steps[pa], self.lb.steps[pb], [name, *via]):
                    found = True
                continue
            if pa and pb and self.walk(self.la.steps[pa], self.lb.steps[pb], [name, *via]):
                found = True
                continue
            kind = "input" if (pa and pb) else "primary input"
            self.points.append(Divergence(kind, name, "sha256:" + short(a.sha256),
                                          "sha256:" + short(b.sha256), sa.command, sb.command,
                                          list(via)))
            found = True
        local = self.local(sa, sb, via)
        self.points.extend(local)
        self.visited[pair] = found or bool(local)
        return self.visited[pair]


def diff_lineages(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> LineageDiff:
    la, lb = load_lineage(a), load_lineage(b)
    result = LineageDiff(a=la.path, b=lb.path, a_sha256=la.head.output.sha256,
                         b_sha256=lb.head.output.sha256)
    walker = _Walker(la, lb)
    walker.walk(la.head, lb.head, [])
    if not walker.points:
        walker = _Walker(la, lb, through_equal=True)
        walker.walk(la.head, lb.head, [])
        for p in walker.points:
            p.changes_result = False
    result.points = walker.points
    return result


#: how a side that has no value reads, by kind of divergence (never Python's ``None``)
_ABSENT = {"input": "not read", "primary input": "not read", "module": "not imported",
           "package": "not imported", "variable": "unset", "download": "not downloaded",
           "commit": "not in a git repository"}


def _side(kind: str, value: str | None) -> str:
    return f"({_ABSENT.get(kind, 'none')})" if value is None else value


def render_diff(d: LineageDiff, console: Console) -> None:
    same = "same content" if d.same_content else "different content"
    console.print(f"A: {escape(d.a)} [dim]sha256:{short(d.a_sha256)}[/dim]")
    console.print(f"B: {escape(d.b)} [dim]sha256:{short(d.b_sha256)}[/dim]  ({same})")
    if not d.points:
        console.print("[green]no difference in the recorded lineage[/green]"
                      + ("" if d.same_content else
                         " — the steps are recorded identically, so the difference comes from "
                         "something not recorded (nondeterminism, an unrecorded input)"))
        return
    n = len(d.points)
    plural = "s" if n != 1 else ""
    if any(p.changes_result for p in d.points):
        console.print(f"the lineages diverge at {n} point{plural}:")
    else:
        console.print(f"the lineages differ at {n} point{plural}, none of which changed the result:")
    for i, p in enumerate(d.points, 1):
        step = p.step_a if p.step_a == p.step_b else f"{p.step_a} | {p.step_b}"
        console.print(f" {i}. [bold]{escape(p.kind)}[/bold] {escape(p.what)}: "
                      f"[red]{escape(_side(p.kind, p.a))}[/red] → "
                      f"[green]{escape(_side(p.kind, p.b))}[/green] "
                      f"[dim]in[/dim] [cyan]{escape(step)}[/cyan]")
        if p.via:
            how = "reaches the result" if p.changes_result else "upstream of the result,"
            console.print(f"    [dim]{how} through {escape(' → '.join(p.via))}[/dim]")


def diff_command(a: str, b: str, as_json: bool, console: Console) -> int:
    """What ``sharklib diff`` does; exit 0 when the lineages agree, 1 when they differ."""
    d = diff_lineages(a, b)
    if as_json:
        console.file.write(json.dumps(d.to_dict(), indent=2) + "\n")
    else:
        render_diff(d, console)
    return 0 if not d.points and d.same_content else 1
