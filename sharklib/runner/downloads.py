"""Whether a past run's downloads can be trusted without fetching them again.

A recorded download counts as unchanged when, in order:

* **pinned**: its digest equals one the user pinned (a pipeline's import block);
* **immutable**: its URL names content that cannot change: a Zenodo record
  file (``https://zenodo.org/records/N/files/...``), a file at a git commit
  (``raw.githubusercontent.com/o/r/<40 hex>/...``, ``github.com/o/r/raw/<sha>/``,
  GitLab ``/-/raw/<sha>/``, ``git+...@<sha>``), or a content-addressed URL
  (one that contains the download's own sha256, or an IPFS path);
* **revalidated**: a conditional request (``If-None-Match`` with the recorded
  ETag, ``If-Modified-Since`` with the recorded Last-Modified) answers 304, or
  200 with the same ETag.

The policy says how far down that list to go:

``revalidate`` (default)
    pinned, immutable, else a conditional request; no validator or no answer
    means "not trusted" and the step runs again.
``strict``
    only pinned or immutable downloads are trusted; anything else runs again.
``trust``
    every recorded download is trusted (offline work); the reuse line says so.

The request goes through :mod:`http.client` directly, not ``urllib``/
``requests``, so Python capture (which patches those) never records it as a
download of the step.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from sharklib.config import ENV_DOWNLOAD_POLICY
from sharklib.model import Download
from sharklib.model.run import FrozenRecord

TYPE_CHECKING = False
if TYPE_CHECKING:  # no ``typing`` at run time (a reuse from its memo judges downloads here)
    from typing import Literal

    Policy = Literal["revalidate", "strict", "trust"]
else:
    Policy = str
POLICIES: tuple[str, ...] = ("revalidate", "strict", "trust")
TIMEOUT = 10.0

#: URL shapes that pin their content, compiled on first use (every reuse check imports this
#: module; few runs have downloads)
_IMMUTABLE_PATTERNS = (
    r"^https?://(sandbox\.)?zenodo\.org/(api/)?records?/\d+/files/",
    r"^https?://raw\.githubusercontent\.com/[^/]+/[^/]+/[0-9a-f]{40}/",
    r"^https?://github\.com/[^/]+/[^/]+/(raw|blob)/[0-9a-f]{40}/",
    r"^https?://[^/]+/.+/-/raw/[0-9a-f]{40}/",
    r"^git\+[^#@]+(@|#)[0-9a-f]{40}\b",
    r"/ipfs/[A-Za-z0-9]{46,}",
)
_immutable: list[re.Pattern[str]] = []


class Verdict(FrozenRecord):
    """Whether one download is trusted, and why (``pinned``, ``immutable``, ``revalidated``...)."""

    __slots__ = ("how", "trusted")
    _fields = __match_args__ = ("trusted", "how")
    trusted: bool
    how: str

    def __init__(self, trusted: bool, how: str) -> None:
        self._set(trusted=trusted, how=how)


def default_policy() -> str:
    policy = os.environ.get(ENV_DOWNLOAD_POLICY, "revalidate").strip().lower()
    return policy if policy in POLICIES else "revalidate"


def is_immutable(url: str, sha256: str | None = None) -> bool:
    """True when the URL itself pins the content (record files, commits, content addresses)."""
    if not _immutable:
        _immutable.extend(re.compile(p) for p in _IMMUTABLE_PATTERNS)
    if any(p.search(url) for p in _immutable):
        return True
    return sha256 is not None and sha256 != "" and sha256 in url.lower()


def revalidate(download: Download, timeout: float = TIMEOUT) -> Verdict:
    """Ask the server whether the recorded version is still current (conditional GET)."""
    import http.client  # only when a download must be re-validated: not on every reuse check
    import ssl

    if not (download.etag or download.last_modified):
        return Verdict(False, "no validator")
    import urllib.parse

    parts = urllib.parse.urlsplit(download.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Verdict(False, "not http")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                           context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    headers = {"User-Agent": "sharklib-revalidate", "Accept-Encoding": "identity"}
    if download.etag:
        headers["If-None-Match"] = download.etag
    if download.last_modified:
        headers["If-Modified-Since"] = download.last_modified
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        conn.request("GET", target, headers=headers)
        resp = conn.getresponse()
        status = resp.status
        etag = resp.getheader("ETag")
        last_modified = resp.getheader("Last-Modified")
        resp.close()
    except (OSError, http.client.HTTPException):
        return Verdict(False, "unreachable")
    finally:
        conn.close()
    if status == 304:
        return Verdict(True, "revalidated")
    if status == 200 and (
            (download.etag and etag == download.etag and not etag.startswith("W/"))
            or (not download.etag and download.last_modified and
                last_modified == download.last_modified)):
        return Verdict(True, "revalidated")
    return Verdict(False, "changed" if status == 200 else f"HTTP {status}")


def judge(download: Download, policy: str, pins: Mapping[str, str] | None = None) -> Verdict:
    """Whether ``download`` can be trusted under ``policy``."""
    pinned = (pins or {}).get(download.url)
    if pinned is not None:
        pinned = pinned.removeprefix("sha256:")
        if download.sha256 and pinned == download.sha256:
            return Verdict(True, "pinned")
        return Verdict(False, "pin differs")
    if is_immutable(download.url, download.sha256):
        return Verdict(True, "immutable")
    if policy == "trust":
        return Verdict(True, "trusted")
    if policy == "strict":
        return Verdict(False, "not pinned")
    return revalidate(download)
