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


def _two_process_result(path: Path) -> tuple[object, ...] | None:
    """What the probe recorded before it read remotes from the config: ``git status`` and
    ``git remote -v``, both asked of git (the old ``GitProbe``)."""
    from sharklib.common.identity import _parse_status, _pick_remote, project_root
    from sharklib.model import GitInfo

    root = project_root(str(path))
    if not os.path.exists(os.path.join(root, ".git")):
        return None
    info = GitInfo(root=root)
    st = subprocess.run(["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no",
                         "-z"], cwd=root, capture_output=True)
    if st.returncode == 0:
        _parse_status(st.stdout, info)
    rv = subprocess.run(["git", "remote", "-v"], cwd=root, capture_output=True)
    if rv.returncode == 0:
        info.remote = _pick_remote(rv.stdout.decode())
    return (info.root, info.commit, info.branch, info.dirty, info.remote)


def test_remote_read_from_the_config_equals_what_git_remote_says(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sharklib.common.identity import config_remote

    monkeypatch.setenv("HOME", str(tmp_path))  # no user config that mentions remotes
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))

    def same(path: Path, one_process: bool = True) -> None:
        info = git_info(str(path))
        new = None if info is None else (info.root, info.commit, info.branch, info.dirty,
                                         info.remote)
        assert new == _two_process_result(path), path
        if info is not None and one_process:
            assert config_remote(info.root) is not None, "read without `git remote -v`"

    same(repo)  # no remote
    _git(repo, "remote", "add", "zed", "https://example.org/z.git")
    _git(repo, "remote", "add", "abc", "git@example.org:a.git")
    _git(repo, "config", "--add", "remote.abc.url", "https://example.org/a2.git")
    _git(repo, "config", "remote.nourl.fetch", "+refs/heads/*:refs/remotes/nourl/*")
    same(repo)  # the first remote by name, its first URL
    (repo / "src" / "a.py").write_text("a = 2\n")
    same(repo / "src")  # dirty
    _git(repo, "remote", "add", "origin", "/srv/git/repo.git")
    _git(repo, "checkout", "-q", "--detach")
    same(repo)  # origin wins; detached HEAD
    wt = tmp_path / "wt"
    _git(repo, "worktree", "add", "-q", "-b", "side", str(wt))
    same(wt)  # a `.git` file pointing into the main repository's worktrees/
    _git(repo, "config", "url.https://example.org/.insteadOf", "ex:")
    same(repo, one_process=False)  # URL rewriting: left to git
    (tmp_path / "inc").write_text('[remote "origin"]\n\turl = https://other/x\n')
    _git(repo, "config", "include.path", str(tmp_path / "inc"))
    same(repo, one_process=False)  # includes: left to git
    (tmp_path / "nogit").mkdir()
    same(tmp_path / "nogit")


def test_asking_git_imports_no_subprocess_and_leaves_no_process(repo: Path) -> None:
    """Every recorded step asks; ``subprocess`` was a few ms of start-up its script never asked
    for (issue 18). The answer is git's own, and no ``git`` is left running or unreaped."""
    code = (
        "import os, sys\n"
        "from sharklib.common.identity import git_info\n"
        "before = set(sys.modules)\n"
        "info = git_info(sys.argv[1])\n"
        "print(info.commit, info.branch, info.dirty)\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
        "try:\n"
        "    print(os.waitpid(-1, os.WNOHANG))\n"
        "except ChildProcessError:\n"
        "    print('no children')\n"
    )
    import sys

    out = subprocess.run([sys.executable, "-c", code, str(repo)], check=True,
                         capture_output=True, text=True, timeout=60).stdout.splitlines()
    assert out[0] == f"{_git(repo, 'rev-parse', 'HEAD')} main False"
    assert "subprocess" not in out[1].split(), out[1]
    assert out[2] == "no children"


def test_no_git_on_the_path_knows_the_repository_but_not_its_state(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "nowhere"))
    info = git_info(str(repo))
    assert info is not None
    assert (info.root, info.commit, info.branch) == (str(repo), None, None)
