"""YAML front matter: named inputs and template variables.

The front matter is the ``---`` delimited YAML at the very top of the
document. It is replaced by blank lines before the Markdown is parsed so the
line numbers of every block stay those of the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sharklib.errors import PipelineError


def split_front_matter(text: str, path: Path) -> tuple[dict[str, Any], int, str]:
    """Return ``(variables, first_line_of_front_matter, body_with_blank_front_matter)``."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return {}, 0, text
    for i in range(1, len(lines)):
        if lines[i].rstrip() in ("---", "..."):
            break
    else:
        raise PipelineError("front matter opened with '---' is never closed", path, 1)
    yaml_text = "\n".join(lines[1:i])
    data = _load_yaml(yaml_text, path, offset=1)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PipelineError("front matter must be a YAML mapping", path, 2)
    for key in data:
        if not isinstance(key, str):
            raise PipelineError(f"front matter key {key!r} is not a string", path, 2)
    body = "\n" * (i + 1) + "\n".join(lines[i + 1:])
    return data, 2, body


def _load_yaml(text: str, path: Path, offset: int) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = (mark.line + 1 + offset) if mark is not None else offset + 1
        raise PipelineError(f"front matter is not valid YAML: {exc.problem or exc}", path, line) from None
    except yaml.YAMLError as exc:
        raise PipelineError(f"front matter is not valid YAML: {exc}", path, offset + 1) from None
