"""``sharklib pipeline pin``: write the digests of fetched imports back into the document.

Like Shark appending hashes, the digest goes at the end of the import line
(``SOURCE DEST sha256:HEX``). From then on the fetch refuses bytes with any
other digest. The document is rewritten atomically with its mode kept; only
the import lines change.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sharklib.hashing import atomic_write
from sharklib.pipeline.document import read_document
from sharklib.pipeline.stages import build_stages
from sharklib.pipeline.state import PipelineState

_COMMENT = re.compile(r"\s#")


@dataclass(slots=True)
class PinResult:
    line: int
    source: str
    digest: str | None
    status: str


def pin_document(path: str | os.PathLike[str]) -> list[PinResult]:
    """Pin every import fetched at least once; return what was done per import line."""
    doc = read_document(path)
    stages, _, _, _ = build_stages(doc)
    state = PipelineState.load(doc.path)
    per_line: dict[int, list[tuple[str, str | None, str | None]]] = {}
    for s in stages:
        if s.kind == "import" and s.source:
            per_line.setdefault(s.line, []).append((s.source, s.pin, state.imports.get(s.source)))
    lines = doc.text.split("\n")
    results: list[PinResult] = []
    changed = False
    for line, entries in sorted(per_line.items()):
        source = entries[0][0]
        if any(pin for _, pin, _ in entries):
            results.append(PinResult(line, source, entries[0][1], "already pinned"))
            continue
        digests = {d for _, _, d in entries}
        if None in digests:
            results.append(PinResult(line, source, None, "not fetched yet: run the pipeline first"))
            continue
        if len(digests) > 1:
            results.append(PinResult(line, source, None,
                                     "template makes several sources on this line: not pinned"))
            continue
        digest = digests.pop()
        assert digest is not None
        text = lines[line - 1]
        m = _COMMENT.search(text)
        end = len(text[: m.start() if m else len(text)].rstrip())
        lines[line - 1] = f"{text[:end]} {digest}{text[end:]}"
        results.append(PinResult(line, source, digest, "pinned"))
        changed = True
    if changed:
        p = Path(doc.path)
        atomic_write(p, "\n".join(lines).encode("utf-8"), mode=p.stat().st_mode & 0o7777)
    return results
