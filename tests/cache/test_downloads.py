"""Downloads in the reuse decision: pinned, immutable, revalidated against a loopback server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from sharklib.model import Download
from sharklib.runner.downloads import is_immutable, judge
from sharklib.runner.reuse import check, record


class _Handler(BaseHTTPRequestHandler):
    etag = '"v1"'
    requests: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        type(self).requests.append(dict(self.headers))
        if self.headers.get("If-None-Match") == type(self).etag:
            self.send_response(304)
            self.end_headers()
            return
        body = b"species table " + type(self).etag.encode()
        self.send_response(200)
        self.send_header("ETag", type(self).etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.etag = '"v1"'
    _Handler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/data/species.csv"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("url", [
    "https://zenodo.org/records/1234567/files/habitat.tif",
    "https://zenodo.org/record/1234567/files/habitat.tif?download=1",
    "https://raw.githubusercontent.com/org/repo/0123456789abcdef0123456789abcdef01234567/a.csv",
    "https://github.com/org/repo/raw/0123456789abcdef0123456789abcdef01234567/a.csv",
    "https://gitlab.com/g/p/-/raw/0123456789abcdef0123456789abcdef01234567/a.csv",
])
def test_immutable_sources(url: str) -> None:
    assert is_immutable(url)
    assert judge(Download(url=url, sha256="a" * 64), "strict").how == "immutable"


@pytest.mark.parametrize("url", [
    "https://zenodo.org/records/1234567",  # the landing page can change
    "https://raw.githubusercontent.com/org/repo/main/a.csv",
    "https://example.org/latest/data.csv",
])
def test_mutable_sources(url: str) -> None:
    assert not is_immutable(url)
    assert not judge(Download(url=url, sha256="a" * 64), "strict").trusted


def test_content_addressed_url() -> None:
    sha = "b" * 64
    assert is_immutable(f"https://cas.example.org/sha256/{sha}", sha)


def test_pins() -> None:
    d = Download(url="https://example.org/x.csv", sha256="c" * 64)
    assert judge(d, "strict", {d.url: "sha256:" + "c" * 64}).how == "pinned"
    assert not judge(d, "trust", {d.url: "d" * 64}).trusted


def test_revalidation_by_etag(server: str) -> None:
    d = Download(url=server, sha256="e" * 64, etag='"v1"')
    assert judge(d, "revalidate").how == "revalidated"
    assert _Handler.requests[-1]["If-None-Match"] == '"v1"'
    _Handler.etag = '"v2"'
    v = judge(d, "revalidate")
    assert not v.trusted and v.how == "changed"
    assert judge(d, "trust").how == "trusted"
    assert not judge(Download(url=server, sha256="e" * 64), "revalidate").trusted  # no validator


def test_unreachable_server_is_not_trusted() -> None:
    d = Download(url="http://127.0.0.1:9/gone.csv", etag='"v1"')
    assert judge(d, "revalidate").how == "unreachable"


def test_reuse_line_names_policy_and_rerun_on_change(project: Path, cache, write, make_run,  # type: ignore[no-untyped-def]
                                                     key_for, server: str) -> None:
    out = write(project / "out.csv", "rows\n")
    run = make_run(project, ["fetch.py"], [], [out])
    run.downloads = [Download(url=server, sha256="f" * 64, etag='"v1"'),
                     Download(url="https://zenodo.org/records/99/files/a.tif", sha256="1" * 64)]
    record(run, root=str(project), cache=cache)
    key = key_for(["fetch.py"], project)
    d = check(key, cwd=str(project), root=str(project), cache=cache, policy="revalidate")
    assert d is not None
    assert "downloads 1 immutable, 1 revalidated (policy revalidate)" in d.message
    assert check(key, cwd=str(project), root=str(project), cache=cache, policy="strict") is None
    _Handler.etag = '"v2"'
    assert check(key, cwd=str(project), root=str(project), cache=cache) is None
    d = check(key, cwd=str(project), root=str(project), cache=cache, policy="trust")
    assert d is not None and "(policy trust)" in d.message
