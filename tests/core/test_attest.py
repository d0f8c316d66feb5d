"""Keys, DSSE envelopes, sidecar bundles and verification with real signatures and files."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from sharklib.attest import (
    attest_run,
    attestation_digest,
    countersign,
    default_key_path,
    import_public_key,
    input_attestation,
    load_signing_key,
    read_bundle,
    sidecar_path,
    verify_file,
)
from sharklib.errors import KeyMaterialError, SharkError, SidecarError
from sharklib.model import Artifact, Output, Run


def _file(p: Path, data: bytes) -> Artifact:
    p.write_bytes(data)
    return Artifact(str(p), hashlib.sha256(data).hexdigest(), len(data))


def _step(tmp: Path, argv: list[str], inputs: list[Path], out: Path, data: bytes) -> Run:
    arts = []
    for i in inputs:
        raw = i.read_bytes()
        sha = hashlib.sha256(raw).hexdigest()
        arts.append(Artifact(str(i), sha, len(raw), attestation=input_attestation(str(i), sha)))
    o = _file(out, data)
    run = Run(run_id=f"run-{out.name}", argv=argv, cwd=str(tmp), started=time.time(),
              ended=time.time(), exit_status=0, inputs=arts,
              outputs=[Output(o.path, o.sha256, o.size, inputs=[a.path for a in arts])])
    attest_run(run)
    return run


def _pipeline(tmp: Path) -> Path:
    raw = tmp / "raw.txt"
    raw.write_bytes(b"1\n2\n3\n")
    a = tmp / "a.txt"
    _step(tmp, ["gen.py"], [raw], a, b"A")
    b = tmp / "b.txt"
    _step(tmp, ["clean.py"], [a], b, b"B")
    c = tmp / "c.txt"
    _step(tmp, ["report.py"], [a, b], c, b"C")
    return c


def test_key_created_once_with_private_permissions(capsys: pytest.CaptureFixture[str]) -> None:
    k1 = load_signing_key()
    assert (default_key_path().stat().st_mode & 0o777) == 0o600
    assert k1.keyid[:16] in capsys.readouterr().err
    assert load_signing_key().keyid == k1.keyid
    assert capsys.readouterr().err == ""


def test_explicit_missing_key_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARKLIB_KEY", str(tmp_path / "nope.pem"))
    with pytest.raises(KeyMaterialError, match=r"nope\.pem"):
        load_signing_key()


def test_corrupt_key_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyMaterialError) as exc:
        load_signing_key(bad)
    assert "\n" not in str(exc.value) and "bad.pem" in str(exc.value)


def test_sidecar_folds_lineage_deduplicated(tmp_path: Path) -> None:
    c = _pipeline(tmp_path)
    bundle = read_bundle(sidecar_path(c))
    assert len(bundle.entries) == 3  # c, b, a; a appears twice upstream but once in the file
    assert bundle.head.subject_digest == hashlib.sha256(b"C").hexdigest()
    lines = Path(sidecar_path(c)).read_bytes().splitlines()
    assert len(lines) == 3
    names = {e.subject_name for e in bundle.entries}
    assert names == {"a.txt", "b.txt", "c.txt"}


def test_verify_ok_then_reports_changes(tmp_path: Path) -> None:
    c = _pipeline(tmp_path)
    assert verify_file(c).ok
    (tmp_path / "a.txt").write_bytes(b"edited")
    rep = verify_file(c)
    assert not rep.ok
    assert any("a.txt" in p and "changed" in p for p in rep.problems)


def test_verify_detects_tampered_payload(tmp_path: Path) -> None:
    c = _pipeline(tmp_path)
    side = Path(sidecar_path(c))
    lines = side.read_bytes().splitlines()
    env = json.loads(lines[1])
    stmt = json.loads(base64.b64decode(env["payload"]))
    stmt["predicate"]["buildDefinition"]["externalParameters"]["argv"] = ["evil.py"]
    env["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
    lines[1] = json.dumps(env).encode()
    side.write_bytes(b"\n".join(lines) + b"\n")
    rep = verify_file(c)
    assert not rep.ok
    assert any(":2 [evil.py]" in p and "does not verify" in p for p in rep.problems)


def test_verify_unknown_signer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = _pipeline(tmp_path)
    rep = verify_file(c, keys={})
    assert not rep.ok and any("unknown key" in p for p in rep.problems)


def test_countersign_keeps_attestation_digest(tmp_path: Path) -> None:
    from sharklib.attest.keys import generate_key

    c = _pipeline(tmp_path)
    head = read_bundle(sidecar_path(c)).head
    other = generate_key(tmp_path / "institution.pem")
    env2 = countersign(head.envelope, other)
    assert attestation_digest(env2) == head.digest
    assert len(env2["signatures"]) == 2
    import_public_key(tmp_path / "institution.pem", name="institution")
    from sharklib.attest import check_signatures, trusted_keys

    good, bad = check_signatures(env2, trusted_keys())
    assert set(good) == {other.keyid, load_signing_key().keyid} and not bad


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"{not json\n", "malformed JSON"),
        (b'{"payloadType": "text/plain", "payload": "", "signatures": []}\n', "wrong payload type"),
        (b'{"payloadType": "application/vnd.in-toto+json", "payload": "!!!", "signatures": []}\n',
         "undecodable payload"),
        (b"[1,2,3]\n", "not a DSSE envelope"),
        (b"", "empty sidecar"),
    ],
)
def test_bad_sidecars_are_one_line_errors(tmp_path: Path, content: bytes, needle: str) -> None:
    side = tmp_path / "x.csv.intoto.jsonl"
    side.write_bytes(content)
    with pytest.raises(SidecarError) as exc:
        read_bundle(side)
    msg = str(exc.value)
    assert needle in msg and str(side) in msg and "\n" not in msg


def test_hostile_subject_name_with_dotdot(tmp_path: Path) -> None:
    c = _pipeline(tmp_path)
    side = Path(sidecar_path(c))
    env = json.loads(side.read_bytes().splitlines()[0])
    stmt = json.loads(base64.b64decode(env["payload"]))
    stmt["subject"][0]["name"] = "../../etc/passwd"
    env["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
    side.write_bytes(json.dumps(env).encode() + b"\n")
    with pytest.raises(SidecarError, match="escapes"):
        read_bundle(side)


def test_enormous_line_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sharklib.attest.sidecar as sc

    monkeypatch.setattr(sc, "MAX_LINE", 1000)
    side = tmp_path / "big.intoto.jsonl"
    side.write_bytes(b"x" * 5000 + b"\n")
    with pytest.raises(SidecarError, match=":1: line longer"):
        read_bundle(side)


def test_truncated_sidecar_names_line(tmp_path: Path) -> None:
    c = _pipeline(tmp_path)
    side = Path(sidecar_path(c))
    data = side.read_bytes()
    side.write_bytes(data[: len(data) - 40])
    with pytest.raises(SidecarError, match=r":3: "):
        read_bundle(side)


def test_read_only_directory_is_one_error(tmp_path: Path) -> None:
    import subprocess

    d = tmp_path / "ro"
    d.mkdir()
    out = d / "o.txt"
    a = _file(out, b"o")
    if os.geteuid() == 0:
        # root ignores permission bits: make the directory read-only with a read-only bind mount
        if subprocess.run(["mount", "--bind", str(d), str(d)], capture_output=True).returncode:
            pytest.skip("cannot bind-mount to make a read-only directory")
        subprocess.run(["mount", "-o", "remount,ro,bind", str(d)], check=True)
        undo = ["umount", str(d)]
    else:
        d.chmod(0o500)
        undo = ["chmod", "700", str(d)]
    try:
        run = Run(run_id="r", argv=["x"], cwd=str(tmp_path), started=0.0, ended=1.0, exit_status=0,
                  outputs=[Output(a.path, a.sha256, a.size)])
        with pytest.raises(SharkError, match="cannot write sidecar") as exc:
            attest_run(run)
        assert "\n" not in str(exc.value)
    finally:
        subprocess.run(undo, check=True)


def test_input_attestation_requires_matching_digest(tmp_path: Path) -> None:
    c = _pipeline(tmp_path)
    sha = hashlib.sha256(b"C").hexdigest()
    assert input_attestation(str(c), sha) == read_bundle(sidecar_path(c)).head.digest
    assert input_attestation(str(c), "0" * 64) is None


def test_key_read_directly_or_through_cryptography_is_the_same(tmp_path: Path) -> None:
    """The own key's PKCS#8 seed is read without cryptography's PEM parser; others still parse."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sharklib.attest.keys import _ed25519_seed

    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    assert _ed25519_seed(pem) == private.private_bytes_raw()
    crlf = tmp_path / "crlf.pem"
    crlf.write_bytes(pem.replace(b"\n", b"\r\n") + b"  \n")
    key = load_signing_key(crlf)
    assert key.public.public_bytes_raw() == private.public_key().public_bytes_raw()
    assert key.keyid == hashlib.sha256(private.public_key().public_bytes_raw()).hexdigest()
    locked = tmp_path / "locked.pem"
    locked.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.BestAvailableEncryption(b"pw")))
    assert _ed25519_seed(locked.read_bytes()) is None
    with pytest.raises(KeyMaterialError):
        load_signing_key(locked)
    other = tmp_path / "ec.pem"
    other.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with pytest.raises(KeyMaterialError, match="not an Ed25519 private key"):
        load_signing_key(other)
