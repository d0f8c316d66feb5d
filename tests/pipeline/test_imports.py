"""Imports: https, Zenodo (API shape), git at a commit; pinning digests; pinned bytes never change."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from pipekit import Cli, Served, sha256, write


def test_https_import_pin_and_refuse_changed_bytes(project: Path, cli: Cli, http_server: Served) -> None:
    http_server.files["/data/species.csv"] = b"species,status\nSphyrna lewini,CR\n"
    url = f"{http_server.base}/data/species.csv"
    doc = write(project / "m.md", "# m\n\n```shark-import\n"
                f"{url} data/species.csv  # the reference table\n```\n\n"
                "```shark-run:host\nwc -l data/species.csv > n.txt\n```\n")
    cli("run", "m.md", check=True)
    assert (project / "data" / "species.csv").read_bytes() == http_server.files["/data/species.csv"]
    assert (project / "n.txt").read_text().split()[0] == "2"
    proc = cli("pin", "m.md", check=True)
    digest = hashlib.sha256(http_server.files["/data/species.csv"]).hexdigest()
    assert "pinned" in proc.stdout
    line = doc.read_text().splitlines()[3]
    assert line == f"{url} data/species.csv sha256:{digest}  # the reference table"
    assert "already pinned" in cli("pin", "m.md", check=True).stdout

    http_server.files["/data/species.csv"] = b"species,status\nSphyrna lewini,EN\n"
    proc = cli("run", "m.md")
    assert proc.returncode == 1
    assert "differ from the pinned" in proc.stdout
    assert "m.md:4" in proc.stdout
    assert sha256(project / "data" / "species.csv") == digest, "a pinned import never changes silently"


def test_zenodo_record_through_the_rest_api(project: Path, cli: Cli, http_server: Served,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # The loopback server stands in for zenodo.org: it serves a record in the shape of
    # GET /api/records/<id> (files[].key, files[].links.self, files[].checksum "md5:...").
    body = b"lon,lat,count\n145.1,-16.2,4\n"
    http_server.files["/api/records/1234567/files/sightings.csv/content"] = body
    record = {"id": 1234567, "files": [
        {"key": "other.txt", "checksum": "md5:00", "links": {"self": f"{http_server.base}/nope"}},
        {"key": "sightings.csv", "size": len(body),
         "checksum": "md5:" + hashlib.md5(body).hexdigest(),
         "links": {"self": f"{http_server.base}/api/records/1234567/files/sightings.csv/content"}}]}
    http_server.files["/api/records/1234567"] = json.dumps(record).encode()
    monkeypatch.setenv("SHARKLIB_ZENODO_URL", http_server.base)
    write(project / "m.md", "```shark-import\nzenodo://1234567/sightings.csv raw/sightings.csv\n```\n")
    cli("run", "m.md", check=True)
    assert (project / "raw" / "sightings.csv").read_bytes() == body
    assert "/api/records/1234567" in http_server.hits

    record["files"][1]["checksum"] = "md5:" + "0" * 32
    http_server.files["/api/records/1234567"] = json.dumps(record).encode()
    (project / "raw" / "sightings.csv").unlink()
    proc = cli("run", "--rerun", "m.md")
    assert proc.returncode == 1 and "differs from the record's checksum" in proc.stdout
    assert not (project / "raw" / "sightings.csv").exists()


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
                               "HOME": str(cwd), "PATH": "/usr/bin:/bin"}).stdout.strip()


def test_git_repository_at_a_commit(project: Path, tmp_path: Path, cli: Cli) -> None:
    repo = tmp_path / "upstream"
    repo.mkdir()
    _git("init", "-q", "-b", "main", cwd=repo)
    write(repo / "model.py", "VERSION = 1\n")
    _git("add", ".", cwd=repo)
    _git("commit", "-q", "-m", "v1", cwd=repo)
    first = _git("rev-parse", "HEAD", cwd=repo)
    write(repo / "model.py", "VERSION = 2\n")
    _git("commit", "-q", "-am", "v2", cwd=repo)
    write(project / "m.md", f"```shark-import\ngit+file://{repo}@{first} vendor/model\n```\n\n"
          "```shark-run:host\ncat vendor/model/model.py > version.txt\n```\n")
    cli("run", "m.md", check=True)
    assert (project / "version.txt").read_text() == "VERSION = 1\n", "the pinned commit, not HEAD"
    assert not (project / "vendor" / "model" / ".git").exists()
    cli("pin", "m.md", check=True)
    assert "sha256:" in (project / "m.md").read_text().splitlines()[1]


def test_unfetched_import_is_not_pinned(project: Path, cli: Cli) -> None:
    write(project / "m.md", "```shark-import\nhttps://example.org/x.csv x.csv\n```\n")
    proc = cli("pin", "m.md", check=True)
    assert "not fetched yet" in proc.stdout
    assert "sha256:" not in (project / "m.md").read_text()
