"""Which distributions a run imported (``sharklib.common.identity.imported_distributions``)."""

from __future__ import annotations

import types
from pathlib import Path

from sharklib.common.identity import imported_distributions


def _module(name: str, file: Path) -> types.ModuleType:
    m = types.ModuleType(name)
    m.__file__ = str(file)
    return m


def test_owner_found_by_file_not_module_name(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    for d, files in {"pkg-1.0.dist-info": {"RECORD": "pkg/__init__.py,,\npkg/_ext.cpython-311-x86_64-linux-gnu.so,,\n"},
                     "python_dateutil-2.9.0.dist-info": {"top_level.txt": "dateutil\n"},
                     "six-1.17.0.dist-info": {"RECORD": "six.py,,\n"},
                     "unrelated-3.0.dist-info": {"top_level.txt": "unrelated\n"}}.items():
        (site / d).mkdir(parents=True)
        for name, text in files.items():
            (site / d / name).write_text(text)
    modules = {
        # an extension registered under a top-level name of its own, living inside pkg/
        "_ext": _module("_ext", site / "pkg" / "_ext.cpython-311-x86_64-linux-gnu.so"),
        "dateutil.parser": _module("dateutil.parser", site / "dateutil" / "parser.py"),
        "six": _module("six", site / "six.py"),
        "local": _module("local", tmp_path / "local.py"),
    }
    assert imported_distributions([str(site)], modules=modules) == {
        "pkg": "1.0", "python-dateutil": "2.9.0", "six": "1.17.0"}
