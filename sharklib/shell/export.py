"""``:export FILE TARGET…``: the literate Markdown pipeline of exactly what TARGET depends on.

Starting from the mutation that made TARGET's current content, each recorded
input of a command is traced back to the earlier mutation (on the same line
of work) that left it with the digest the command read; an input nobody in
the session made is a primary input. The document holds only those commands,
oldest first (which is a dependency order: a command can only read what was
made before it); inspect commands, dead ends, failed tries and undone work are
not in it, because nothing TARGET depends on came from them.

* primary inputs are pinned ``file:`` imports (the clean copy holds them);
  a command that only downloaded (the record names the URL and the bytes'
  digest, e.g. a Python ``requests``/``urllib`` download) becomes a pinned
  ``URL DEST sha256:HEX`` import instead of a command;
* the interpreter the commands ran Python with, and the distributions they
  imported, become a ``shark-build`` block that the run blocks use;
* each command is the line as typed (``cd DIR &&`` first when it ran in a
  sub-directory; a command typed over several lines is rebuilt exactly by
  ``eval "$(printf '%s\\n' LINE…)"``, since a block is read a line at a
  time). ``sharklib pipeline run`` links stages through the paths a line
  names; a line that reads or writes a file it does not name gets a leading
  ``: FILE…;`` (the shell's no-op) naming them, so the order holds on the very
  first run.
"""

from __future__ import annotations

import os
import re
import shlex
from typing import Any

import yaml

from sharklib.errors import SharkError
from sharklib.shell.store import UNKNOWN, Command, SessionStore

_SAFE = re.compile(r"^[A-Za-z0-9@%+=:,./_-]+$")
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


def _one_line(what: str, text: str) -> None:
    """Refuse a name or command that cannot sit on one line of the document.

    A pipeline's blocks are read a line at a time and its prose is Markdown: a file
    name holding a newline (any program can make one) would end a command early, or
    open a fence in the prose, and the document would run commands nobody typed.
    """
    if _CONTROL.search(text):
        from sharklib.errors import printable

        raise SharkError(f"cannot export: {what} {printable(text)} holds a control character "
                         "(a newline ends a line of a Markdown pipeline)")


def producers_of(s: SessionStore, path: str, before: Command | None = None,
                 sha256: str | None = None) -> Command | None:
    """The mutation that left ``path`` as ``before`` (default: the head) found it, if any."""
    chain = s.chain(before.parent if before is not None else None)
    for c in reversed(chain):
        for ch in c.changes:
            if ch.path == path:
                if ch.after is None or (sha256 is not None and ch.after != sha256):
                    return None
                return c
    return None


def session_targets(s: SessionStore) -> list[str]:
    """The files on disk that the current line of work made and nothing later read."""
    chain = s.chain()
    read = {p for c in chain for p, _ in c.inputs}
    out: dict[str, None] = {}
    for c in chain:
        for ch in c.changes:
            if ch.after is not None and s.state(ch.path) == ch.after and ch.path not in read:
                out.setdefault(ch.path)
    return list(out)


def _word(text: str) -> str:
    return text if _SAFE.match(text) else shlex.quote(text)


def _block(info: str, body: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body.rstrip()}\n{fence}\n"


def _is_download(c: Command) -> list[tuple[str, str, str]] | None:
    """``(url, dest, sha256)`` per change when every change of ``c`` is a recorded download."""
    got = []
    by_dest = {}
    for d in c.downloads:
        saved = d.get("saved_to")
        if saved and d.get("sha256"):
            by_dest[os.path.normpath(saved)] = d
    if not by_dest:
        return None
    for ch in c.changes:
        found: dict[str, Any] | None = None
        for saved, dl in by_dest.items():
            rel = saved if not os.path.isabs(saved) else None
            if (rel and os.path.normpath(os.path.join(c.cwd, rel)) == ch.path) or \
                    saved.endswith(os.sep + ch.path) or saved == ch.path:
                found = dl
        if found is None or ch.after is None or found["sha256"] != ch.after:
            return None
        got.append((found["url"], ch.path, ch.after))
    return got


def plan(s: SessionStore, targets: list[str]) -> tuple[list[Command], dict[str, str]]:
    """The commands TARGETs depend on (oldest first) and the primary inputs (path -> sha256)."""
    needed: dict[int, Command] = {}
    primary: dict[str, str] = {}
    todo: list[Command] = []
    for t in targets:
        state = s.state(t)
        producer = producers_of(s, t)
        if producer is None:
            if state in (None, UNKNOWN) and not s.known(t):
                raise SharkError(f"{t} was not made in this session (nothing to export)")
            raise SharkError(f"{t} is not on disk in the current state of the session "
                             "(undone or deleted; :history shows where it was made)")
        todo.append(producer)
    while todo:
        c = todo.pop()
        if c.n in needed:
            continue
        needed[c.n] = c
        for path, sha in c.inputs:
            p = producers_of(s, path, before=c, sha256=sha)
            if p is None:
                if path in primary and primary[path] != sha:
                    raise SharkError(f"{path} was read with two contents that no recorded "
                                     "command made (changed outside the shell?): cannot export")
                primary[path] = sha
            else:
                todo.append(p)
    return [needed[n] for n in sorted(needed)], primary


def _environment(cmds: list[Command]) -> tuple[str | None, dict[str, str]]:
    version = next((c.python for c in cmds if c.python), None)
    dists: dict[str, str] = {}
    for c in cmds:
        dists.update(c.distributions)
    if version:
        version = ".".join(version.split(".")[:2])
    return version, dists


def markdown(s: SessionStore, targets: list[str]) -> tuple[str, int]:
    """The document, and how many commands it holds."""
    cmds, primary = plan(s, targets)
    for t in targets:
        _one_line("target", t)
    for p in primary:
        _one_line("file name", p)
    for c in cmds:
        for ch in c.changes:
            _one_line("file name", ch.path)
        for p, _ in c.inputs:
            _one_line("file name", p)
        for d in c.downloads:
            for field in d.values():
                if isinstance(field, str):
                    _one_line("download", field)
        _one_line("directory", c.cwd)
        _one_line(f"command [{c.n}]", c.line.strip().replace("\n", " "))
        for name, value in c.env.items():
            _one_line("exported variable", f"{name}={value}")
    imports = [f"{_word('file:' + p)} {_word(p)} sha256:{sha}" for p, sha in sorted(primary.items())]
    runs: list[Command] = []
    for c in cmds:
        dl = _is_download(c)
        if dl is None:
            runs.append(c)
        else:
            imports.extend(f"{_word(url)} {_word(dest)} sha256:{sha}" for url, dest, sha in dl)
    version, dists = _environment(runs)
    env = "session" if version else "host"
    digests = {t: s.state(t) for t in targets}
    front = {
        "title": "Rebuild " + ", ".join(targets),
        "targets": {t: f"sha256:{d}" for t, d in digests.items()},
        "generated_by": "sharklib shell :export",
        "session": s.id,
    }
    out = ["---\n", yaml.safe_dump(front, sort_keys=False, allow_unicode=True), "---\n\n"]
    out.append(f"# Rebuild {', '.join(f'`{t}`' for t in targets)}\n\n")
    out.append(f"Written by `:export` from shell session `{s.id}`: the {len(runs)} command"
               f"{'s' if len(runs) != 1 else ''} that {'these files depend' if len(targets) > 1 else 'this file depends'} on, "
               "oldest first, as they were typed. Commands that only looked, dead ends and "
               "undone work are left out. Run it from this directory with "
               "`sharklib pipeline run`, or paste the commands into a shell.\n\n")
    out.append("## Inputs\n\n")
    if imports:
        out.append("Pinned by digest (`SOURCE DESTINATION sha256:HEX`; `file:` sources are the "
                   "primary inputs, which must be present beside this document).\n\n")
        out.append(_block("shark-import", "\n".join(imports)))
    else:
        out.append("No primary inputs were recorded.\n")
    out.append("\n")
    if version:
        out.append("## Environment\n\n")
        out.append(f"The commands ran Python {version}"
                   + (f" with {', '.join(f'{k} {v}' for k, v in sorted(dists.items()))}"
                      if dists else " using only its standard library") + ".\n\n")
        build = {"python": version, "requirements": [f"{k}=={v}" for k, v in sorted(dists.items())]}
        out.append(_block(f"shark-build:{env}", yaml.safe_dump(build, sort_keys=False)))
        out.append("\n")
    for k, c in enumerate(runs, 1):
        writes = [ch.path for ch in c.changes if ch.after is not None]
        deletes = [ch.path for ch in c.changes if ch.after is None]
        out.append(f"## Step {k}: command [{c.n}]\n\n")
        reads = [p for p, _ in c.inputs]
        prose = ["Reads " + ", ".join(f"`{r}`" for r in reads) + "." if reads
                 else "Reads no recorded data inputs."]
        if writes:
            prose.append("Writes " + ", ".join(f"`{w}`" for w in writes) + ".")
        if deletes:
            prose.append("Removes " + ", ".join(f"`{w}`" for w in deletes) + ".")
        prose.append(f"Took {c.duration:.2f} s in the session.")
        out.append(" ".join(prose) + "\n")
        for ch in c.changes:
            if ch.after is not None:
                out.append(f"Expected: `{ch.path}` sha256 `{ch.after}`.\n")
        out.append("\n")
        out.append(_block(f"shark-run:{env}", _line(c, reads, writes)))
        out.append("\n")
    return "".join(out), len(runs)


def _line(c: Command, reads: list[str], writes: list[str]) -> str:
    """The command as typed, in its directory, naming every file it reads or writes."""
    line = c.line.strip()
    multi = "\n" in line
    if multi:
        # a block is read a line at a time; joining the lines with "; " changes what they
        # mean (a newline inside quotes, `do`/`then` followed by a newline): the exact
        # script is rebuilt from one quoted word per line and run by the same shell
        line = "eval \"$(printf '%s\\n' " + " ".join(shlex.quote(part)
                                                     for part in line.split("\n")) + ')"'
    unnamed = []
    for p in [*reads, *writes]:
        rel = os.path.relpath(p, c.cwd) if c.cwd != "." else p
        if multi or (rel not in line and p not in line):
            unnamed.append(p)
    if c.env:
        # what the session exported: `N=5 python gen.py` runs as it ran at the prompt
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(c.env.items()))
        line = f"export {assigns}; {line}"
    if c.cwd != ".":
        line = f"cd {_word(c.cwd)} && {line}"
    if unnamed:
        line = ": " + " ".join(_word(p) for p in unnamed) + "; " + line
    return line


def export_session(s: SessionStore, targets: list[str], out: str) -> int:
    """Write the pipeline for ``targets`` to ``out``; how many commands it holds."""
    from sharklib.hashing.atomic import atomic_write

    text, n = markdown(s, targets)
    atomic_write(out, text.encode("utf-8"))
    return n
