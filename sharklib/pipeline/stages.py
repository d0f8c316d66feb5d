"""From blocks to stages: one stage per command line, per map input, per import.

A stage knows what its command reads and writes *as far as its text says*:
redirections (``>``, ``>>``, ``<``), ``-o``/``--output`` arguments, declared
map outputs (tokens holding ``%{stem}``/``%{basename}``) are explicit; every other
path-like token is a *mention* that :mod:`sharklib.pipeline.dag` resolves
against the whole document, the disk and what earlier runs observed.

Map stages: a path whose last component contains ``*`` (``data/raw/*``,
``data/raw/*.csv``) makes the command run once per matching file. The files
are those on disk plus those earlier stages declare, so a map can consume the
outputs of an earlier map on the very first run. In each copy ``%{in}`` is the
matched path, ``%{basename}`` its file name and ``%{stem}`` the name without its
last suffix.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sharklib.attest.naming import is_sidecar
from sharklib.errors import PipelineError
from sharklib.model.runkey import sha256_constructor
from sharklib.pipeline.bulk import paused_gc
from sharklib.pipeline.document import Block, Document
from sharklib.pipeline.templates import (
    MAP_PLACEHOLDERS,
    PLACEHOLDER,
    combinations,
    expand,
    referenced,
    variable_table,
)

StageKind = Literal["run", "import"]

_WRITE_OPS = frozenset({">", ">>", ">|", "&>", "&>>"})
_READ_OPS = frozenset({"<"})
_FD_OPS = frozenset({">&", "<&", "<<", "<<<", "<<-"})
_OUTPUT_FLAGS = frozenset({"-o", "--output", "--out", "--outfile", "--output-file"})
_BARE_NAME = re.compile(r"^[A-Za-z0-9_][\w.+@-]*$")
_FILE_NAME = re.compile(r"^[\w.+@,-]*\.[A-Za-z][A-Za-z0-9_]{0,9}$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SAFE_ITEM = re.compile(r"^[\w@%+=:,./-]+$")
_SHA256 = re.compile(r"^sha256:([0-9a-f]{64})$")
_NESTED = re.compile(r"%\{[^{}]*%\{")


@dataclass(slots=True, eq=False)
class Stage:
    """One command the pipeline may run: a leaf job for an executor."""

    index: int
    kind: StageKind
    command: str
    display: str
    line: int
    env: str
    item: str | None = None
    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    mentions: list[str] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)
    dirs: set[str] = field(default_factory=set)
    bare: list[str] = field(default_factory=list)
    deps: set[int] = field(default_factory=set)
    source: str | None = None
    dest: str | None = None
    pin: str | None = None

    @property
    def signature(self) -> str:
        """Stable identity of this stage across runs (environment name + command)."""
        data = f"{self.env}\0{self.command}".encode("utf-8", "surrogateescape")
        return sha256_constructor()(data).hexdigest()[:24]

    @property
    def label(self) -> str:
        return f"line {self.line}" + (f" [{self.item}]" if self.item else "")


@dataclass(slots=True)
class Publish:
    """A ``shark-publish`` line: copy ``source`` (and its sidecar) to ``dest`` at the end."""

    source: str
    dest: str
    line: int


@dataclass(slots=True)
class _Token:
    text: str
    role: Literal["read", "write", "mention", "bare"]


#: Longest command (after joining ``\\`` continuations). The kernel refuses a longer single
#: argument (MAX_ARG_STRLEN, 128 KiB) so no shell could run it, and shlex's tokeniser is
#: quadratic in the length of one word: a 500 KB line took 30 s to plan.
MAX_COMMAND = 32 * 1024
PATH_MAX = 4096
#: Stages the front matter's combinations may make of the templated lines, before any map.
MAX_TEMPLATE_STAGES = 100_000


def _check_length(size: int, path: Path, line: int) -> None:
    if size > MAX_COMMAND:
        raise PipelineError(f"command is {size} characters long, above the limit of "
                            f"{MAX_COMMAND}: move it into a script", path, line)


def command_lines(block: Block, path: Path) -> Iterator[tuple[int, str]]:
    """The commands of a ``shark-run`` block, ``\\`` continuations joined, comments dropped."""
    parts: list[str] = []
    start = 0
    size = 0
    for ln, text in block.lines:
        _check_length(len(text), path, ln)
        s = text.rstrip()
        if not parts and (not s.strip() or s.lstrip().startswith("#")):
            continue
        if not parts:
            start = ln
        size += len(s) + 1
        _check_length(size - 1, path, start)
        if s.endswith("\\") and not s.endswith("\\\\"):
            parts.append(s[:-1].strip())
            continue
        parts.append(s.strip())
        yield start, " ".join(p for p in parts if p)
        parts = []
        size = 0
    if parts:
        raise PipelineError("line continuation '\\' runs past the end of the block", path, start)


def _lex(command: str, path: Path, line: int) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError as exc:
        raise PipelineError(f"malformed command ({exc}): {command}", path, line) from None


#: a word holding any of these is a quoted script (``sh -c 'cat a/*.txt | sort'``), not a path
_NOT_IN_PATHS = re.compile(r"[\s|;&<>()'\"]")


def _pathlike(tok: str) -> bool:
    # longer than PATH_MAX cannot name a file, and following its ten thousand parents to the
    # root took minutes and gigabytes (a 200 KB 'd/d/d/...' word)
    if not tok or len(tok) > PATH_MAX or "://" in tok or "$" in tok or "`" in tok or _ASSIGNMENT.match(tok) \
            or _NOT_IN_PATHS.search(tok):
        return False
    if "%{" in tok or "/" in tok:
        return tok not in ("/", "//")
    return bool(_FILE_NAME.match(tok))


def classify(command: str, path: Path, line: int) -> list[_Token]:
    """Path-like tokens of a command with what its text says about them."""
    toks = _lex(command, path, line)
    out: list[_Token] = []
    pending: Literal["read", "write", "skip"] | None = None
    for tok in toks:
        if pending is not None:
            if pending != "skip":
                out.append(_Token(tok, pending))
            pending = None
            continue
        if tok in _WRITE_OPS:
            pending = "write"
        elif tok in _READ_OPS:
            pending = "read"
        elif tok in _FD_OPS:
            pending = "skip"
        elif tok in _OUTPUT_FLAGS:
            pending = "write"
        elif tok.startswith("-"):
            flag, eq, value = tok.partition("=")
            if eq and _pathlike(value):
                out.append(_Token(value, "write" if flag in _OUTPUT_FLAGS else "mention"))
        elif _pathlike(tok):
            out.append(_Token(tok, "mention"))
        elif _BARE_NAME.match(tok):
            # a plain word ("up", "results") may name a directory the command gathers;
            # the DAG decides once it knows which directories stages write into
            out.append(_Token(tok, "bare"))
    return out


def _fill(text: str, item: str, name: str, stem: str) -> str:
    """The map placeholders of ``text`` filled in, as one ``PLACEHOLDER.sub`` pass would.

    After :func:`~sharklib.pipeline.templates.expand` only map placeholders are
    left, so three plain replaces do it — unless a filled value could complete a
    new placeholder: one holding ``%`` (``a%`` before ``{stem}``), or one standing
    after an unclosed ``%{`` (``%{x%{stem}}``). Those take the regex.
    """
    if "%{" not in text:
        return text
    if "%" in item or (text.count("%{") > 1 and _NESTED.search(text)):
        values = {"in": item, "basename": name, "stem": stem}
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
    return text.replace("%{in}", item).replace("%{basename}", name).replace("%{stem}", stem)


def _abs(docdir: str, p: str) -> str:
    full = p if p.startswith("/") else f"{docdir}/{p}"
    # normpath only when the path could change under it (it is the hot spot for large maps)
    if "//" in full or "/." in full or full.endswith("/"):
        return os.path.normpath(full)
    return full


class StageBuilder:
    """Turns a document into stages, in document order."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.docdir = str(doc.directory)
        self.stages: list[Stage] = []
        self.publishes: list[Publish] = []
        self.envs_used: dict[str, int] = {}
        self._seen: dict[tuple[str, str, str], Stage] = {}
        self._declared: dict[str, set[str]] = {}
        self.table = variable_table(doc.variables, doc.path, doc.front_matter_line or 1)
        texts = [t for b in doc.blocks for _, t in b.lines]
        self.combos = combinations(self.table, referenced(texts), doc.path,
                                   doc.front_matter_line or 1)
        templated = sum(1 for t in texts if "%{" in t)
        if templated * len(self.combos) > MAX_TEMPLATE_STAGES:
            raise PipelineError(f"{templated} templated line(s) × {len(self.combos)} "
                                f"combinations would make more than {MAX_TEMPLATE_STAGES} "
                                "stages; split the document or the lists", doc.path,
                                doc.front_matter_line or 1)

    def build(self) -> list[Stage]:
        for block in self.doc.blocks:
            if block.kind == "run":
                self._run_block(block)
            elif block.kind == "import":
                self._import_block(block)
            elif block.kind == "publish":
                self._publish_block(block)
        return self.stages

    # -- run blocks -------------------------------------------------------------------------
    def _run_block(self, block: Block) -> None:
        env = block.env or "host"
        for line, raw in command_lines(block, self.doc.path):
            for values in self.combos:
                cmd = expand(raw, values, self.table, self.doc.path, line)
                self.envs_used.setdefault(env, line)
                self._command(cmd, env, line)

    def _command(self, cmd: str, env: str, line: int) -> None:
        tokens = classify(cmd, self.doc.path, line)
        wild = [t for t in tokens if "*" in os.path.basename(t.text) and "%{" not in t.text]
        has_ph = "%{" in cmd and any(m.group(1) in MAP_PLACEHOLDERS for m in PLACEHOLDER.finditer(cmd))
        if not wild:
            if has_ph:
                raise PipelineError("%{in}/%{basename}/%{stem} only work in a map (a command with a "
                                    "path whose last part contains '*')", self.doc.path, line)
            stage = self._add("run", cmd, cmd, line, env)
            if stage is not None:
                self._apply(stage, tokens)
            return
        if len({t.text for t in wild}) > 1:
            raise PipelineError("a command may map over one wildcard path only", self.doc.path, line)
        pattern = wild[0].text
        const = [t for t in tokens if t.text != pattern and "%{" not in t.text]
        varying = [t for t in tokens if "%{" in t.text]
        # a gather writing where it reads (cat parts/*.txt > parts/all.txt) must not read its
        # own output, which is on disk from its last run
        own = {_abs(self.docdir, t.text) for t in const if t.role == "write"}
        items = self._match(pattern, line, own)
        # what every copy shares is worked out once; per copy only the substitutions remain
        probe = Stage(index=-1, kind="run", command="", display="", line=line, env=env)
        self._apply(probe, const, shared=True)
        const_writes, const_reads = probe.writes, probe.reads
        if not has_ph and const_writes:
            self._gather(cmd, pattern, items, tokens, env, line)
            return
        const_shared, const_bare, const_mentions = probe.shared, probe.bare, probe.mentions
        vary = [(t.text, t.role == "read" or t.text == "%{in}") for t in varying]
        docdir, add, declare = self.docdir, self._add, self._declare
        for item in items:
            name = item.rpartition("/")[2]
            stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
            concrete = cmd.replace(pattern, item)
            if has_ph:
                concrete = _fill(concrete, item, name, stem)
            stage = add("run", concrete, cmd, line, env, item=item)
            if stage is None:
                continue
            if const_writes:
                stage.writes.update(const_writes)
            if const_reads:
                stage.reads.update(const_reads)
            if const_shared:
                stage.shared.extend(const_shared)
            if const_bare:
                stage.bare.extend(const_bare)
            if const_mentions:
                stage.mentions.extend(const_mentions)
            stage.reads.add(_abs(docdir, item))
            for text, is_read in vary:
                p = _abs(docdir, _fill(text, item, name, stem))
                if is_read:
                    stage.reads.add(p)
                else:
                    stage.writes.add(p)
                    declare(p)

    def _gather(self, cmd: str, pattern: str, items: list[str], tokens: list[_Token], env: str,
                line: int) -> None:
        """``cat work/*.sum > all.txt``: one stage over every match, as a shell would run it.

        Copies of a map would all write the same path, so the command is a gather (a
        reduce) instead: one stage that reads every match and waits for the stages
        writing them. It runs with the matches spelled out, not the pattern: a shell's
        ``*`` would also pick up the sidecars sharklib writes beside each file.
        """
        stage = self._add("run", cmd.replace(pattern, " ".join(items)), cmd, line, env)
        if stage is None:
            return
        self._apply(stage, tokens)
        stage.reads.update(_abs(self.docdir, item) for item in items)

    def _match(self, pattern: str, line: int, exclude: Collection[str] = ()) -> list[str]:
        directory, base = os.path.split(pattern)
        if any(c in directory for c in "*?["):
            raise PipelineError(f"wildcard only allowed in the last part of a path: {pattern}",
                                self.doc.path, line)
        absdir = _abs(self.docdir, directory or ".")
        names: set[str] = set()
        try:
            with os.scandir(absdir) as entries:
                names = {e.name for e in entries if e.is_file()}
        except OSError:
            pass
        names.update(self._declared.get(absdir, ()))
        names = {n for n in names if not n.startswith(".") and not is_sidecar(n)
                 and not (exclude and f"{absdir}/{n}" in exclude)}
        matched = sorted(fnmatch.filter(names, base))
        if not matched:
            raise PipelineError(f"wildcard '{pattern}' matches no file (on disk or written by an "
                                "earlier stage)", self.doc.path, line)
        lead = directory if not directory or directory.endswith("/") else directory + "/"
        items = [lead + n for n in matched]  # = os.path.join(directory, n)
        # "/" is a safe character no name holds: one match usually answers for every item
        if not _SAFE_ITEM.match("/".join(items)):
            for it in items:
                if not _SAFE_ITEM.match(it):
                    raise PipelineError(f"map input {it!r} has characters a shell command would "
                                        "split or expand; rename it", self.doc.path, line)
        return items

    def _apply(self, stage: Stage, tokens: list[_Token], shared: bool = False) -> None:
        """Record the tokens' roles; in a map, tokens common to every copy are ``shared``
        (a file all copies mention is something they read, never something one of them writes)."""
        for t in tokens:
            if "*" in t.text:
                continue
            p = _abs(self.docdir, t.text)
            if t.role == "write":
                stage.writes.add(p)
                self._declare(p)
            elif t.role == "read":
                stage.reads.add(p)
            elif t.role == "bare":
                stage.bare.append(p)
            elif shared:
                stage.shared.append(p)
            else:
                stage.mentions.append(p)

    def _declare(self, p: str) -> None:
        d, _, n = p.rpartition("/")
        got = self._declared.get(d or "/")
        if got is None:
            self._declared[d or "/"] = {n}
        else:
            got.add(n)

    def _add(self, kind: StageKind, command: str, display: str, line: int, env: str,
             item: str | None = None) -> Stage | None:
        key = (kind, env, command)
        if key in self._seen:
            return None
        # positional: a third cheaper than keywords, and a map makes thousands of these
        stage = Stage(len(self.stages), kind, command, display, line, env, item)
        self._seen[key] = stage
        self.stages.append(stage)
        return stage

    # -- imports and publishing ----------------------------------------------------------------
    def _lines(self, block: Block) -> Iterator[tuple[int, list[str]]]:
        for line, raw in block.lines:
            s = raw.strip()
            if not s or s.startswith("#"):
                continue
            for values in self.combos:
                text = expand(s, values, self.table, self.doc.path, line, keep=frozenset())
                try:
                    words = shlex.split(text, comments=True)
                except ValueError as exc:
                    raise PipelineError(f"malformed line ({exc})", self.doc.path, line) from None
                if words:
                    yield line, words

    def _import_block(self, block: Block) -> None:
        from sharklib.pipeline.containment import contained
        from sharklib.pipeline.imports import parse_source

        for line, words in self._lines(block):
            pin = None
            if words and _SHA256.match(words[-1]):
                pin = words.pop()
            if len(words) < 2:
                raise PipelineError(f"import '{' '.join(words)}' has no destination "
                                    "(write: SOURCE DESTINATION [sha256:HEX])", self.doc.path, line)
            if len(words) > 2:
                raise PipelineError("import line takes SOURCE DESTINATION [sha256:HEX]",
                                    self.doc.path, line)
            source, dest = words
            parse_source(source, self.doc.path, line)
            argv = [sys.executable, "-m", "sharklib.pipeline.fetch", source, dest]
            if pin:
                argv += ["--sha256", pin.split(":", 1)[1]]
            stage = self._add("import", shlex.join(argv), f"import {source} -> {dest}", line, "host")
            if stage is None:
                continue
            stage.source, stage.dest, stage.pin = source, dest, pin
            p = _abs(self.docdir, dest)
            # resolved through symlinks; file: sources and the other blocks are checked by
            # containment.check_document once every block is read
            contained(self.docdir, dest, "import destination", self.doc.path, line)
            stage.writes.add(p)
            self._declare(p)

    def _publish_block(self, block: Block) -> None:
        for line, words in self._lines(block):
            if len(words) != 2:
                raise PipelineError("publish line takes SOURCE DESTINATION", self.doc.path, line)
            self.publishes.append(Publish(source=words[0], dest=words[1], line=line))


def build_stages(doc: Document) -> tuple[list[Stage], list[Publish], dict[str, int], Any]:
    """All stages of ``doc`` (every combination, every map input), deduplicated."""
    with paused_gc():
        b = StageBuilder(doc)
        stages = b.build()
    return stages, b.publishes, b.envs_used, b.table
