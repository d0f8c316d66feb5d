"""Primary sources: https URLs, Zenodo records, git repositories at a commit, bundled files.

An import line is ``SOURCE DESTINATION [sha256:HEX]``. The fetch itself runs as
a pipeline stage (``python -m sharklib.pipeline.fetch``) through the runner, so
the download is captured, attested and reused like any other step. Bytes are
streamed to a temporary file beside the destination, hashed as they arrive
and moved into place only when complete and, if pinned, only when the digest
is the pinned one: a pinned source that changed is an error, never a silent
change.

Zenodo goes through its REST API (``GET {base}/api/records/{id}`` →
``files[].key``, ``files[].links.self``, ``files[].checksum = "md5:..."``);
``SHARKLIB_ZENODO_URL`` replaces ``https://zenodo.org`` (tests point it to a
loopback server serving recorded responses).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sharklib.config import ENV_ZENODO_URL
from sharklib.errors import PipelineError, SharkError
from sharklib.pipeline.containment import contained

_COMMIT = re.compile(r"^[0-9a-fA-F]{7,64}$")
CHUNK = 1 << 20


@dataclass(slots=True)
class Source:
    kind: Literal["url", "zenodo", "git", "file"]
    url: str
    record: str | None = None
    file: str | None = None
    commit: str | None = None


def parse_source(text: str, doc: Path | None = None, line: int | None = None) -> Source:
    """Validate an import source; errors name the document line."""
    if text.startswith(("https://", "http://")):
        return Source(kind="url", url=text)
    if text.startswith("file:"):
        rest = text[len("file://"):] if text.startswith("file://") else text[len("file:"):]
        if not rest:
            raise PipelineError(f"file source names no file: {text}", doc, line)
        return Source(kind="file", url=rest)
    if text.startswith("zenodo://"):
        rest = text[len("zenodo://"):]
        record, _, name = rest.partition("/")
        if not record.isdigit() or not name:
            raise PipelineError(f"zenodo source must be zenodo://RECORD/FILE: {text}", doc, line)
        return Source(kind="zenodo", url=text, record=record, file=name)
    if text.startswith("git+"):
        url, at, commit = text[4:].rpartition("@")
        if not at or not _COMMIT.match(commit) or not url.startswith(("file://", "https://", "http://", "ssh://")):
            raise PipelineError(f"git source must be git+URL@COMMIT (a commit hash): {text}", doc, line)
        return Source(kind="git", url=url, commit=commit.lower())
    raise PipelineError(f"unknown import source {text!r} (https://, zenodo://RECORD/FILE, "
                        "git+URL@COMMIT or file:PATH)", doc, line)


def tree_digest(path: str | os.PathLike[str]) -> str:
    """Digest of a file, or of a directory tree (sorted relative paths and file digests)."""
    from sharklib.hashing import sha256_file

    p = Path(path)
    if p.is_file():
        return "sha256:" + sha256_file(p)[0]
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file() and ".git" not in x.relative_to(p).parts):
        h.update(f.relative_to(p).as_posix().encode("utf-8", "surrogateescape") + b"\0")
        h.update(sha256_file(f)[0].encode() + b"\n")
    return "sha256:" + h.hexdigest()


def _download(url: str, target: Path, md5: str | None = None) -> str:
    """Stream ``url`` into ``target`` (a temp path); return the sha256 hex."""
    req = urllib.request.Request(url, headers={"User-Agent": "sharklib-pipeline"})
    sha = hashlib.sha256()
    m = hashlib.md5(usedforsecurity=False) if md5 else None
    try:
        with urllib.request.urlopen(req, timeout=60) as resp, open(target, "wb") as out:
            while chunk := resp.read(CHUNK):
                sha.update(chunk)
                if m is not None:
                    m.update(chunk)
                out.write(chunk)
    except OSError as exc:
        raise SharkError(f"download failed: {exc}", url) from None
    if m is not None and md5 and m.hexdigest() != md5.lower():
        raise SharkError(f"md5 {m.hexdigest()} differs from the record's checksum md5:{md5}", url)
    return sha.hexdigest()


def _copy(src: Path, target: Path) -> str:
    """A bundled source (``file:PATH``, relative to the document): copied and hashed in one pass."""
    sha = hashlib.sha256()
    try:
        with open(src, "rb") as f, open(target, "wb") as out:
            while chunk := f.read(CHUNK):
                sha.update(chunk)
                out.write(chunk)
    except OSError as exc:
        raise SharkError(f"cannot read bundled source: {exc.strerror or exc}", src) from None
    return sha.hexdigest()


def _zenodo_file(src: Source) -> tuple[str, str | None]:
    base = os.environ.get(ENV_ZENODO_URL, "https://zenodo.org").rstrip("/")
    api = f"{base}/api/records/{src.record}"
    try:
        with urllib.request.urlopen(urllib.request.Request(api, headers={"Accept": "application/json"}),
                                    timeout=60) as resp:
            record = json.loads(resp.read(16 << 20))
    except (OSError, ValueError) as exc:
        raise SharkError(f"cannot read Zenodo record {src.record}: {exc}", api) from None
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, list):
        raise SharkError(f"Zenodo record {src.record} lists no files", api)
    for f in files:
        if isinstance(f, dict) and f.get("key") == src.file:
            link = (f.get("links") or {}).get("self")
            if not isinstance(link, str) or not link.startswith(("https://", "http://")):
                raise SharkError(f"Zenodo record {src.record}: file {src.file} has no download link", api)
            checksum = f.get("checksum")
            md5 = checksum[4:] if isinstance(checksum, str) and checksum.startswith("md5:") else None
            return link, md5
    raise SharkError(f"Zenodo record {src.record} has no file named {src.file}", api)


def fetch(source: str, dest: str | os.PathLike[str], pin: str | None = None,
          root: str | None = None) -> str:
    """Fetch ``source`` into ``dest`` atomically; return ``"sha256:<hex>"`` of what arrived.

    With ``pin`` (hex or ``sha256:hex``), bytes that differ are refused and ``dest`` is
    left untouched. With ``root``, ``dest`` must resolve (through symlinks) inside it.
    """
    src = parse_source(source)
    target = Path(dest).absolute()
    if root is not None:  # the stage runs in the document's directory: resolved, not lexical
        contained(root, os.fspath(dest), "import destination")
    target.parent.mkdir(parents=True, exist_ok=True)
    if root is not None:  # a symlink planted while the parents were made
        contained(root, str(target.parent), "import destination")
    want = pin.split(":", 1)[-1].lower() if pin else None
    if src.kind == "git":
        return _fetch_git(src, target, want)
    tmp = Path(tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)[1])
    try:
        if src.kind == "zenodo":
            url, md5 = _zenodo_file(src)
            digest = _download(url, tmp, md5)
        elif src.kind == "file":
            digest = _copy(Path(src.url), tmp)
        else:
            digest = _download(src.url, tmp)
        _check_pin(source, digest, want, target)
        _usual_mode(tmp)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return "sha256:" + digest


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` sets it to read it, which a
    thread creating a file meanwhile would see)."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _usual_mode(path: Path, directory: bool = False) -> None:
    """The mode a plain ``cp``/``curl -o`` would give (0644 under umask 022): the temporary
    file it was written to came from mkstemp/mkdtemp, which make 0600/0700, and an imported
    table was unreadable to the rest of the group."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def _check_pin(source: str, digest: str, want: str | None, target: Path) -> None:
    if want is not None and digest != want:
        raise SharkError(f"bytes of {source} differ from the pinned sha256:{want} (got sha256:"
                         f"{digest}); refusing to change a pinned import", target)


def _fetch_git(src: Source, target: Path, want: str | None) -> str:
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent))
    try:
        def git(*args: str, cwd: Path | None = None) -> None:
            proc = subprocess.run(["git", *args], cwd=cwd, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, check=False,
                                  env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
            if proc.returncode != 0:
                msg = proc.stdout.decode(errors="replace").strip().splitlines()[-1:] or ["failed"]
                raise SharkError(f"git {args[0]}: {msg[0]}", src.url)

        git("init", "-q", str(tmp))
        try:
            git("fetch", "-q", "--depth", "1", src.url, src.commit or "HEAD", cwd=tmp)
            rev = "FETCH_HEAD"
        except SharkError:
            # Servers that refuse a fetch by hash: fetch every ref, then find the commit.
            git("fetch", "-q", src.url, "+refs/*:refs/remotes/src/*", cwd=tmp)
            rev = src.commit or "HEAD"
        git("-c", "advice.detachedHead=false", "checkout", "-q", rev, cwd=tmp)
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp, stdout=subprocess.PIPE,
                              check=False).stdout.decode().strip()
        if src.commit and not head.startswith(src.commit):
            raise SharkError(f"commit {head} is not the requested {src.commit}", src.url)
        shutil.rmtree(tmp / ".git")
        digest = tree_digest(tmp).split(":", 1)[1]
        _check_pin(f"git+{src.url}@{src.commit}", digest, want, target)
        _usual_mode(tmp, directory=True)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return "sha256:" + digest

