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


_ENV_NAME = re.compile(r"SHARKLIB_[A-Z0-9_]+(=.*)?", re.S)
#: the child start-up hook reads SHARKLIB_CAPTURE before it may import anything of sharklib
_BOOTSTRAP = ROOT / "sharklib" / "_bootstrap" / "sitecustomize.py"


def _env_literals(path: Path) -> list[tuple[int, str]]:
    """String literals (f-string pieces included) that are a ``SHARKLIB_*`` name, or start an
    assignment of one (``"SHARKLIB_X=1"``); prose that mentions a name is not one."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and _ENV_NAME.fullmatch(node.value)]


def _config_names() -> set[str]:
    tree = ast.parse((ROOT / "sharklib" / "config.py").read_text(encoding="utf-8"))
    return {node.value.value for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str) and _ENV_NAME.fullmatch(node.value.value)}


def test_environment_variable_names_are_written_only_in_config() -> None:
    """No module spells a ``SHARKLIB_*`` name: each uses config.py's constant, so a renamed or
    misspelt variable cannot silently stop being read (``os.environ.get`` of a wrong name is
    just None)."""
    found = [f"{path.relative_to(ROOT)}:{line}: {value!r}"
             for path in sorted((ROOT / "sharklib").rglob("*.py"))
             if path not in (ROOT / "sharklib" / "config.py", _BOOTSTRAP)
             for line, value in _env_literals(path)]
    assert not found, "use the constant of sharklib/config.py:\n" + "\n".join(found)


def test_bootstrap_spells_config_names() -> None:
    """The start-up hook may not import sharklib.config (it runs in every child Python, in
    environments without sharklib too); the names it spells out must be config's."""
    spelled = {value for _, value in _env_literals(_BOOTSTRAP)}
    assert spelled, "the bootstrap reads SHARKLIB_CAPTURE: this test no longer sees it"
    assert spelled <= _config_names(), spelled - _config_names()
