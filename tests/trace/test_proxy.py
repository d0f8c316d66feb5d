"""``--proxy``: downloads by curl and wget through the recording proxy, against loopback servers.

Plain HTTP is recorded with URL, status and the body's sha256; HTTPS passes
through a CONNECT tunnel (no interception) and is recorded as host, port and
bytes. The servers are real (http.server, ssl) on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import shutil
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from trace_support import outputs, root, run_traced

BODY = b"sharklib proxy body\n" * 1000


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(BODY), 7000):
                part = BODY[i:i + 7000]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("ETag", '"v1"')
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


def _serve(server: http.server.HTTPServer) -> Iterator[int]:
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_port() -> Iterator[int]:
    yield from _serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler))


@pytest.fixture
def https_port(tmp_path: Path) -> Iterator[int]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    pem = tmp_path / "cert.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pem)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    yield from _serve(server)


def _need(tool: str) -> None:
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")


@pytest.mark.parametrize("path", ["/data.bin", "/chunked"])
def test_curl_plain_http_download_is_recorded(tmp_path: Path, backend: str, http_port: int,
                                              path: str) -> None:
    _need("curl")
    url = f"http://127.0.0.1:{http_port}{path}"
    res = run_traced(["curl", "-sSf", "-o", "got.bin", url], backend, tmp_path, use_proxy=True)
    assert res.exit_status == 0, res.messages
    run = root(res)
    assert [(d.url, d.sha256, d.size, d.status) for d in run.downloads] == \
        [(url, hashlib.sha256(BODY).hexdigest(), len(BODY), 200)]
    assert outputs(run, tmp_path) == {"got.bin"}
    assert any(c.endswith(":" + str(run.connects[0].rsplit(":", 1)[1])) for c in run.connects)


def test_wget_plain_http_download_is_recorded(tmp_path: Path, backend: str, http_port: int) -> None:
    _need("wget")
    url = f"http://127.0.0.1:{http_port}/file.txt"
    res = run_traced(["wget", "-q", "-O", "w.txt", url], backend, tmp_path, use_proxy=True)
    assert res.exit_status == 0, res.messages
    run = root(res)
    assert [(d.url, d.sha256, d.etag) for d in run.downloads] == \
        [(url, hashlib.sha256(BODY).hexdigest(), '"v1"')]
    assert outputs(run, tmp_path) == {"w.txt"}


def test_https_goes_through_a_tunnel_recorded_as_host_port_bytes(
        tmp_path: Path, backend: str, https_port: int) -> None:
    _need("curl")
    res = run_traced(["curl", "-sSfk", "-o", "s.bin", f"https://127.0.0.1:{https_port}/x"],
                     backend, tmp_path, use_proxy=True)
    assert res.exit_status == 0, res.messages
    (dl,) = root(res).downloads
    assert (dl.url, dl.method, dl.sha256) == (f"https://127.0.0.1:{https_port}/", "CONNECT", None)
    assert dl.size is not None and dl.size > len(BODY)  # the TLS records carried the body
    assert (tmp_path / "s.bin").read_bytes() == BODY
