"""Git state of the code, as ``git`` itself reports it (``sharklib.common.identity.git_info``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sharklib.common.identity import git_info

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                          env={**os.environ, **ENV}).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    (repo / "src" / "a.py").write_text("a = 1\n")
    _git(repo, "add", "src/a.py")
    _git(repo, "commit", "-q", "-m", "init")
    return repo


def test_outside_a_repository(tmp_path: Path) -> None:
    assert git_info(str(tmp_path)) is None


def test_clean_repository_from_a_subdirectory(repo: Path) -> None:
    info = git_info(str(repo / "src"))
    assert info is not None
    assert (info.root, info.commit, info.branch, info.dirty, info.remote) == (
        str(repo), _git(repo, "rev-parse", "HEAD"), "main", False, None)


def test_untracked_files_are_not_dirt_but_staged_and_unstaged_changes_are(repo: Path) -> None:
    (repo / "new.txt").write_text("n")
    assert git_info(str(repo)).dirty is False  # type: ignore[union-attr]
    _git(repo, "add", "new.txt")
    assert git_info(str(repo)).dirty is True  # type: ignore[union-attr]
    _git(repo, "commit", "-q", "-m", "new")
    (repo / "src" / "a.py").write_text("a = 2\n")
    assert git_info(str(repo)).dirty is True  # type: ignore[union-attr]


def test_detached_head_has_no_branch(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "--detach")
    info = git_info(str(repo))
    assert info is not None and (info.commit, info.branch) == (head, None)


def test_repository_without_commits(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q", "-b", "trunk")
    info = git_info(str(tmp_path))
    assert info is not None and (info.commit, info.branch, info.dirty) == (None, "trunk", False)


def test_remote_origin_first_else_the_first_remote_with_rewrites(repo: Path) -> None:
    _git(repo, "remote", "add", "backup", "https://example.org/backup.git")
    assert git_info(str(repo)).remote == "https://example.org/backup.git"  # type: ignore[union-attr]
    _git(repo, "config", "url.https://example.org/.insteadOf", "ex:")
    _git(repo, "remote", "add", "origin", "ex:lab/repo.git")
    assert git_info(str(repo)).remote == "https://example.org/lab/repo.git"  # type: ignore[union-attr]
