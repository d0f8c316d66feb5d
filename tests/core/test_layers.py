"""The sub-packages form the layers pyproject.toml writes down, and nothing else.

The table ``[tool.sharklib.layers]`` is the one statement of which sub-package
may import which; this test reads every import in the source (``ast``, lazy and
``TYPE_CHECKING`` ones included) and fails on an edge the table does not allow,
naming the file and line. When it fails: move the shared piece below both sides
(``sharklib.common`` holds what capture, trace and the runner share), or, if
that is not possible yet, list the edge under ``exceptions`` with its reason.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _graph() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("import_graph", module)
    spec.loader.exec_module(module)
    return module


graph = _graph()


def _where(sites: list) -> str:
    return ", ".join(f"{s.module.replace('.', '/')}.py:{s.line} ({s.target})" for s in sites[:5])


def test_every_subpackage_is_in_exactly_one_layer() -> None:
    layers = graph.read_layers()
    listed = [n for layer in layers.order for n in layer]
    assert len(listed) == len(set(listed)), f"listed twice: {sorted(n for n in listed if listed.count(n) > 1)}"
    assert sorted(listed) == graph.nodes(), "pyproject's [tool.sharklib.layers] must list every sub-package"


def test_no_import_points_up_or_sideways() -> None:
    layers = graph.read_layers()
    bad = [f"{a} -> {b}: {_where(sites)}" for (a, b), sites in graph.package_edges().items()
           if not layers.allows(a, b)]
    assert not bad, "imports against [tool.sharklib.layers]:\n" + "\n".join(bad)


def test_every_listed_exception_is_still_needed() -> None:
    """An exception the code no longer needs is removed, so the list stays the truth."""
    layers = graph.read_layers()
    edges = graph.package_edges()
    stale = [f"{a} -> {b}" for (a, b) in layers.exceptions
             if (a, b) not in edges or layers.rank(b) < layers.rank(a)]
    assert not stale, f"exceptions no longer needed: {stale}"


def test_no_cycle_between_subpackages() -> None:
    assert graph.cycles(graph.package_edges()) == []


def test_cycles_are_found() -> None:
    """The cycle check itself: two sub-packages importing each other are one cycle."""
    site = graph.Site("sharklib.a.x", 1, "sharklib.b")
    edges = {("a", "b"): [site], ("b", "c"): [site], ("c", "a"): [site], ("c", "d"): [site]}
    assert graph.cycles(edges) == [["a", "b", "c"]]


def test_only_the_entry_point_imports_the_cli() -> None:
    """``sharklib.cli`` is the skin: the library never reaches up into it."""
    offenders = [f"{s.module}:{s.line}" for module, sites in graph.module_imports().items()
                 for s in sites
                 if (s.target == "sharklib.cli" or s.target.startswith("sharklib.cli."))
                 and not module.startswith("sharklib.cli") and module != "sharklib.__main__"]
    assert not offenders, offenders


def test_environment_variable_names_are_defined_in_config() -> None:
    """Every ``SHARKLIB_*`` name a module defines (a module-level constant) is config.py's."""
    # the child start-up hook reads SHARKLIB_CAPTURE before it may import anything of sharklib
    exempt = {ROOT / "sharklib" / "config.py", ROOT / "sharklib" / "_bootstrap" / "sitecustomize.py"}
    found = []
    for path in sorted((ROOT / "sharklib").rglob("*.py")):
        if path in exempt:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = [n for top in tree.body if isinstance(top, ast.Assign | ast.AnnAssign)
                   for n in ast.walk(top)]
        for node in defined:
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.fullmatch(r"SHARKLIB_[A-Z0-9_]+", node.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}")
    assert not found, "define these in sharklib/config.py:\n" + "\n".join(found)
