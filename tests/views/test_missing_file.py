"""A path that is neither a file nor a sidecar is a typo: "no such file", not "no sidecar"."""

from __future__ import annotations

from pathlib import Path

import pytest
from viewkit import shark


@pytest.mark.parametrize("command", [["show"], ["verify"], ["why"], ["export", "--format", "intoto"]])
def test_a_missing_file_is_no_such_file(tmp_path: Path, command: list[str]) -> None:
    r = shark(*command, "missing.txt", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr == "sharklib: error: no such file: missing.txt\n"


def test_a_file_without_a_sidecar_still_says_so(tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_text("x")
    r = shark("show", "plain.txt", cwd=tmp_path)
    assert r.returncode == 2 and "no sidecar" in r.stderr, r.stderr


def test_a_file_without_lineage_is_named_not_its_sidecar(tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_text("x")
    for cmd in ("verify", "show", "why"):
        r = shark(cmd, "plain.txt", cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert "plain.txt: no recorded lineage" in r.stderr, r.stderr
        assert "plain.txt.intoto.jsonl:" not in r.stderr, r.stderr
