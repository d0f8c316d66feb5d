"""Credentials in download URLs never reach a record (issue 15, item 8).

An unmodified script fetches one file from a real loopback server through every recording
client (requests, urllib, httpx, fsspec) with a password in the URL and the usual credential
parameters in its query. Nothing sharklib writes (the signed sidecar, its decoded statement,
the run cache's index and objects, ``sharklib show``) may contain any of the secrets, while
the download is still identified by its body's digest.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from capture_libs_support import PAYLOAD, run_captured, sha256

from sharklib.model import Download, GitInfo, redact_url

SECRETS = ["PASS1word", "KEYsecret2", "TOKsecret3", "SIGsecret4", "AMZsig5", "AMZcred6",
           "AMZtok7", "APIKEY8", "ACCESS9"]
QUERY = ("api_key=KEYsecret2&token=TOKsecret3&sig=SIGsecret4&X-Amz-Signature=AMZsig5"
         "&X-Amz-Credential=AMZcred6&X-Amz-Security-Token=AMZtok7&apikey=APIKEY8"
         "&access_token=ACCESS9&part=1")


def _need(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed in this environment")


def _texts(root: Path) -> list[tuple[Path, bytes]]:
    """Every file under ``root`` as bytes, zstd objects decompressed."""
    import zstandard

    out = []
    for p in root.rglob("*"):
        if not p.is_file():
            continue
        data = p.read_bytes()
        if data[:4] == b"\x28\xb5\x2f\xfd":
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        out.append((p, data))
    return out


def _sidecar_statements(sidecar: Path) -> bytes:
    """The sidecar's bytes plus every envelope's decoded payload (the signed statement)."""
    raw = sidecar.read_bytes()
    decoded = [raw]
    for line in raw.splitlines():
        env = json.loads(line)
        for key in ("payload",):
            if key in env:
                decoded.append(base64.b64decode(env[key]))
        if "dsseEnvelope" in env:
            decoded.append(base64.b64decode(env["dsseEnvelope"]["payload"]))
    return b"\n".join(decoded)


CLIENTS = {
    "requests": "import requests\ndata = requests.get(URL).content\n",
    "urllib": "import urllib.request\ndata = urllib.request.urlopen(URL).read()\n",
    "httpx": "import httpx\ndata = httpx.get(URL).content\n",
    "fsspec": "import fsspec\nwith fsspec.open(URL, 'rb') as f:\n    data = f.read()\n",
}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_no_secret_of_a_download_url_is_recorded(tmp_path: Path, http_server: str,
                                                 shark_home: Path, client: str) -> None:
    _need(client)
    if client == "fsspec":
        _need("aiohttp")
    host = http_server.removeprefix("http://")
    # urllib takes no user:password in a URL (it looks the whole authority up as a host name)
    auth = "" if client == "urllib" else "me:PASS1word@"
    url = f"http://{auth}{host}/data.bin?{QUERY}"
    (tmp_path / ".git").mkdir()
    script = f"URL = {url!r}\n" + CLIENTS[client] + "open('out.bin', 'wb').write(data)\n"
    captured = run_captured(tmp_path, script, shim=False)
    assert captured.proc.returncode == 0, captured.proc.stderr
    assert (tmp_path / "out.bin").read_bytes() == PAYLOAD

    downloads = [d for d in captured.run.downloads if d.sha256 == sha256(PAYLOAD)]
    assert downloads, [d.url for d in captured.run.downloads]
    shown_auth = "me:REDACTED@" if auth else ""
    assert downloads[0].url.startswith(f"http://{shown_auth}{host}/data.bin?api_key=REDACTED")
    assert downloads[0].url.endswith("&part=1")

    places = [(tmp_path / "out.bin.intoto.jsonl",
               _sidecar_statements(tmp_path / "out.bin.intoto.jsonl"))]
    places += _texts(shark_home)
    places += [(p, p.read_bytes()) for p in (tmp_path.parent / f"{tmp_path.name}-session").rglob("*")
               if p.is_file()]
    show = subprocess.run([sys.executable, "-m", "sharklib", "show", "out.bin"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "400"})
    assert show.returncode == 0, show.stderr
    places.append((Path("sharklib show"), (show.stdout + show.stderr).encode()))
    assert any(b"REDACTED" in data for _, data in places)
    for where, data in places:
        for secret in SECRETS:
            assert secret.encode() not in data, f"{secret} recorded in {where}"


def test_the_trace_proxy_log_and_records_are_redacted(tmp_path: Path) -> None:
    """The proxy's downloads go through the same function (read back from its log)."""
    from sharklib.trace.proxy import read_downloads

    log = tmp_path / "proxy.jsonl"
    log.write_text(json.dumps({"url": f"https://u:PASS1word@h/f?{QUERY}", "sha256": "ab",
                               "method": "GET", "time": 1.0}) + "\n")
    ((_, d),) = read_downloads(str(log))
    assert d.url == ("https://u:REDACTED@h/f?api_key=REDACTED&token=REDACTED&sig=REDACTED"
                     "&X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED"
                     "&X-Amz-Security-Token=REDACTED&apikey=REDACTED&access_token=REDACTED&part=1")


@pytest.mark.parametrize(("url", "expected"), [
    ("https://h/a/b.csv?x=1", "https://h/a/b.csv?x=1"),
    ("https://ghp_TOKEN@github.com/o/r.git", "https://REDACTED@github.com/o/r.git"),
    ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
    ("git@github.com:o/r.git", "git@github.com:o/r.git"),
    ("s3://bucket/key.csv", "s3://bucket/key.csv"),
    ("https://h/p?Signature=s&Expires=1&GoogleAccessId=g", "https://h/p?Signature=REDACTED&Expires=1&GoogleAccessId=REDACTED"),
    ("https://h/cb#access_token=t&state=1", "https://h/cb#access_token=REDACTED&state=1"),
    ("https://h/p?password=&monkey=1&private_token=t", "https://h/p?password=&monkey=1&private_token=REDACTED"),
    ("https://h/p?jwt=eyJh.eyJz.sig&n=2", "https://h/p?jwt=REDACTED&n=2"),
])
def test_redaction_keeps_everything_but_the_credentials(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact_url(expected) == expected
    assert Download(url=url).url == expected
    assert GitInfo(root="/r", remote=url).remote == expected
