"""``export --format ro-crate`` checked by rocrate-validator (offline), detached and with data.

The validator runs offline: CI has no network, and its offline mode answers
HTTP only from its own cache. The one remote document a crate needs is its
JSON-LD ``@context``; the ``rocrate`` package ships that very document
(``rocrate/data/ro-crate.jsonld``, whose ``@id`` is the context URL), so it is
put into the validator's cache as that URL's response before validating.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from viewkit import shark

VALIDATOR = Path(sys.executable).with_name("rocrate-validator")


def _seed_context(cache: Path) -> str:
    """Put the RO-Crate context shipped with ``rocrate`` into a requests-cache sqlite file."""
    import requests
    import rocrate
    import urllib3
    from requests.adapters import HTTPAdapter
    from requests_cache import CachedSession

    body = (Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld").read_bytes()
    url = json.loads(body)["@id"]
    session = CachedSession(cache_name=str(cache), backend="sqlite", expire_after=-1,
                            allowable_methods=("GET",))
    request = requests.Request("GET", url).prepare()
    raw = urllib3.HTTPResponse(body=io.BytesIO(body), status=200, preload_content=False,
                               headers={"Content-Type": "application/ld+json"}, request_url=url)
    response = HTTPAdapter().build_response(request, raw)
    assert response.content == body
    session.cache.save_response(response)
    session.close()
    return url


def validate(crate: Path, cache: Path, *profile: str) -> dict:  # type: ignore[type-arg]
    report = crate.parent / f"{crate.name}-report.json"
    proc = subprocess.run([str(VALIDATOR), "-y", "--disable-color", "validate", "--offline",
                           "--cache-path", str(cache), *profile, "-f", "json", "-o", str(report),
                           str(crate)], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, COLUMNS="200"))
    assert report.exists(), proc.stdout + proc.stderr
    result = json.loads(report.read_text())
    issues = [f"{i.get('severity')}: {i.get('message')}" for i in result.get("issues", [])]
    assert result["passed"] and proc.returncode == 0, "\n".join(issues) or proc.stderr
    return result  # type: ignore[no-any-return]


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """A captured step that read a file and listed a directory (a Dataset in the crate)."""
    if not VALIDATOR.exists():
        pytest.skip(f"rocrate-validator (test extra roc-validator) is not installed: {VALIDATOR}")
    proj = tmp_path / "proj"
    (proj / ".git").mkdir(parents=True)
    (proj / "work" / "shards").mkdir(parents=True)
    for name in ("a", "b"):
        (proj / "work" / "shards" / f"{name}.txt").write_text(name * 3)
    (proj / "count.py").write_text(
        "import os\n"
        "names = sorted(os.listdir('work/shards'))\n"
        "text = open('work/shards/a.txt').read()\n"
        "os.makedirs('results', exist_ok=True)\n"
        "open('results/n.txt', 'w').write(f'{len(names)} {text}')\n")
    r = shark("run", "count.py", cwd=proj)
    assert r.returncode == 0, r.stderr
    return proj / "results" / "n.txt"


def test_a_crate_without_data_is_a_valid_detached_crate(recorded: Path, tmp_path: Path) -> None:
    cache = tmp_path / "validator-cache"
    _seed_context(cache)
    crate = tmp_path / "crate"
    r = shark("export", str(recorded), "--format", "ro-crate", "-o", str(crate))
    assert r.returncode == 0, r.stderr
    # no payload: no empty work/… directories, nothing but the metadata file
    assert sorted(p.name for p in crate.rglob("*")) == ["ro-crate-metadata.json"]
    graph = {e["@id"]: e for e in
             json.loads((crate / "ro-crate-metadata.json").read_text())["@graph"]}
    proj = recorded.parent.parent
    assert graph[(proj / "work" / "shards" / "a.txt").as_uri()]["@type"] == "File"
    assert graph[(proj / "work" / "shards").as_uri() + "/"]["@type"] == "Dataset"
    assert graph[recorded.as_uri()]["sha256"]
    # the RO-Crate version it declares, and the Process Run Crate profile's own requirements
    # (that profile's base in the validator is RO-Crate 1.1, which the rocrate library no
    # longer writes: -nh checks its rules without re-checking the older base spec)
    assert validate(crate, cache, "-p", "ro-crate-1.3")["statistics"]["total_checks"] > 30
    validate(crate, cache, "-p", "process-run-crate-0.5", "-nh")


def test_a_crate_with_data_is_valid_and_carries_the_files(recorded: Path, tmp_path: Path) -> None:
    cache = tmp_path / "validator-cache"
    _seed_context(cache)
    crate = tmp_path / "crate"
    r = shark("export", str(recorded), "--format", "ro-crate", "-o", str(crate), "--with-data")
    assert r.returncode == 0, r.stderr
    assert (crate / "results" / "n.txt").read_text() == "2 aaa"
    assert (crate / "work" / "shards" / "a.txt").read_text() == "aaa"
    validate(crate, cache, "-p", "ro-crate-1.3")
