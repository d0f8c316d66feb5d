"""Hostile and broken sidecars: one line on stderr naming the file and line, exit 2, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from viewkit import Pipeline, shark

from sharklib.attest import envelope_line, load_signing_key, sidecar_path, sign_statement
from sharklib.model import Output, Run, run_to_statement

COMMANDS = [["show"], ["verify"], ["why"], ["graph", "--format", "json"],
            ["export", "--format", "prov-json"]]


def _statement(out: str, sha: str, inputs: list[tuple[str, str]], run_id: str | None = None,
               cwd: str = "/tmp") -> dict:
    from sharklib.model import Artifact

    o = Output(path=out, sha256=sha, inputs=[p for p, _ in inputs])
    run = Run(run_id=run_id or str(uuid.uuid4()), argv=["python", "x.py"], cwd=cwd, started=1.0,
              ended=2.0, exit_status=0, inputs=[Artifact(p, s) for p, s in inputs], outputs=[o])
    return run_to_statement(run, o)


def _signed_line(statement: dict) -> bytes:
    return envelope_line(sign_statement(statement, load_signing_key())) + b"\n"


def _assert_one_line_error(args: list[str], target: Path, sidecar: Path, line: int | None,
                           words: str) -> None:
    r = shark(*args, str(target))
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    where = f"{sidecar}:{line}:" if line is not None else f"{sidecar}:"
    assert r.stderr.startswith(f"sharklib: error: {where}"), r.stderr
    assert words in r.stderr, r.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_truncated_sidecar(pipeline: Pipeline, args: list[str]) -> None:
    side = Path(sidecar_path(str(pipeline.report)))
    data = side.read_bytes()
    side.write_bytes(data[: len(data) - 200])
    _assert_one_line_error(args, pipeline.report, side, 3, "malformed JSON")


@pytest.mark.parametrize("args", COMMANDS[:2], ids=lambda a: a[0])
def test_unknown_predicate_type(pipeline: Pipeline, args: list[str]) -> None:
    side = Path(sidecar_path(str(pipeline.report)))
    st = _statement(str(pipeline.root / "z"), "0" * 64, [])
    st["predicateType"] = "https://example.org/not-slsa/v9"
    with open(side, "ab") as fh:
        fh.write(_signed_line(st))
    _assert_one_line_error(args, pipeline.report, side, 4, "unknown predicate type")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_cycle_in_lineage(tmp_path: Path, args: list[str]) -> None:
    x, y = tmp_path / "x.csv", tmp_path / "y.csv"
    x.write_text("x")
    a = _statement(str(x), "a" * 64, [(str(y), "b" * 64)])
    b = _statement(str(y), "b" * 64, [(str(x), "a" * 64)])
    side = Path(sidecar_path(str(x)))
    side.write_bytes(_signed_line(a) + _signed_line(b))
    _assert_one_line_error(args, x, side, None, "lineage has a cycle (line 1 -> line 2 -> line 1)")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_duplicate_attestation(pipeline: Pipeline, args: list[str]) -> None:
    side = Path(sidecar_path(str(pipeline.report)))
    lines = side.read_bytes().splitlines(keepends=True)
    side.write_bytes(b"".join([*lines, lines[1]]))
    _assert_one_line_error(args, pipeline.report, side, 4, "duplicate attestation")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_conflicting_attestations(pipeline: Pipeline, args: list[str]) -> None:
    side = Path(sidecar_path(str(pipeline.report)))
    second = json.loads(side.read_bytes().splitlines()[1])
    import base64

    st = json.loads(base64.b64decode(second["payload"]))
    st["subject"][0]["digest"]["sha256"] = "f" * 64
    with open(side, "ab") as fh:
        fh.write(_signed_line(st))
    _assert_one_line_error(args, pipeline.report, side, 4, "conflicting attestations")


@pytest.mark.parametrize("newlines", [True, False], ids=["random", "one-line"])
def test_100_mb_of_junk(tmp_path: Path, newlines: bool) -> None:
    target = tmp_path / "big.csv"
    target.write_text("x")
    side = Path(sidecar_path(str(target)))
    with open(side, "wb") as fh:
        chunk = os.urandom(1 << 20) if newlines else b"A" * (1 << 20)
        for _ in range(100):
            fh.write(chunk)
    words = "malformed JSON" if newlines else "line longer than 32 MiB"
    for args in (["show"], ["verify"]):
        _assert_one_line_error(args, target, side, 1, words)


def test_no_sidecar_and_hostile_subject(tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text("x")
    r = shark("show", str(plain))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no sidecar" in r.stderr
    st = _statement(str(plain), "0" * 64, [])
    st["subject"][0]["name"] = "../../etc/passwd"
    Path(sidecar_path(str(plain))).write_bytes(_signed_line(st))
    _assert_one_line_error(["verify"], plain, Path(sidecar_path(str(plain))), 1,
                           "escapes its directory")


ALL_READERS = [*COMMANDS, ["export", "--format", "ro-crate", "-o", "crate"],
               ["pipeline", "from"], ["sign", "--countersign"]]


def _one_reader(args: list[str], target: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one reading command; ``sign`` gets a key first (its creation notice is not an error)."""
    if args[0] == "sign":
        assert shark("keys", "generate").returncode == 0
    return shark(*args, str(target), cwd=cwd, timeout=30)


def _deep_statement(x: Path) -> dict:
    """A valid-looking statement whose predicate holds JSON nested 200,000 deep (as text)."""
    st = _statement(str(x), "a" * 64, [])
    st["predicate"]["nested"] = "@@DEEP@@"
    return st


@pytest.mark.parametrize("where", ["line", "payload", "payload-field"])
@pytest.mark.parametrize("args", ALL_READERS, ids=lambda a: "-".join(a[:2]))
def test_deeply_nested_json_is_one_line(tmp_path: Path, args: list[str], where: str) -> None:
    """json's decoder recurses per level: a hostile sidecar used to crash with RecursionError."""
    import base64

    from sharklib.model.provenance import PAYLOAD_TYPE

    x = tmp_path / "x.csv"
    x.write_text("1\n")
    side = Path(sidecar_path(str(x)))
    deep = "[" * 200_000 + "]" * 200_000
    if where == "line":
        side.write_text(deep + "\n")
    else:
        if where == "payload":
            payload = deep.encode()
        else:
            payload = json.dumps(_deep_statement(x)).replace('"@@DEEP@@"', deep).encode()
        env = {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
               "signatures": []}
        side.write_text(json.dumps(env) + "\n")
    r = _one_reader(args, x, tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"sharklib: error: {side}:1: "), r.stderr
    assert "nested too deeply" in r.stderr


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
@pytest.mark.parametrize("args", ALL_READERS, ids=lambda a: "-".join(a[:2]))
def test_sidecar_not_a_regular_file(tmp_path: Path, args: list[str], kind: str) -> None:
    """A FIFO as the sidecar used to block forever (no writer); /dev/zero would never end."""
    y = tmp_path / "y.csv"
    y.write_text("1\n")
    side = Path(sidecar_path(str(y)))
    if kind == "fifo":
        os.mkfifo(side)
    elif kind == "directory":
        side.mkdir()
    else:
        side.symlink_to("/dev/zero")
    r = _one_reader(args, y, tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr == f"sharklib: error: {side}: not a regular file (a sidecar must be one)\n"


@pytest.mark.parametrize("args", [*COMMANDS, ["pipeline", "from"]], ids=lambda a: a[0])
def test_swapped_sidecars_are_refused(pipeline: Pipeline, args: list[str]) -> None:
    """A sidecar of another file used to be shown as this file's lineage (its step, STALE)."""
    a, b = pipeline.clean, pipeline.stats
    sa, sb = Path(sidecar_path(str(a))), Path(sidecar_path(str(b)))
    da, db = sa.read_bytes(), sb.read_bytes()
    sa.write_bytes(db)
    sb.write_bytes(da)
    r = shark(*args, str(b))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr == (f"sharklib: error: {sb}:1: stats.json.intoto.jsonl does not record "
                        "stats.json (its attestation is for clean.csv)\n"), r.stderr


def test_renamed_or_moved_file_keeps_its_lineage(pipeline: Pipeline, tmp_path: Path) -> None:
    """Not a swap: the same bytes under another name, or the same name in another directory."""
    renamed = tmp_path / "published-stats.json"
    renamed.write_bytes(pipeline.stats.read_bytes())
    Path(sidecar_path(str(renamed))).write_bytes(Path(sidecar_path(str(pipeline.stats))).read_bytes())
    moved = tmp_path / "elsewhere" / "stats.json"
    moved.parent.mkdir()
    moved.write_text("changed since\n")
    Path(sidecar_path(str(moved))).write_bytes(Path(sidecar_path(str(pipeline.stats))).read_bytes())
    for target in (renamed, moved):
        r = shark("show", str(target))
        assert r.returncode == 0, r.stderr
        assert "stats.py" in r.stdout
    # renamed *and* changed: nothing says this sidecar is about that file
    renamed.write_text("other bytes\n")
    r = shark("show", str(renamed))
    assert r.returncode == 2 and "does not record published-stats.json" in r.stderr, r.stderr
