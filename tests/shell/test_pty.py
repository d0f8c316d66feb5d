"""``sharklib shell`` at a real pseudo-terminal (pexpect): what a person at the prompt does.

Ctrl-C stops the running ``sleep`` and not the shell; ``cd`` and variables persist;
the prompt counts mutations; tab completion, the up arrow and Ctrl-R reverse search
work (GNU readline); Ctrl-D leaves with status 0.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from shellkit import shell_env

pexpect = pytest.importorskip("pexpect", reason="pexpect is in the test extra: pip install -e '.[test]'")

PROMPT = r"\] [^\r\n]*\$ "


def _wait_for_process(cmdline: bytes, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if f.read() == cmdline:
                            return
                except OSError:
                    continue
        time.sleep(0.1)
    raise AssertionError(f"no process {cmdline!r} appeared")


@pytest.mark.timeout(300)
def test_prompt_session(traced: None, tmp_path: Path) -> None:
    ws = tmp_path / "pty"
    ws.mkdir()
    (ws / "uniquefile.txt").write_text("hello from the file\n")
    env = shell_env()
    env["TERM"] = "dumb"
    child = pexpect.spawn(sys.executable, ["-m", "sharklib", "shell"], cwd=str(ws), env=env,
                          encoding="utf-8", timeout=60, dimensions=(40, 200))
    try:
        child.expect(r"new session (\S+) in ")
        session = child.match.group(1)
        child.expect(rf"shark\[{session} 0m\] pty\$ ")

        # Ctrl-C interrupts the command, not the shell
        child.sendline("sleep 30")
        _wait_for_process(b"sleep\x0030\x00")  # the command runs: Ctrl-C now reaches it
        child.sendintr()
        child.expect(rf"shark\[{session} 0m\] pty\$ ", timeout=15)
        child.sendline("echo alive $((6*7))")
        child.expect("alive 42")
        child.expect(PROMPT)

        # cd and variables persist; a mutation shows in the prompt
        child.sendline("mkdir sub && cd sub && export WHO=me")
        child.expect(r"\] pty/sub\$ ")
        child.sendline('echo "$WHO" > made.txt')
        child.expect(rf"shark\[{session} 1m\] pty/sub\$ ")
        assert (ws / "sub" / "made.txt").read_text() == "me\n"
        child.sendline("cd ..")
        child.expect(r"\] pty\$ ")

        # tab completion of a file name, the up arrow, Ctrl-R
        child.send("cat uniq\t")
        time.sleep(0.5)
        child.send("\r")
        child.expect("hello from the file")
        child.expect(PROMPT)
        child.send("\x1b[A")  # up arrow: the last line again
        time.sleep(0.3)
        child.send("\r")
        child.expect("hello from the file")
        child.expect(PROMPT)
        child.send("\x12")  # Ctrl-R
        child.send("alive")
        time.sleep(0.3)
        child.send("\r")
        child.expect("alive 42")
        child.expect(PROMPT)

        child.sendline(":history --all")
        child.expect(PROMPT)
        listing = child.before
        assert "sleep 30  [inspect; exit 130]" in listing
        assert "+ sub/made.txt" in listing

        child.sendeof()  # Ctrl-D leaves
        child.expect(pexpect.EOF, timeout=30)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert os.path.exists(ws / "sub" / "made.txt.intoto.jsonl")
