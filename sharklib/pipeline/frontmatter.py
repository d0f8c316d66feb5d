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


#: Nesting deeper than this is refused: PyYAML composes recursively, and a front matter of
#: 5,000 nested ``[`` ended in a RecursionError traceback.
MAX_DEPTH = 64
#: Values in the front matter with every YAML alias expanded: a "billion laughs" document
#: (nine aliases of nine aliases ...) is a few lines that mean 10^9 values, and hung the plan.
MAX_VALUES = 100_000


def _loader(path: Path, offset: int) -> type:
    """A SafeLoader that refuses nesting deeper than :data:`MAX_DEPTH` while composing."""
    import yaml

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    mark = self.peek_event().start_mark
                    raise PipelineError(f"front matter nests deeper than {MAX_DEPTH} levels",
                                        path, mark.line + 1 + offset)
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return Loader


def _check_size(data: Any, path: Path, line: int) -> None:
    """Count values with aliases expanded, without expanding them (shared nodes are counted
    once per use through a memo), iteratively; a cycle (``&a [*a]``) is refused too."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, list | dict):
            continue
        key = id(node)
        children = list(node.values()) if isinstance(node, dict) else node
        if done:
            on_path.discard(key)
            total = 1 + sum(sizes.get(id(c), 1) for c in children)
            if total > MAX_VALUES:
                raise PipelineError(f"front matter expands to more than {MAX_VALUES} values "
                                    "(YAML aliases repeating aliases?)", path, line)
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise PipelineError("front matter refers to itself (a YAML alias inside its own "
                                "anchor)", path, line)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, list | dict))


def _load_yaml(text: str, path: Path, offset: int) -> Any:
    import yaml

    try:
        data = yaml.load(text, Loader=_loader(path, offset))  # a SafeLoader subclass
        _check_size(data, path, offset + 1)
        return data
    except RecursionError:  # a shape the depth limit did not foresee: still one line
        raise PipelineError(f"front matter nests too deeply (limit {MAX_DEPTH})", path,
                            offset + 1) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = (mark.line + 1 + offset) if mark is not None else offset + 1
        raise PipelineError(f"front matter is not valid YAML: {exc.problem or exc}", path, line) from None
    except yaml.YAMLError as exc:
        raise PipelineError(f"front matter is not valid YAML: {exc}", path, offset + 1) from None
