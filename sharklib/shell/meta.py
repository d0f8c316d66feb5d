"""The meta-commands: lines starting with ``:`` (never a program's name, so no clash).

``:history [--all]``, ``:diff N``, ``:undo``, ``:checkout N``, ``:graph [FILE]
[--html OUT]``, ``:export FILE TARGET…``, ``:help``, ``:exit``.
"""

from __future__ import annotations

import difflib
import os
import shlex
import time
from typing import TYPE_CHECKING

from sharklib.errors import SharkError, printable
from sharklib.shell.snapshots import Moved, describe
from sharklib.shell.store import UNKNOWN, Command, SessionStore

if TYPE_CHECKING:
    from sharklib.shell.session import Shell

HELP = """\
meta-commands (everything else is run by bash, recorded and, if it changed files, snapshotted):
  :history [--all]       the mutating commands: number, time, duration, what each changed
                         (--all adds the inspect ones); * marks the state on disk
  :diff N                what command N changed (text files as a unified diff)
  :undo                  put the workspace back to before the last mutation
  :checkout N            the workspace as it was after command N (0: before the first);
                         later work stays reachable with another :checkout
  :graph [FILE] [--html OUT]  what FILE (default: every final result) depends on, as a tree;
                         --html writes FILE's lineage page, as `sharklib graph --format html`
  :export FILE TARGET…   a Markdown pipeline of exactly the commands TARGET depends on
  :exit                  leave (Ctrl-D too); `sharklib shell` here resumes the session
jobs: CMD & runs CMD in the background ([N] PID); jobs, fg [%N], bg, wait, kill [-SIG] %N"""


def _p(shell: Shell, text: str = "") -> None:
    # names and commands come from the workspace: control characters are shown, not obeyed
    shell.out.write("\n".join(printable(line) for line in text.split("\n")) + "\n")
    shell.out.flush()


def dispatch(shell: Shell, text: str) -> bool:
    """Run one meta-command line; False to leave the shell."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise SharkError(f"cannot parse {text!r}: {exc}") from None
    name, args = words[0], words[1:]
    if name in (":exit", ":quit", ":q"):
        return False
    handler = _HANDLERS.get(name)
    if handler is None:
        raise SharkError(f"unknown meta-command {name} (:help lists them)")
    handler(shell, args)
    return True


def _number(shell: Shell, args: list[str], what: str, allow_zero: bool = False) -> Command | None:
    if len(args) != 1 or not args[0].lstrip("[").rstrip("]").isdigit():
        raise SharkError(f"{what} takes one command number (see :history)")
    n = int(args[0].strip("[]"))
    if n == 0 and allow_zero:
        return None
    cmd = shell.session.get(n)
    if cmd is None:
        raise SharkError(f"no command [{n}] in this session (see :history --all)")
    return cmd


def _short(sha: str | None) -> str:
    if sha is None:
        return "absent"
    if sha == UNKNOWN:
        return "unrecorded"
    return sha[:12]


def history(shell: Shell, args: list[str]) -> None:
    every = "--all" in args
    s = shell.session
    on_chain = {c.n for c in s.chain()}
    shown = [c for c in s.commands if every or c.kind == "mutate"]
    if not shown:
        _p(shell, "no mutating commands yet" + ("" if every else " (:history --all lists all)"))
        return
    for c in shown:
        when = time.strftime("%H:%M:%S", time.localtime(c.started))
        mark = "*" if c.n == s.head else " "
        tags = []
        if c.kind != "mutate":
            tags.append(c.kind)
        elif c.n not in on_chain:
            lost = [ch.path for ch in c.changes if ch.before == UNKNOWN]
            tags.append(f"partly undone ({len(lost)} file{'s' if len(lost) != 1 else ''} could "
                        f"not be restored: {', '.join(lost)})" if lost else "undone")
        if c.background:
            tags.append("background job")
        if c.reused:
            tags.append(f"reused, saved {c.saved:.1f} s")
        if c.exit_status:
            tags.append(f"exit {c.exit_status}")
        cwd = "" if c.cwd == "." else f"({c.cwd}) "
        tag = f"  [{'; '.join(tags)}]" if tags else ""
        num = f"[{c.n}]"
        _p(shell, f"{mark}{num:>5} {when} {c.duration:6.2f}s  {cwd}{c.line}{tag}")
        if c.kind == "mutate":
            parts = [describe(ch) for ch in c.changes]
            more = f" … (+{len(parts) - 8})" if len(parts) > 8 else ""
            _p(shell, "         " + "  ".join(parts[:8]) + more)


def _text(shell: Shell, sha: str | None) -> list[str] | None:
    if sha is None:
        return []
    if sha == UNKNOWN:
        return None
    try:
        with shell.snapshots.store.open(sha) as f:
            data = f.read(1 << 20 + 1)
    except (SharkError, OSError):
        return None
    if len(data) > 1 << 20 or b"\0" in data:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def diff(shell: Shell, args: list[str]) -> None:
    cmd = _number(shell, args, ":diff")
    assert cmd is not None
    _p(shell, f"[{cmd.n}] {cmd.line}")
    if cmd.kind != "mutate":
        _p(shell, f"  changed nothing in the workspace ({cmd.kind})")
        return
    for ch in cmd.changes:
        _p(shell, f"{describe(ch)}  {_short(ch.before)} -> {_short(ch.after)}  ")
        old, new = _text(shell, ch.before), _text(shell, ch.after)
        if ch.before == UNKNOWN:
            _p(shell, "  (its content before this session was never recorded)")
            continue
        if old is None or new is None:
            _p(shell, "  (binary or large: digests only)")
            continue
        lines = list(difflib.unified_diff(old, new, f"a/{ch.path}", f"b/{ch.path}", n=2))
        for line in lines[:200]:
            shell.out.write(line if line.endswith("\n") else line + "\n")
        if len(lines) > 200:
            _p(shell, f"  … {len(lines) - 200} more diff lines")
    shell.out.flush()


def _report(shell: Shell, moved: Moved, what: str) -> None:
    parts = []
    if moved.restored:
        parts.append(f"{len(moved.restored)} restored")
    if moved.removed:
        parts.append(f"{len(moved.removed)} removed")
    _p(shell, f"{what}: {', '.join(parts) if parts else 'no file to change'}")
    for rel, sha in moved.kept:
        _p(shell, f"  {rel} had been changed outside the shell; that content is kept in the "
               f"store as sha256:{sha[:12]}")
    if moved.refused:
        _p(shell, f"  refused {len(moved.refused)} recorded path"
                  f"{'s' if len(moved.refused) != 1 else ''} outside the workspace or inside "
                  "a version-control or sharklib directory (the session's records were "
                  "edited), left as they are: " + ", ".join(moved.refused))
    if moved.unknown:
        _p(shell, f"  {len(moved.unknown)} file{'s' if len(moved.unknown) != 1 else ''} could "
                  "not be restored (their earlier content was never recorded), left as they "
                  "are: " + ", ".join(moved.unknown))


def undo(shell: Shell, args: list[str]) -> None:
    s = shell.session
    head = s.get(s.head) if s.head else None
    if head is None:
        _p(shell, "nothing to undo")
        return
    moved = shell.snapshots.move(s, head.parent)
    _report(shell, moved, f"{'partly ' if moved.unknown else ''}undid [{head.n}] {head.line}")


def checkout(shell: Shell, args: list[str]) -> None:
    cmd = _number(shell, args, ":checkout", allow_zero=True)
    s = shell.session
    target = 0 if cmd is None else (cmd.n if cmd.kind == "mutate" else cmd.parent)
    moved = shell.snapshots.move(s, target)
    label = "before the first command" if cmd is None else f"after [{cmd.n}] {cmd.line}"
    _report(shell, moved, f"workspace as {label}")


def graph(shell: Shell, args: list[str]) -> None:
    from sharklib.shell.export import producers_of, session_targets

    html = None
    files = []
    it = iter(args)
    for a in it:
        if a in ("--html", "-o"):
            html = next(it, None)
            if html is None:
                raise SharkError(":graph --html takes an output file")
        else:
            files.append(a)
    s = shell.session
    if html is not None:
        from sharklib.views.graph import graph_command

        if not files:
            targets = session_targets(s)
            if not targets:
                raise SharkError("nothing recorded to draw yet")
            files = [targets[-1]]
        graph_command(_abs(shell, files[0]), "html", _abs(shell, html))
        _p(shell, f"wrote {html} (lineage of {files[0]})")
        return
    targets = [_rel(shell, f) for f in files] or session_targets(s)
    if not targets:
        _p(shell, "no results yet: nothing in the workspace was made by this session")
        return
    for t in targets:
        _tree_child(shell, s, t, producers_of(s, t), "", "", set())


def _tree_child(shell: Shell, s: SessionStore, path: str, producer: Command | None, head: str,
                indent: str, seen: set[int]) -> None:
    from sharklib.shell.export import producers_of

    if producer is None:
        _p(shell, f"{head}{path} (primary input)")
        return
    _p(shell, f"{head}{path} <- [{producer.n}] {producer.line}")
    if producer.n in seen:
        return
    seen.add(producer.n)
    ins = [p for p, _ in producer.inputs]
    for i, rel in enumerate(ins):
        last = i == len(ins) - 1
        child = producers_of(s, rel, before=producer)
        _tree_child(shell, s, rel, child, indent + ("└── " if last else "├── "),
                    indent + ("    " if last else "│   "), seen)


def _abs(shell: Shell, path: str) -> str:
    return os.path.normpath(os.path.join(shell.cwd, os.path.expanduser(path)))


def _rel(shell: Shell, path: str) -> str:
    return os.path.relpath(_abs(shell, path), shell.workspace)


def export(shell: Shell, args: list[str]) -> None:
    from sharklib.shell.export import export_session

    if len(args) < 2:
        raise SharkError(":export takes FILE TARGET… (the document to write, then the results)")
    out, targets = _abs(shell, args[0]), [_rel(shell, t) for t in args[1:]]
    steps = export_session(shell.session, targets, out)
    _p(shell, f"wrote {args[0]}: {steps} command{'s' if steps != 1 else ''} rebuilding "
              f"{', '.join(args[1:])}")
    if os.path.dirname(out) != shell.workspace:
        _p(shell, f"  its paths are relative to the workspace {shell.workspace}: run it from "
                  "there (move it into that folder)")


def help_(shell: Shell, args: list[str]) -> None:
    _p(shell, HELP)


_HANDLERS = {":history": history, ":diff": diff, ":undo": undo, ":checkout": checkout,
             ":graph": graph, ":export": export, ":help": help_}
