"""``sharklib pipeline from FILE``: the literate Markdown pipeline that rebuilds a result.

The post-hoc pipeline description: from a final result's signed lineage,
write the document a person (or ``sharklib pipeline run``) can follow to
rebuild it — YAML front matter naming the target and its digest, a
``shark-import`` block pinning the primary inputs and downloads by sha256 (in
the pipeline's import syntax, ``SOURCE DESTINATION sha256:HEX``), then
one fenced ``shark-run:host`` block per recorded run, producers first, each
under a heading that names the step and says what it reads and writes.

Each command is the recorded argv, run in the recorded working directory
(relative to the project root: ``cd DIR && ...`` when it is not the root),
with absolute paths inside the project made relative so the document works in
another checkout; output captured from standard output is redirected again.
"""

from __future__ import annotations

import os
import re
import shlex

import yaml

from sharklib.attest.lineage import Lineage, Step, load_lineage
from sharklib.model.provenance import iso

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sharklib.model import Output

_PYTHON = re.compile(r"^python[0-9.]*$")


def project_root(lineage: Lineage) -> str:
    """The git root of the head's code when known, else the common directory of every step."""
    head = lineage.head.run
    git = head.code.git
    steps = lineage.reachable()
    cwds = [s.run.cwd for s in steps if s.run.cwd]
    if git and git.root and all(_inside(c, git.root) for c in cwds):
        return git.root
    return os.path.commonpath(cwds) if cwds else os.path.dirname(lineage.path)


def _inside(path: str, root: str) -> bool:
    rel = os.path.relpath(path, root)
    return not (rel == ".." or rel.startswith(".." + os.sep))


def _rel(path: str, start: str) -> str:
    return os.path.relpath(path, start)


def command_line(steps: list[Step], root: str) -> str:
    """The shell line for one run: recorded argv, portable paths, recorded cwd, stdout redirect."""
    first = steps[0]
    run = first.run
    argv = list(run.argv)
    if argv and _PYTHON.match(os.path.basename(argv[0])):
        argv[0] = "python"
    elif argv and run.backend == "python" and argv[0].endswith(".py"):
        argv.insert(0, "python")
    for i, arg in enumerate(argv[1:], 1):
        if os.path.isabs(arg) and _inside(arg, root):
            argv[i] = _rel(arg, run.cwd)
    line = shlex.join(argv)
    for o in _outputs(steps):
        if o.stream == "stdout":
            line += " > " + shlex.quote(_rel(o.path, run.cwd))
        elif o.stream == "stderr":
            line += " 2> " + shlex.quote(_rel(o.path, run.cwd))
    cwd = _rel(run.cwd, root)
    if cwd != ".":
        line = f"cd {shlex.quote(cwd)} && {line}"
    return line


def _token(text: str) -> str:
    """A word of an import line: quoted only when it would not stay one word."""
    return shlex.quote(text) if re.search(r"[\s'\"\\]", text) or not text else text


def _fence(body: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    return "`" * max(3, longest + 1)


def _block(info: str, body: str) -> str:
    fence = _fence(body)
    return f"{fence}{info}\n{body.rstrip()}\n{fence}\n"


def _outputs(steps: list[Step]) -> list[Output]:
    """Every output of one run's steps this lineage involves (an attestation may name several)."""
    return [o for s in steps for o in s.outputs or [s.output]]


def _runs(lineage: Lineage) -> list[list[Step]]:
    groups: dict[str, list[Step]] = {}
    for step in lineage.topological():
        groups.setdefault(step.run_id, []).append(step)
    return list(groups.values())


def pipeline_markdown(lineage: Lineage, root: str | None = None) -> str:
    root = os.path.abspath(root) if root else project_root(lineage)
    runs = _runs(lineage)
    head = lineage.head
    produced = {(o.path, o.sha256) for steps in runs for o in _outputs(steps)}
    imports: list[str] = []
    seen: set[tuple[str, str]] = set()
    for steps in runs:
        for s in steps:
            for a in s.inputs:
                key = (a.path, a.sha256)
                if key in produced or key in seen:
                    continue
                seen.add(key)
                rel = _rel(a.path, root) if _inside(a.path, root) else a.path
                imports.append(f"{_token('file:' + rel)} {_token(rel)} sha256:{a.sha256}")
            for d in s.run.downloads:
                key = (d.url, d.sha256 or "")
                if key in seen:
                    continue
                seen.add(key)
                dest = d.saved_to or os.path.basename(d.url.split("?")[0]) or "download"
                if os.path.isabs(dest) and _inside(dest, root):
                    dest = _rel(dest, root)
                pin = f" sha256:{d.sha256}" if d.sha256 else ""
                imports.append(f"{_token(d.url)} {_token(dest)}{pin}")
    target_rel = _rel(lineage.path, root) if _inside(lineage.path, root) else lineage.path
    front = {
        "title": f"Rebuild {target_rel}",
        "target": target_rel,
        "target_sha256": "sha256:" + head.output.sha256,
        "generated_by": "sharklib pipeline from",
        "lineage": {"sidecar": os.path.basename(lineage.sidecar),
                    "attestation": head.digest, "steps": len(runs)},
    }
    out = ["---\n", yaml.safe_dump(front, sort_keys=False, allow_unicode=True), "---\n\n"]
    out.append(f"# Rebuild `{target_rel}`\n\n")
    out.append(f"This pipeline was written from the signed lineage of `{target_rel}` "
               f"(sha256 `{head.output.sha256[:16]}…`). It lists the {len(runs)} recorded "
               f"step{'s' if len(runs) != 1 else ''} that the file depends on, in dependency "
               "order. Run each block from the project root, by hand or with "
               "`sharklib pipeline run`; the results should have the digests recorded here.\n\n")
    out.append("## Inputs\n\n")
    if imports:
        out.append("The primary inputs, pinned by digest (one `SOURCE DESTINATION sha256:HEX` "
                   "per line; `file:` sources are relative to this document, which belongs in "
                   "the project root): check them before you start.\n\n")
        out.append(_block("shark-import", "\n".join(imports)))
    else:
        out.append("No primary inputs were recorded.\n")
    out.append("\n")
    for n, steps in enumerate(runs, 1):
        first = steps[0]
        run = first.run
        script = run.code.script
        if run.code.inline:
            name = "python -c"
        elif script:
            name = os.path.basename(script.path)
        else:
            name = os.path.basename(run.argv[0] if run.argv else "?")
        writes = ", ".join(f"`{_rel(o.path, root)}`" for o in _outputs(steps))
        out.append(f"## Step {n}: `{name}` writes {writes}\n\n")
        reads = list(dict.fromkeys(_rel(a.path, root) for s in steps for a in s.inputs))
        prose = []
        prose.append(("Reads " + ", ".join(f"`{r}`" for r in reads) + ".") if reads
                     else "Reads no recorded data inputs.")
        when = iso(run.ended or run.started)
        detail = f"Recorded {when[:19].replace('T', ' ')} UTC" if when else "Recorded"
        detail += f", exit status {run.exit_status}"
        if run.code.git and run.code.git.commit:
            detail += f", code at commit `{run.code.git.commit[:12]}`"
            if run.code.git.dirty:
                detail += " (with uncommitted changes)"
        if script:
            what = "code" if run.code.inline else "script"
            detail += f", {what} sha256 `{script.sha256[:16]}…`"
        prose.append(detail + ".")
        for o in _outputs(steps):
            prose.append(f"Expected: `{_rel(o.path, root)}` sha256 `{o.sha256}`.")
        out.append(" ".join(prose[:2]) + "\n" + "\n".join(prose[2:]) + "\n\n")
        out.append(_block("shark-run:host", command_line(steps, root)))
        out.append("\n")
    return "".join(out)


def pipeline_from(path: str | os.PathLike[str], out: str | None = None,
                  root: str | None = None) -> str:
    """What ``sharklib pipeline from`` does: the Markdown, also written to ``out`` if given."""
    from sharklib.views.output import write_output

    text = pipeline_markdown(load_lineage(path), root)
    if out:
        write_output(out, text.encode("utf-8"))
    return text
