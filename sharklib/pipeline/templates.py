"""``%{VAR}`` template variables and the combinations a list value makes.

Front matter values fill ``%{VAR}`` anywhere in a block. A list value makes one
pipeline per element; several lists make one pipeline per combination (the
Cartesian product). Only variables the document actually uses multiply, so an
unused list never duplicates work. ``%{in}``, ``%{basename}`` and ``%{stem}`` are
reserved for map stages (see :mod:`sharklib.pipeline.stages`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sharklib.errors import PipelineError

PLACEHOLDER = re.compile(r"%\{([^{}]*)\}")
#: Filled per file by a map stage: the matched input, its file name, its name without suffix.
MAP_PLACEHOLDERS = frozenset({"in", "basename", "stem"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def variable_table(front: Mapping[str, Any], path: Path, line: int) -> dict[str, Any]:
    """Flatten the front matter into ``name -> value`` (``inputs:`` entries become names too)."""
    table: dict[str, Any] = {}
    for key, value in front.items():
        if key == "inputs" and isinstance(value, Mapping):
            for name, v in value.items():
                table[str(name)] = v
        else:
            table[key] = value
    for name in table:
        if name in MAP_PLACEHOLDERS:
            raise PipelineError(f"front matter variable '{name}' is reserved for map stages",
                                path, line)
    return table


def referenced(texts: Iterable[str]) -> set[str]:
    """Every variable name used in ``texts``."""
    found: set[str] = set()
    for t in texts:
        if "%{" in t:
            found.update(m.group(1) for m in PLACEHOLDER.finditer(t))
    return found


#: Copies of the pipeline a front matter's lists may make (the product of their lengths).
#: Nine lists of ten values are 10^9 combinations: the plan hung and grew to gigabytes.
MAX_COMBINATIONS = 10_000


def combinations(table: Mapping[str, Any], used: set[str], path: Path | None = None,
                 line: int | None = None) -> list[dict[str, str]]:
    """One ``name -> text`` mapping per combination of the list values that are used.

    More than :data:`MAX_COMBINATIONS` is a one-line error naming the lists, before any
    combination is made.
    """
    scalars = {k: _text(v) for k, v in table.items() if not isinstance(v, list | dict)}
    lists = sorted(k for k, v in table.items() if isinstance(v, list) and k in used)
    if not lists:
        return [scalars]
    count = 1
    for k in lists:
        count *= len(table[k])
        if count > MAX_COMBINATIONS:
            sizes = " × ".join(f"%{{{n}}} ({len(table[n])})" for n in lists)
            raise PipelineError(f"the front matter's lists make more than {MAX_COMBINATIONS} "
                                f"combinations ({sizes}); split the document or the lists",
                                path, line)
    combos = []
    for values in itertools.product(*[table[k] for k in lists]):
        c = dict(scalars)
        c.update({k: _text(v) for k, v in zip(lists, values, strict=True)})
        combos.append(c)
    return combos


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return ""
    return str(value)


def expand(text: str, values: Mapping[str, str], table: Mapping[str, Any], path: Path, line: int,
           keep: frozenset[str] = MAP_PLACEHOLDERS) -> str:
    """Replace ``%{VAR}``; names in ``keep`` are left for the map stage to fill."""
    if "%{" not in text:
        return text

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in keep:
            return m.group(0)
        if not _NAME.match(name):
            raise PipelineError(f"bad template variable name '%{{{name}}}'", path, line)
        if name not in values:
            if isinstance(table.get(name), dict):
                raise PipelineError(f"template variable '%{{{name}}}' is a mapping, not a value",
                                    path, line)
            raise PipelineError(f"undefined template variable '%{{{name}}}' (define it in the "
                                "front matter)", path, line)
        return values[name]

    return PLACEHOLDER.sub(sub, text)
