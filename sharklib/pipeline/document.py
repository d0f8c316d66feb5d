"""Read a Markdown pipeline: front matter and the fenced blocks that do the work.

Parsing uses markdown-it-py (a CommonMark parser), so a fence inside a list, a
block quote or an indented code sample is understood the way any renderer
would; every block keeps its source line so errors can name it. Prose is left
alone: the document stays readable and every command can be run by hand.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sharklib.errors import PipelineError
from sharklib.pipeline.frontmatter import split_front_matter

#: Larger documents are refused before they are read: a pipeline is prose and
#: commands, and a multi-megabyte "document" is almost surely the wrong file.
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024

BlockKind = Literal["run", "build", "import", "publish"]
KINDS: dict[str, BlockKind] = {
    "shark-run": "run",
    "shark-build": "build",
    "shark-import": "import",
    "shark-publish": "publish",
}
_NEEDS_ENV = {"run", "build"}
_ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(slots=True)
class Block:
    """One fenced block the pipeline acts on.

    ``line`` is the 1-based line of the opening fence; ``lines`` holds the
    content as ``(line_number, text)`` pairs so each command keeps its line.
    """

    kind: BlockKind
    env: str | None
    info: str
    line: int
    lines: list[tuple[int, str]]


@dataclass(slots=True)
class Document:
    """A parsed pipeline document."""

    path: Path
    text: str
    variables: dict[str, Any]
    front_matter_line: int
    blocks: list[Block]
    notes: list[str] = field(default_factory=list)

    @property
    def directory(self) -> Path:
        return self.path.parent


def read_document(path: str | os.PathLike[str]) -> Document:
    """Load and parse ``path``; a :class:`PipelineError` names the line of any problem."""
    p = Path(path).absolute()
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise PipelineError(f"cannot read pipeline: {exc.strerror or exc}", p) from None
    if size > MAX_DOCUMENT_BYTES:
        raise PipelineError(f"document is {size / 1e6:.1f} MB, above the "
                            f"{MAX_DOCUMENT_BYTES / 1e6:.0f} MB limit for a pipeline", p, 1)
    try:
        raw = p.read_bytes()
        # an editor's byte order mark would hide the first fence or the front matter's '---'
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PipelineError("document is not valid UTF-8", p, line) from None
    except OSError as exc:
        raise PipelineError(f"cannot read pipeline: {exc.strerror or exc}", p) from None
    if "\x00" in text:
        raise PipelineError("document contains NUL bytes", p, text[: text.index("\x00")].count("\n") + 1)
    return parse_document(text, p)


def parse_document(text: str, path: Path) -> Document:
    """Parse document text (``path`` is used for messages and as the working directory).

    A document parsed before (same path, same text, same markdown-it install) is
    read back from a small JSON file instead: importing and running the Markdown
    parser and the YAML loader costs more than planning a small pipeline.
    """
    memo = _Memo(text, path)
    doc = memo.load()
    if doc is not None:
        return doc
    doc = _parse(text, path)
    memo.store(doc)
    return doc


def _parse(text: str, path: Path) -> Document:
    from markdown_it import MarkdownIt

    variables, fm_line, body = split_front_matter(text, path)
    tokens = MarkdownIt("commonmark").parse(body)
    src_lines = body.splitlines()
    blocks: list[Block] = []
    notes: list[str] = []
    for tok in tokens:
        if tok.type != "fence" or tok.map is None:
            continue
        info = tok.info.strip()
        word = info.split(None, 1)[0] if info else ""
        name, _, env = word.partition(":")
        fence_line = tok.map[0] + 1
        kind = KINDS.get(name)
        if kind is None:
            if name.startswith("shark-"):
                notes.append(f"{path}:{fence_line}: note: unknown block '{name}' ignored")
            continue
        _check_closed(tok.map, tok.markup, src_lines, path, fence_line)
        if kind in _NEEDS_ENV and not env:
            raise PipelineError(f"'{name}' block needs an environment name ({name}:ENV)", path, fence_line)
        if env and not _ENV_NAME.match(env):
            raise PipelineError(f"bad environment name '{env}' in '{word}'", path, fence_line)
        content = tok.content.split("\n")
        if content and content[-1] == "":
            content.pop()
        first = fence_line + 1
        blocks.append(Block(kind=kind, env=env or None, info=info, line=fence_line,
                            lines=[(first + i, s) for i, s in enumerate(content)]))
    return Document(path=path, text=text, variables=variables, front_matter_line=fm_line,
                    blocks=blocks, notes=notes)


def _check_closed(span: list[int], markup: str, src_lines: list[str], path: Path, line: int) -> None:
    """A fence left open swallows the rest of the document: refuse it rather than guess."""
    end = span[1]
    last = src_lines[end - 1].strip() if 0 < end <= len(src_lines) else ""
    fence_char = markup[0] if markup else "`"
    if end - span[0] < 2 or not (last.startswith(markup) and set(last) <= {fence_char}):
        raise PipelineError(f"fenced block opened here is never closed (expected '{markup}')",
                            path, line)


# -- the parse memo ------------------------------------------------------------------------
_MEMO_VERSION = 1


class _Memo:
    """The parse of one document kept beside its pipeline state (see :func:`parse_document`).

    Keyed by the document's path and text and by the installed markdown-it (its
    file's size and mtime), so a changed document or parser is parsed again. Only
    successful parses are kept, and front matter only when it survives a JSON round
    trip unchanged (dates, say, do not: that document's YAML is loaded every time).
    A memo that cannot be read or written is simply not used.
    """

    def __init__(self, text: str, path: Path) -> None:
        from sharklib.model.runkey import sha256_constructor
        from sharklib.pipeline.state import state_dir

        self.file = state_dir(path) / "parsed.json"
        self.path = path
        h = sha256_constructor()(f"{_MEMO_VERSION}\0{path}\0{_parser_id()}\0".encode(
            "utf-8", "surrogateescape"))
        h.update(text.encode("utf-8", "surrogateescape"))
        self.key = h.hexdigest()
        self.text = text

    def load(self) -> Document | None:
        import json

        try:
            data = json.loads(self.file.read_bytes())
            if data["key"] != self.key:
                return None
            variables = data["variables"]
            if variables is None:  # not JSON-safe: the YAML is read again
                variables = split_front_matter(self.text, self.path)[0]
            if not isinstance(variables, dict):
                return None
            blocks = [Block(kind=KINDS["shark-" + kind], env=env, info=str(info), line=int(line),
                            lines=[(int(n), str(t)) for n, t in lines])
                      for kind, env, info, line, lines in data["blocks"]]
            if any(b.env is not None and not isinstance(b.env, str) for b in blocks):
                return None
            return Document(path=self.path, text=self.text, variables=variables,
                            front_matter_line=int(data["front_matter_line"]), blocks=blocks,
                            notes=[str(n) for n in data["notes"]])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def store(self, doc: Document) -> None:
        import json

        from sharklib.hashing import atomic_write

        try:
            variables: Any = doc.variables
            try:
                if json.loads(json.dumps(variables)) != variables:
                    variables = None
            except (TypeError, ValueError):
                variables = None
            body = {"key": self.key, "variables": variables,
                    "front_matter_line": doc.front_matter_line, "notes": doc.notes,
                    "blocks": [[b.kind, b.env, b.info, b.line, b.lines] for b in doc.blocks]}
            self.file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.file, json.dumps(body, separators=(",", ":")).encode(
                "utf-8", "surrogateescape"))
        except (OSError, ValueError, TypeError):
            pass


def _parser_id() -> str:
    """Which markdown-it is installed, without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("markdown_it")
        origin = spec.origin if spec is not None else None
        st = os.stat(origin) if origin else None
    except (ImportError, ValueError, OSError):
        return "?"
    return f"{origin}:{st.st_size}:{st.st_mtime_ns}" if st is not None else "?"
