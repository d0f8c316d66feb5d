"""relative_to_root's text fast path answers exactly what os.path.relpath would."""

from __future__ import annotations

import itertools
import os

from sharklib.model.runkey import relative_to_root, relative_to_root_all


def _by_relpath(path: str, root: str) -> str:
    if not os.path.isabs(path):
        return path
    rel = os.path.relpath(path, root)
    if rel == ".." or rel.startswith(".." + os.sep):
        return path
    return rel + "/" if path.endswith("/") and not rel.endswith("/") else rel


def test_same_answer_as_relpath_for_every_shape_of_path() -> None:
    parts = ["a", ".", "..", "", ".h", "dir/"]
    roots = ["/", "/a", "/a/b", "/a/", "/a/./b", "/ab", "a", "/a//b"]
    for root in roots:
        for k in range(1, 4):
            for combo in itertools.product(parts, repeat=k):
                p = "/" + "/".join(combo)
                for path in (p, p + "/"):
                    assert relative_to_root(path, root) == _by_relpath(path, root), (path, root)


def test_the_batch_gives_each_path_the_same_answer() -> None:
    """relative_to_root_all (a traced step's inputs at once) agrees with the one-path form."""
    parts = ["a", ".", "..", "", ".h", "dir/"]
    roots = ["/", "/a", "/a/b", "/a/", "/a/./b", "/ab", "a", "/a//b"]
    paths = ["rel/path"]
    for k in range(1, 4):
        for combo in itertools.product(parts, repeat=k):
            p = "/" + "/".join(combo)
            paths += [p, p + "/"]
    for root in roots:
        assert relative_to_root_all(paths, root) == [_by_relpath(p, root) for p in paths], root
