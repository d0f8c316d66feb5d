"""Big sidecars are verified by worker processes: same verdicts, same messages as one process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from sharklib.attest import parallel_load, sidecar_path, verify_file
from sharklib.errors import SidecarError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_views import make_lineage


def _both(path: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    monkeypatch.setattr(parallel_load, "PARALLEL_BYTES", 10**15)
    serial = verify_file(path)
    monkeypatch.setattr(parallel_load, "PARALLEL_BYTES", 1)
    assert parallel_load.wants_parallel(path) == ((os.cpu_count() or 1) > 1)
    parallel = verify_file(path)
    assert len(parallel.steps) == len(serial.steps)
    assert [s.signers for s in parallel.steps] == [s.signers for s in serial.steps]
    return serial.problems, parallel.problems


def test_parallel_and_serial_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = make_lineage(str(tmp_path / "l"), 400, fan_in=True)
    serial, parallel = _both(result, monkeypatch)
    assert serial == parallel == []
    (tmp_path / "l" / "parts" / "part7.csv").write_text("changed")
    (tmp_path / "l" / "in" / "input300.csv").write_text("changed")
    serial, parallel = _both(result, monkeypatch)
    assert serial == parallel and len(serial) == 3
    assert any("part7.csv: input of [python combine.py parts/]" in p for p in serial)


def test_parallel_reports_the_first_bad_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = make_lineage(str(tmp_path / "l"), 300, fan_in=False)
    side = Path(sidecar_path(result))
    original = side.read_bytes()
    lines = original.splitlines(keepends=True)
    lines[250] = b'{"not": "an envelope"}\n'
    lines[200] = lines[10]
    side.write_bytes(b"".join(lines))
    good_251 = original.splitlines(keepends=True)[250]
    for threshold in (10**15, 1):  # one process, then workers: the same first error
        monkeypatch.setattr(parallel_load, "PARALLEL_BYTES", threshold)
        with pytest.raises(SidecarError) as exc:
            verify_file(result)
        assert exc.value.line == 251 and "wrong payload type" in str(exc.value)
    lines[250] = good_251
    side.write_bytes(b"".join(lines))
    with pytest.raises(SidecarError) as exc:
        verify_file(result)
    assert exc.value.line == 201 and "duplicate attestation" in str(exc.value)
    lines[200] = b"garbage\n"
    side.write_bytes(b"".join(lines))
    with pytest.raises(SidecarError) as exc:
        verify_file(result)
    assert exc.value.line == 201 and "malformed JSON" in str(exc.value)


def test_a_bad_line_in_the_main_process_piece(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The verifying process checks the first piece itself: its errors are reported, and the
    first bad line wins over a worker's later one, as in one process."""
    result = make_lineage(str(tmp_path / "l"), 300, fan_in=False)
    side = Path(sidecar_path(result))
    lines = side.read_bytes().splitlines(keepends=True)
    good_281 = lines[280]
    lines[4] = b'{"not": "an envelope"}\n'
    lines[280] = b"garbage\n"
    side.write_bytes(b"".join(lines))
    for threshold in (10**15, 1):
        monkeypatch.setattr(parallel_load, "PARALLEL_BYTES", threshold)
        with pytest.raises(SidecarError) as exc:
            verify_file(result)
        assert exc.value.line == 5 and "wrong payload type" in str(exc.value)
    lines[4], lines[280] = lines[3], good_281
    side.write_bytes(b"".join(lines))
    with pytest.raises(SidecarError) as exc:
        verify_file(result)
    assert exc.value.line == 5 and "duplicate attestation" in str(exc.value)


def test_pieces_are_whole_lines_numbered_from_one() -> None:
    data = b"head line naming every input " * 50 + b"\na\nbb\nccc\nd"
    for parts in (1, 2, 3, 8):
        pieces = parallel_load._bounds(data, parts)
        assert b"".join(data[a:b] for a, b, _ in pieces) == data
        assert all(data.count(b"\n", 0, a) + 1 == first for a, _, first in pieces)
        assert all(a == 0 or data[a - 1:a] == b"\n" for a, _, _ in pieces)
    assert [first for _, _, first in parallel_load._bounds(data, 2)] == [1, 3]


def test_a_forged_statement_gets_no_file_it_names_hashed(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A sidecar edited to name a file outside the project (``/etc/shadow``) as an input used
    to get that file hashed and 12 hex digits of its digest printed by ``verify``; a statement
    whose signature does not verify is reported, and what it names is not looked at."""
    import base64
    import hashlib
    import json

    secret = tmp_path / "secret.txt"
    secret.write_text("the user's secret\n")
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    result = make_lineage(str(tmp_path / "l"), 300, fan_in=False)
    side = Path(sidecar_path(result))
    lines = side.read_bytes().splitlines(keepends=True)
    envelope = json.loads(lines[-1])
    statement = json.loads(base64.b64decode(envelope["payload"]))
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    forged = next(d for d in deps if (d.get("annotations") or {}).get("role") == "input")
    forged["uri"], forged["name"] = secret.as_uri(), str(secret)
    forged["digest"] = {"sha256": "0" * 64}
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    lines[-1] = json.dumps(envelope).encode() + b"\n"
    side.write_bytes(b"".join(lines))
    serial, parallel = _both(result, monkeypatch)
    for problems in (serial, parallel):
        assert any("does not verify" in p for p in problems), problems
        assert not any(digest[:12] in p or str(secret) in p for p in problems), problems
