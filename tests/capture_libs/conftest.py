"""Fixtures for the library-patch tests (helpers live in ``capture_libs_support``)."""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capture_libs_support import Handler


class QuietServer(http.server.ThreadingHTTPServer):
    """Clients that close a body half-read (on purpose, in the tests) are not errors here."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass


@pytest.fixture(scope="session")
def http_server() -> Iterator[str]:
    """Base URL of a threaded HTTP/1.1 server on 127.0.0.1 serving fixed bytes with ETags."""
    server = QuietServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
