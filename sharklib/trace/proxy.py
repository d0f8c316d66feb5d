"""``--proxy``: a loopback HTTP(S) forward proxy that records what the tree downloaded.

Built on proxy.py (a maintained proxy library). Plain HTTP responses are
hashed as they stream through (headers parsed, chunked bodies decoded), so the
record holds the URL, status, body sha256, size, ETag and Last-Modified.
HTTPS goes through a ``CONNECT`` tunnel without interception: the record holds
host, port and the bytes that came back. proxy.py may serve connections from
other processes, so each record is appended as one JSON line (one ``write`` on
an ``O_APPEND`` descriptor) to a log file the session reads at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any

from sharklib.config import ENV_PROXY_LOG
from sharklib.errors import TraceError
from sharklib.model import Download

try:  # proxy.py is an optional dependency (extra "proxy")
    from proxy.http.proxy import HttpProxyBasePlugin
except ImportError:  # pragma: no cover - exercised only without proxy.py
    HttpProxyBasePlugin = object  # type: ignore[assignment,misc]


class _BodyDigest:
    """Streams an HTTP/1.x response: status and headers, then the (de-chunked) body's sha256."""

    def __init__(self) -> None:
        self.head = b""
        self.headers: dict[str, str] = {}
        self.status: int | None = None
        self.in_body = False
        self.chunked = False
        self.chunk_left = 0
        self.pending = b""
        self.digest = hashlib.sha256()
        self.size = 0

    def feed(self, data: bytes) -> None:
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > 1 << 16:
                    self.in_body = True
                return
            head, data = self.head[:end], self.head[end + 4:]
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) >= 2 and parts[1].isdigit():
                self.status = int(parts[1])
            for line in lines[1:]:
                k, _, v = line.partition(":")
                self.headers[k.strip().lower()] = v.strip()
            self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
            self.in_body = True
            self.head = b""
        if self.chunked:
            self._chunks(data)
        else:
            self.digest.update(data)
            self.size += len(data)

    def _chunks(self, data: bytes) -> None:
        buf = self.pending + data
        self.pending = b""
        while buf:
            if self.chunk_left > 0:
                take = buf[: self.chunk_left]
                self.digest.update(take)
                self.size += len(take)
                self.chunk_left -= len(take)
                buf = buf[len(take):]
                continue
            if self.chunk_left == -1:  # CRLF after a chunk
                if len(buf) < 2:
                    self.pending = buf
                    return
                buf = buf[2:]
                self.chunk_left = 0
                continue
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                self.pending = buf
                return
            try:
                n = int(buf[:line_end].split(b";")[0], 16)
            except ValueError:
                return
            buf = buf[line_end + 2:]
            if n == 0:
                return
            self.chunk_left = n
            # after the data, a CRLF follows
            take = buf[:n]
            self.digest.update(take)
            self.size += len(take)
            self.chunk_left = n - len(take)
            buf = buf[len(take):]
            if self.chunk_left == 0:
                self.chunk_left = -1


class RecordingPlugin(HttpProxyBasePlugin):  # type: ignore[misc,valid-type]
    """proxy.py plugin: one JSON line per request in ``$SHARKLIB_PROXY_LOG``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._body = _BodyDigest()
        self._record: dict[str, Any] = {}

    def handle_client_request(self, request: Any) -> Any:
        with contextlib.suppress(Exception):  # recording must never break the download
            self._start(request)
        return request

    def _start(self, request: Any) -> None:
        method = (request.method or b"GET").decode("latin-1")
        host = (request.host or b"").decode("latin-1")
        port = request.port
        if method == "CONNECT":
            url = f"https://{host}:{port}/"
        else:
            path = (request.path or b"/").decode("latin-1")
            url = path if path.startswith("http") else f"http://{host}:{port}{path}"
        self._record = {"method": method, "url": url, "host": host, "port": port,
                        "time": time.time()}

    def handle_upstream_chunk(self, chunk: memoryview) -> memoryview:
        if self._record.get("method") != "CONNECT":
            with contextlib.suppress(Exception):
                self._body.feed(bytes(chunk))
        return chunk

    def on_access_log(self, context: dict[str, Any]) -> dict[str, Any] | None:
        with contextlib.suppress(Exception):
            self._log(context)
        return None

    def _log(self, context: dict[str, Any]) -> None:
        rec = dict(self._record)
        if not rec:
            return
        if rec["method"] == "CONNECT":
            rec["size"] = int(context.get("response_bytes") or 0)
        else:
            rec["status"] = self._body.status
            rec["sha256"] = self._body.digest.hexdigest()
            rec["size"] = self._body.size
            rec["etag"] = self._body.headers.get("etag")
            rec["last_modified"] = self._body.headers.get("last-modified")
        if isinstance(rec.get("url"), str):  # not even the session's log holds a secret
            from sharklib.model.redact import redact_url

            rec["url"] = redact_url(rec["url"])
        log = os.environ.get(ENV_PROXY_LOG)
        if log:
            with contextlib.suppress(OSError):
                fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, json.dumps(rec).encode() + b"\n")
                finally:
                    os.close(fd)


@contextlib.contextmanager
def recording_proxy(log_path: str) -> Iterator[int]:
    """Run the proxy on an ephemeral loopback port for the duration; yields the port."""
    try:
        import proxy
    except ImportError as exc:
        raise TraceError("--proxy needs proxy.py (pip install 'sharklib[proxy]')") from exc
    os.environ[ENV_PROXY_LOG] = log_path
    import logging

    logging.getLogger("proxy").setLevel(logging.CRITICAL)
    args = ["--hostname", "127.0.0.1", "--port", "0", "--num-workers", "1",
            "--num-acceptors", "1", "--threaded", "--log-level", "CRITICAL"]
    srv = proxy.Proxy(args, plugins=[RecordingPlugin])
    try:
        srv.setup()
    except Exception as exc:
        raise TraceError(f"cannot start the recording proxy: {exc}") from exc
    try:
        yield int(srv.flags.port)
    finally:
        with contextlib.suppress(Exception):
            srv.shutdown()


def proxy_environment(port: int, base: dict[str, str]) -> dict[str, str]:
    """Point every common client at the proxy (curl, wget, pip, requests, git, R, npm)."""
    url = f"http://127.0.0.1:{port}"
    env = dict(base)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "npm_config_proxy", "npm_config_https_proxy"):
        env[name] = url
    no_proxy = base.get("no_proxy", base.get("NO_PROXY", ""))
    env["no_proxy"] = env["NO_PROXY"] = no_proxy
    return env


def read_downloads(log_path: str) -> list[tuple[float, Download]]:
    """The recorded downloads with their times; malformed lines are skipped."""
    out: list[tuple[float, Download]] = []
    try:
        with open(log_path, "rb") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return out
    for raw in lines:
        try:
            rec = json.loads(raw)
            out.append((float(rec.get("time", 0.0)), Download(
                url=str(rec["url"]), sha256=rec.get("sha256"), size=rec.get("size"),
                etag=rec.get("etag"), last_modified=rec.get("last_modified"),
                status=rec.get("status"), method=str(rec.get("method", "GET")))))
        except (ValueError, KeyError, TypeError):
            continue
    return out
