"""Credentials in a command line's URLs never reach a record (as for downloads, issue 15 item 8).

``python fetch.py https://user:PASS@host/x?api_key=SECRET``: the script gets its arguments
as typed, while everything sharklib writes or shows (the signed sidecar and its statement,
the run index and the entry files beside it, the ledger, ``show``, ``log``, a pipeline
stage's record) holds the command line with those values replaced by ``REDACTED``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import sys
import time
from pathlib import Path

from viewkit import shark

SECRETS = ["PASSw0rd1", "APIsecret2", "TOKsecret3"]
URL = f"https://ann:{SECRETS[0]}@data.example.org/x.csv?api_key={SECRETS[1]}&part=1"
STAGE_URL = f"https://tok:{SECRETS[2]}@data.example.org/y.csv"

#: writes the digest of the URL it got (a secret in an output would be the user's own data)
FETCH = ("import hashlib, sys\n"
         "open(sys.argv[2], 'w').write(hashlib.sha256(sys.argv[1].encode()).hexdigest())\n")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _everything(*roots: Path) -> bytes:
    """Every file's bytes under ``roots``, with base64 payloads (signed statements) decoded."""
    out = []
    for root in roots:
        for p in [root] if root.is_file() else root.rglob("*"):
            # (cache/pipelines/ holds the parsed document: the user's own text, never shared)
            if p.is_file() and (p == root or
                                "pipelines" not in p.relative_to(root).parts[:2]):
                data = p.read_bytes()
                out.append(data)
                for m in re.finditer(rb'"payload":\s*"([A-Za-z0-9+/=]+)"', data):
                    out.append(base64.b64decode(m.group(1)))
    return b"\n".join(out)


def test_urls_in_argv_are_redacted_everywhere(tmp_path: Path, shark_home: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / ".git").mkdir()
    (project / "fetch.py").write_text(FETCH)
    r = shark("run", "fetch.py", URL, "got.txt", cwd=project)
    assert r.returncode == 0, r.stderr
    assert (project / "got.txt").read_text() == _digest(URL)  # the script got the real URL

    # a pipeline stage (its command is one shell string) too
    (project / "m.md").write_text(f"```shark-run:host\npython fetch.py '{STAGE_URL}' y.txt\n```\n")
    env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    r = shark("pipeline", "run", "m.md", cwd=project, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (project / "y.txt").read_text() == _digest(STAGE_URL)

    shown = []
    for args in (("show", "got.txt"), ("show", "y.txt"), ("log",), ("log", "--format", "json"),
                 ("cache", "ls")):
        r = shark(*args, cwd=project)
        assert r.returncode == 0, (args, r.stderr)
        shown.append(r.stdout + r.stderr)
    text = "\n".join(shown)
    assert "REDACTED" in text and "data.example.org" in text, text
    time.sleep(0.1)
    stored = _everything(shark_home, project / "got.txt.intoto.jsonl",
                         project / "y.txt.intoto.jsonl")
    assert b"ann:REDACTED@data.example.org/x.csv?api_key=REDACTED&part=1" in stored
    for secret in SECRETS:
        assert secret not in text, f"{secret} shown: {text}"
        assert secret.encode() not in stored, f"{secret} stored"


HEADER_SECRETS = ["BEARERsecret4", "PASSWORDsecret5", "APIKEYsecret6", "COOKIEsecret7"]

#: writes the digest of all its arguments (what it was given, not what was recorded)
FETCH_ALL = ("import hashlib, sys\n"
             "open(sys.argv[-1], 'w').write("
             "hashlib.sha256(' '.join(sys.argv[1:-1]).encode()).hexdigest())\n")


def test_credential_headers_and_options_in_argv_are_redacted(tmp_path: Path,
                                                             shark_home: Path) -> None:
    """``-H 'Authorization: Bearer T'``, ``--password P``, ``--api-key=K`` (curl, wget, httpie,
    database clients) are credentials on a command line as much as a URL's password is."""
    project = tmp_path / "p"
    project.mkdir()
    (project / ".git").mkdir()
    (project / "fetch.py").write_text(FETCH_ALL)
    args = ["-H", f"Authorization: Bearer {HEADER_SECRETS[0]}", "--password",
            HEADER_SECRETS[1], f"--api-key={HEADER_SECRETS[2]}", "--key", "2"]
    r = shark("run", "fetch.py", *args, "got.txt", cwd=project)
    assert r.returncode == 0, r.stderr
    assert (project / "got.txt").read_text() == _digest(" ".join(args))

    (project / "m.md").write_text(
        "```shark-run:host\n"
        f"python fetch.py --header 'Cookie: sessionid={HEADER_SECRETS[3]}' y.txt\n```\n")
    env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    r = shark("pipeline", "run", "m.md", cwd=project, env=env)
    assert r.returncode == 0, r.stdout + r.stderr

    shown = []
    for a in (("show", "got.txt"), ("show", "y.txt"), ("log", "--format", "json")):
        r = shark(*a, cwd=project)
        assert r.returncode == 0, (a, r.stderr)
        shown.append(r.stdout + r.stderr)
    text = "\n".join(shown)
    assert "REDACTED" in text, text
    stored = _everything(shark_home, project / "got.txt.intoto.jsonl",
                         project / "y.txt.intoto.jsonl")
    assert b"Authorization: Bearer REDACTED" in stored
    assert b"Cookie: REDACTED" in stored
    assert re.search(rb'"--key",\s*"2"', stored), "a sort key is no credential"
    for secret in HEADER_SECRETS:
        assert secret not in text, f"{secret} shown: {text}"
        assert secret.encode() not in stored, f"{secret} stored"
