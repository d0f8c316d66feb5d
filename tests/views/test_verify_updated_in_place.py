"""verify of a file a step updates in place (a log appended to on every run): each run's record
names the version it left, so only the newest writer's record is checked against the disk, and
the file's earlier versions in its own lineage are not "changed since recorded"."""

from __future__ import annotations

from pathlib import Path

from viewkit import shark


def test_an_appended_log_verifies_and_a_tampered_one_does_not(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "app.py").write_text("open('log.txt', 'a').write('line\\n')\n")
    for _ in range(3):
        assert shark("run", "-q", "app.py", cwd=tmp_path).returncode == 0
    assert (tmp_path / "log.txt").read_text() == "line\n" * 3
    ok = shark("verify", "log.txt", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    from sharklib.attest import verify_file

    assert verify_file(str(tmp_path / "log.txt")).ok
    with open(tmp_path / "log.txt", "a") as fh:
        fh.write("forged\n")
    bad = shark("verify", "log.txt", cwd=tmp_path)
    assert bad.returncode == 1 and "content changed since it was recorded" in bad.stdout
    assert not verify_file(str(tmp_path / "log.txt")).ok
