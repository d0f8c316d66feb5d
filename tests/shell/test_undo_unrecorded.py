"""``:undo`` on a filesystem without snapshots (ext4 here) of lines that changed, in place, files
older than the session: what an earlier line read, and what the line itself names, is in the
store and comes back; what nobody recorded is named, left as it is, and ``:history`` says
"partly undone", never "undone"."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from shellkit import run_shell, shell_env


@pytest.mark.timeout(300)
def test_undo_puts_back_what_earlier_lines_read(traced: None, workspace: Path) -> None:
    ws = workspace
    files = {"notes.txt": "keep me\n", "data.txt": "a\nb\n", "gone.txt": "precious\n",
             "never.txt": "unseen\n", "sorted.txt": "b\na\n", "log.txt": "old\n",
             "config.txt": "mode=a\n"}
    for name, text in files.items():
        (ws / name).write_text(text)
    old = time.time() - 60
    for name in files:  # files from before the session (their stat is settled, as in real use)
        os.utime(ws / name, (old, old))
    time.sleep(2.1)  # ctime cannot be set back: let it leave the racy window
    env = shell_env()
    script = ("cat notes.txt data.txt gone.txt > /dev/null\n"
              "sed -i s/keep/lose/ notes.txt\n"
              "echo x >> data.txt\n"
              "rm gone.txt\n"
              "f=never; echo more >> $f.txt\n"
              "s=sorted.txt; sort -o $s $s\n"
              "echo new >> log.txt\n"
              "echo mode=b > config.txt\n"
              ":undo\n:undo\n:undo\n:undo\n:undo\n:undo\n:undo\n:history\n")
    res = run_shell(ws, script, env)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    # read by line 1, so stored then: all three come back
    assert (ws / "notes.txt").read_text() == "keep me\n"
    assert (ws / "data.txt").read_text() == "a\nb\n"
    assert (ws / "gone.txt").read_text() == "precious\n"
    # never read before it was changed: named, left as it is (not deleted, not guessed)
    assert (ws / "never.txt").read_text() == "unseen\nmore\n"
    assert (ws / "sorted.txt").read_text() == "a\nb\n"  # sort -o rewrote it: not a new file
    # never read, but named on the line that changed them: kept before it ran
    assert (ws / "log.txt").read_text() == "old\n"
    assert (ws / "config.txt").read_text() == "mode=a\n"
    assert "partly undid [6]" in out and "partly undid [5]" in out
    assert "could not be restored (their earlier content was never recorded), left as they " \
           "are: sorted.txt" in out
    hist = out[out.index("[2] "):]
    assert "sed -i s/keep/lose/ notes.txt  [undone]" in hist
    assert "echo x >> data.txt  [undone]" in hist
    assert "rm gone.txt  [undone]" in hist
    assert "echo more >> $f.txt  [partly undone (1 file could not be restored: " \
           "never.txt)]" in hist
    assert "sort -o $s $s  [partly undone (1 file could not be restored: " \
           "sorted.txt)]" in hist
    assert "echo new >> log.txt  [undone]" in hist
    assert "echo mode=b > config.txt  [undone]" in hist
    assert "~ sorted.txt" in hist  # changed, not "+" (made)
