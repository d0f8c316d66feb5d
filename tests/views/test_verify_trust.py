"""verify, trust policies, countersigning and keys: real keys, real signatures, the real CLI."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from viewkit import Pipeline, build_pipeline, shark

from sharklib.attest import attestation_digest, load_signing_key, read_bundle, sidecar_path
from sharklib.attest.keys import generate_key


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in Path(sidecar_path(str(path))).read_text().splitlines()]


def _write_lines(path: Path, envs: list[dict]) -> None:
    Path(sidecar_path(str(path))).write_text("".join(json.dumps(e) + "\n" for e in envs))


def test_verify_ok_then_names_the_changed_file(pipeline: Pipeline) -> None:
    r = shark("verify", str(pipeline.report))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verified: 3 attestations, 3 good signatures" in r.stdout
    pipeline.stats.write_text('{"mean": 99}')
    r = shark("verify", str(pipeline.report))
    assert r.returncode == 1
    assert "FAILED" in r.stdout
    assert f"{pipeline.stats}: output of [python stats.py" in r.stdout.replace("\n", "")
    assert "changed since it was recorded" in r.stdout


def test_verify_names_the_step_whose_signature_fails(pipeline: Pipeline) -> None:
    envs = _lines(pipeline.report)
    # corrupt the signature of line 2 (an upstream step) without touching its payload
    sig = bytearray(base64.b64decode(envs[1]["signatures"][0]["sig"]))
    sig[0] ^= 0xFF
    envs[1]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    _write_lines(pipeline.report, envs)
    r = shark("verify", str(pipeline.report))
    assert r.returncode == 1
    out = r.stdout.replace("\n", "")
    assert ".intoto.jsonl:2 [python" in out and "does not verify" in out


def test_unsigned_and_unknown_key_lineages_fail(pipeline: Pipeline, tmp_path: Path) -> None:
    envs = _lines(pipeline.report)
    envs[2]["signatures"] = []
    _write_lines(pipeline.report, envs)
    r = shark("verify", str(pipeline.report))
    assert r.returncode == 1
    assert ":3 [python" in r.stdout.replace("\n", "") and "no signatures" in r.stdout
    # a lineage signed by a stranger's key
    stranger = generate_key(tmp_path / "stranger.pem")
    other = build_pipeline(tmp_path / "other", keys=(stranger, stranger, stranger))
    r = shark("verify", str(other.report))
    assert r.returncode == 1
    assert "not signed by a trusted key" in r.stdout and "unknown key" in r.stdout


POLICY = """
[keys.alice]
id = "{alice}"
{alice_expiry}
[keys.institution]
pem = "inst.pub.pem"
[keys.bob]
imported = "bob"

[groups]
lab = ["alice", "bob"]

[[rule]]
name = "published result"
outputs = ["results/report.txt"]
signers = ["institution", "lab"]
threshold = 2

[[rule]]
name = "intermediate"
commands = ["python clean.py *"]
signers = ["lab"]

[policy]
unmatched = "{unmatched}"
"""


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    inst = generate_key(tmp_path / "inst.pem")
    bob = generate_key(tmp_path / "bob.pem")
    (tmp_path / "inst.pub.pem").write_bytes(inst.public_pem())
    (tmp_path / "bob.pub.pem").write_bytes(bob.public_pem())
    r = shark("keys", "import", str(tmp_path / "bob.pub.pem"), "--name", "bob")
    assert r.returncode == 0, r.stderr
    return {"inst": tmp_path / "inst.pem", "bob": tmp_path / "bob.pem"}


def _policy(tmp_path: Path, unmatched: str = "trusted", alice_expiry: str = "") -> Path:
    alice = load_signing_key().keyid
    p = tmp_path / "policy.toml"
    p.write_text(POLICY.format(alice=alice, unmatched=unmatched, alice_expiry=alice_expiry))
    return p


def test_policy_threshold_needs_the_institution_countersignature(
        pipeline: Pipeline, keys: dict[str, Path], tmp_path: Path) -> None:
    policy = _policy(tmp_path)
    r = shark("verify", str(pipeline.report), "--trust", str(policy))
    assert r.returncode == 1
    out = r.stdout.replace("\n", "")
    assert ".intoto.jsonl:1 [python report.py" in out
    assert "rule 'published result' needs 2 valid signatures from [alice, bob, institution]; valid: alice" in out
    before = read_bundle(sidecar_path(str(pipeline.report))).head.digest
    r = shark("sign", "--countersign", str(pipeline.report), "--key", str(keys["inst"]))
    assert r.returncode == 0, r.stderr
    assert "2 signatures" in r.stdout
    after = read_bundle(sidecar_path(str(pipeline.report))).head
    assert after.digest == before, "countersigning must not change the payload"
    assert len(after.envelope["signatures"]) == 2
    r = shark("verify", str(pipeline.report), "--trust", str(policy))
    assert r.returncode == 0, r.stdout
    assert "published result" in r.stdout and "intermediate" in r.stdout


def test_policy_expired_key_and_unmatched_deny(pipeline: Pipeline, keys: dict[str, Path],
                                               tmp_path: Path) -> None:
    shark("sign", "--countersign", str(pipeline.report), "--key", str(keys["inst"]))
    policy = _policy(tmp_path, alice_expiry="expires = 2020-01-01")
    r = shark("verify", str(pipeline.report), "--trust", str(policy))
    assert r.returncode == 1
    out = r.stdout.replace("\n", "")
    assert "key 'alice' expired on 2020-01-01" in out
    assert "[python clean.py data/raw.csv data/clean.csv]: rule 'intermediate'" in out
    policy = _policy(tmp_path, unmatched="deny")
    r = shark("verify", str(pipeline.report), "--trust", str(policy))
    assert r.returncode == 1
    out = r.stdout.replace("\n", "")
    assert "[python stats.py data/clean.csv results/stats.json]: no trust rule covers this step" in out
    assert out.count("no trust rule covers") == 1


def test_policy_rejects_a_step_signed_by_a_key_outside_its_rule(
        tmp_path: Path, keys: dict[str, Path]) -> None:
    inst = load_signing_key(keys["inst"])
    p = build_pipeline(tmp_path / "p", keys=(inst, None, None))  # clean.py signed by institution only
    (tmp_path / "pp").mkdir()
    policy = _policy(tmp_path)
    r = shark("verify", str(p.report), "--trust", str(policy))
    assert r.returncode == 1
    out = r.stdout.replace("\n", "")
    assert "[python clean.py data/raw.csv data/clean.csv]: rule 'intermediate' needs 1 valid signature from [alice, bob]; valid: none" in out


@pytest.mark.parametrize("body, message", [
    ("[[rule]]\nname='x'\nsigners=['nobody']\n", "names unknown key or group 'nobody'"),
    ("[keys.a]\nid='zz'\n", "must be a 64-digit hex key id"),
    ("this is = = not toml", "not valid TOML"),
    ("[keys.a]\nimported='ghost'\n", "no imported key named 'ghost'"),
])
def test_bad_policy_is_one_line(pipeline: Pipeline, tmp_path: Path, body: str, message: str) -> None:
    policy = tmp_path / "bad.toml"
    policy.write_text(body)
    r = shark("verify", str(pipeline.report), "--trust", str(policy))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and message in r.stderr and str(policy) in r.stderr


def test_countersign_keeps_downstream_links_valid(pipeline: Pipeline, tmp_path: Path) -> None:
    inst = generate_key(tmp_path / "inst.pem")
    r = shark("sign", "--countersign", str(pipeline.clean), "--key", str(inst.path))
    assert r.returncode == 0, r.stderr
    head = read_bundle(sidecar_path(str(pipeline.clean))).head
    assert {s["keyid"] for s in head.envelope["signatures"]} == {load_signing_key().keyid, inst.keyid}
    # report's sidecar still carries the old copy with one signature, and still links and verifies
    copy = read_bundle(sidecar_path(str(pipeline.report))).by_digest[head.digest]
    assert attestation_digest(copy.envelope) == head.digest
    assert shark("verify", str(pipeline.report)).returncode == 0
    assert shark("verify", str(pipeline.clean)).returncode == 0


def test_countersign_refuses_changed_file_and_untrusted_signer(pipeline: Pipeline,
                                                                tmp_path: Path) -> None:
    inst = generate_key(tmp_path / "inst.pem")
    pipeline.stats.write_text("{}")
    r = shark("sign", "--countersign", str(pipeline.stats), "--key", str(inst.path))
    assert r.returncode == 2 and "refusing to countersign" in r.stderr
    assert r.stderr.count("\n") == 1
    stranger = generate_key(tmp_path / "s.pem")
    other = build_pipeline(tmp_path / "o", keys=(stranger, stranger, stranger))
    r = shark("sign", "--countersign", str(other.report), "--key", str(inst.path))
    assert r.returncode == 2 and "not signed by a key you trust" in r.stderr


def test_keys_created_once_0600_export_import_generate(tmp_path: Path, shark_home: Path) -> None:
    r = shark("keys", "show")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("created signing key") == 1
    key_path = shark_home / "config" / "keys" / "default.pem"
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    keyid = load_signing_key(key_path).keyid
    assert f"key id  {keyid}" in r.stdout and "BEGIN PUBLIC KEY" in r.stdout
    again = shark("keys")
    assert again.returncode == 0 and "created" not in again.stderr and keyid in again.stdout
    pem = shark("keys", "export").stdout
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert shark("keys", "export", "-o", str(tmp_path / "me.pem")).returncode == 0
    assert (tmp_path / "me.pem").read_text() == pem
    r = shark("keys", "generate", "--out", str(tmp_path / "lab.pem"))
    assert r.returncode == 0 and "created key" in r.stdout
    assert stat.S_IMODE(os.stat(tmp_path / "lab.pem").st_mode) == 0o600
    r = shark("keys", "generate", "--out", str(tmp_path / "lab.pem"))
    assert r.returncode == 2 and "already exists" in r.stderr
    lab_pub = shark("keys", "export", "--key", str(tmp_path / "lab.pem")).stdout
    (tmp_path / "lab.pub.pem").write_text(lab_pub)
    r = shark("keys", "import", str(tmp_path / "lab.pub.pem"), "--name", "lab")
    assert r.returncode == 0, r.stderr
    labid = load_signing_key(tmp_path / "lab.pem").keyid
    assert f"{labid}  lab" in shark("keys", "show").stdout
    via_env = shark("keys", "show", env={"SHARKLIB_KEY": str(tmp_path / "lab.pem")})
    assert f"key id  {labid}" in via_env.stdout
    missing = shark("keys", "show", "--key", str(tmp_path / "nope.pem"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "signing key not found" in missing.stderr
    (tmp_path / "junk.pem").write_text("not a key")
    bad = shark("keys", "import", str(tmp_path / "junk.pem"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def _failed_step_lineage(root: Path, status: int) -> tuple[Path, Path]:
    """raw -> (a step that ended with ``status``) half.csv -> (exit 0) final.csv."""
    from viewkit import record_step

    root.mkdir(parents=True)
    raw, half, final = root / "raw.csv", root / "half.csv", root / "final.csv"
    raw.write_text("a,b\n1,2\n3,4\n")
    half.write_text("a,b\n1,")  # what an interrupted writer leaves
    final.write_text("1\n")
    for name in ("convert.py", "summarize.py"):
        (root / name).write_text("pass\n")
    record_step(["python", "convert.py"], root, root / "convert.py", [raw], [half], run=False,
                exit_status=status)
    record_step(["python", "summarize.py"], root, root / "summarize.py", [half], [final], run=False)
    return half, final


@pytest.mark.parametrize("status, shown", [(1, "1"), (-2, "-2 (signal SIGINT)")])
def test_verify_fails_a_lineage_with_a_failed_step(tmp_path: Path, status: int, shown: str) -> None:
    """A result built on an interrupted or failed step used to verify with exit 0."""
    half, final = _failed_step_lineage(tmp_path / "proj", status)
    r = shark("verify", str(final))
    assert r.returncode == 1, r.stdout + r.stderr
    out = " ".join(r.stdout.split())
    assert "FAILED: 1 problem" in out
    assert (f"{final}.intoto.jsonl:2 [python convert.py]: step `python convert.py` exited "
            f"{shown}: its output may be incomplete") in out
    assert "verified" not in out
    # the failed step's own output fails too; the step after it is fine on its own terms
    assert shark("verify", str(half)).returncode == 1

    # a policy may accept failed steps explicitly, rule by rule
    own = load_signing_key().keyid
    policy = tmp_path / "trust.toml"
    policy.write_text(f'[keys.me]\nid = "{own}"\n\n[[rule]]\nname = "flaky converter"\n'
                      'commands = ["python convert.py"]\nsigners = ["me"]\nallow_failed = true\n')
    r = shark("verify", str(final), "--trust", str(policy))
    assert r.returncode == 0, r.stdout + r.stderr
    policy.write_text(f'[keys.me]\nid = "{own}"\n\n[[rule]]\nname = "x"\nsigners = ["me"]\n'
                      'allow_failed = "yes"\n')
    r = shark("verify", str(final), "--trust", str(policy))
    assert r.returncode == 2 and "allow_failed must be true or false" in r.stderr


def test_copied_tree_is_checked_where_it_is(pipeline: Pipeline, tmp_path: Path) -> None:
    """verify of a copy used to check the original's files: a tampered copy passed."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(pipeline.root, copy)
    (copy / "data" / "raw.csv").write_text("id,value\n1,999\n")
    note = (f"sharklib: note: recorded in {pipeline.root}; checking the files of this tree, "
            f"{copy}\n")
    r = shark("verify", str(copy / "results" / "report.txt"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr == note
    out = " ".join(r.stdout.split())
    assert f"{copy / 'data' / 'raw.csv'}: input of [python clean.py" in out
    assert str(pipeline.root / "data") not in out
    assert shark("verify", str(pipeline.report)).returncode == 0  # the original is untouched

    # the original gone: the copy's own files are found, not reported missing
    (copy / "data" / "raw.csv").write_bytes(pipeline.raw.read_bytes())
    shutil.rmtree(pipeline.root)
    r = shark("verify", str(copy / "results" / "report.txt"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"7 files in {copy} match the record" in " ".join(r.stdout.split())
    (copy / "results" / "stats.json").write_text("{}")
    r = shark("show", str(copy / "results" / "report.txt"))
    assert r.returncode == 0 and r.stderr == note
    assert "missing" not in r.stdout
    assert r.stdout.count("STALE") == 1 and "stats.json sha256" in r.stdout
    r = shark("why", "--json", str(copy / "results" / "report.txt"))
    states = {os.path.basename(i["path"]): i["state"] for i in json.loads(r.stdout)["inputs"]}
    assert states == {"clean.csv": "ok", "stats.json": "stale", "raw.csv": "ok"}


def test_a_key_imported_under_two_names(pipeline: Pipeline, tmp_path: Path, shark_home: Path) -> None:
    """The second name silently replaced the first: policies naming the first stopped loading."""
    from sharklib.attest.keys import public_pem, trusted_dir

    (tmp_path / "me.pub.pem").write_bytes(public_pem(load_signing_key().public))
    other = generate_key(tmp_path / "other.pem")
    (tmp_path / "other.pub.pem").write_bytes(public_pem(other.public))
    assert shark("keys", "import", str(tmp_path / "me.pub.pem"), "--name", "alpha").returncode == 0
    assert shark("keys", "import", str(tmp_path / "me.pub.pem"), "--name", "alpha").returncode == 0
    r = shark("keys", "import", str(tmp_path / "me.pub.pem"), "--name", "beta")
    kid = load_signing_key().keyid
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"key {kid[:16]} is already trusted as 'alpha'" in r.stderr
    r = shark("keys", "import", str(tmp_path / "other.pub.pem"), "--name", "alpha")
    assert r.returncode == 2 and "the name 'alpha' is already given to key" in r.stderr
    assert sorted(p.name for p in trusted_dir().iterdir()) == [f"alpha.{kid[:16]}.pem"]
    policy = tmp_path / "trust.toml"
    policy.write_text('[keys.a]\nimported = "alpha"\n\n[[rule]]\nname = "all"\nsigners = ["a"]\n')
    r = shark("verify", str(pipeline.report), "--trust", str(policy))
    assert r.returncode == 0, r.stdout + r.stderr

    # a home where both names exist already (imported before this was refused): both resolve
    (trusted_dir() / f"beta.{kid[:16]}.pem").write_bytes(public_pem(load_signing_key().public))
    for name in ("alpha", "beta"):
        policy.write_text(f'[keys.a]\nimported = "{name}"\n\n[[rule]]\nname = "all"\n'
                          'signers = ["a"]\n')
        r = shark("verify", str(pipeline.report), "--trust", str(policy))
        assert r.returncode == 0, (name, r.stdout + r.stderr)


def test_verify_table_names_unknown_signers(pipeline: Pipeline, tmp_path: Path) -> None:
    """The 'signed by' cell said 'none' for an envelope signed by a key nobody imported."""
    stranger = generate_key(tmp_path / "stranger.pem")
    other = build_pipeline(tmp_path / "other", keys=(stranger, stranger, stranger))
    r = shark("verify", str(other.report))
    assert r.returncode == 1
    rows = [line for line in r.stdout.splitlines() if "python" in line and "│" in line]
    assert len(rows) == 3 and all(f"unknown key {stranger.keyid[:8]}…" in x for x in rows), rows
    assert not any(" none " in x for x in rows)
    envs = _lines(pipeline.report)
    envs[2]["signatures"] = []
    _write_lines(pipeline.report, envs)
    r = shark("verify", str(pipeline.report))
    rows = [line for line in r.stdout.splitlines() if line.startswith("│    3 ")]
    assert len(rows) == 1 and "unsigned" in rows[0], r.stdout


# ---- an attacker with the files and a text editor (issue 15, item 5) ----

THRESHOLD_POLICY = """
[keys.alice]
id = "{alice}"
[keys.institution]
pem = "inst.pub.pem"
[[rule]]
name = "published result"
outputs = ["report.txt"]
signers = ["alice", "institution"]
threshold = 2
[[rule]]
name = "lab"
commands = ["*"]
signers = ["alice"]
"""


def _threshold_policy(tmp_path: Path) -> Path:
    inst = generate_key(tmp_path / "inst.pem")
    (tmp_path / "inst.pub.pem").write_bytes(inst.public_pem())
    p = tmp_path / "threshold.toml"
    p.write_text(THRESHOLD_POLICY.format(alice=load_signing_key().keyid))
    return p


def test_a_copied_signature_entry_does_not_meet_a_threshold_of_two(pipeline: Pipeline,
                                                                    tmp_path: Path) -> None:
    policy = _threshold_policy(tmp_path)
    envs = _lines(pipeline.report)
    envs[0]["signatures"] = envs[0]["signatures"] * 2  # the one real signature, twice
    _write_lines(pipeline.report, envs)
    r = shark("verify", str(pipeline.report), "--trust", str(policy))
    assert r.returncode == 1, r.stdout
    out = r.stdout.replace("\n", "")
    assert ("rule 'published result' needs 2 valid signatures from [alice, institution]; "
            "valid: alice") in out, out
    assert "valid: alice, alice" not in out


def test_a_key_listed_under_two_policy_names_counts_once(pipeline: Pipeline,
                                                         tmp_path: Path) -> None:
    alice = load_signing_key().keyid
    policy = tmp_path / "two-names.toml"
    policy.write_text(f'[keys.alice]\nid = "{alice}"\n[keys.alias]\nid = "{alice}"\n'
                      '[[rule]]\nname = "r"\noutputs = ["report.txt"]\n'
                      'signers = ["alice", "alias"]\nthreshold = 2\n')
    envs = _lines(pipeline.report)
    envs[0]["signatures"] = envs[0]["signatures"] * 2
    _write_lines(pipeline.report, envs)
    r = shark("verify", str(pipeline.report), "--trust", str(policy))
    assert r.returncode == 1 and "rule 'r' needs 2 valid signatures" in r.stdout, r.stdout


def test_a_lab_signed_draft_copied_to_the_published_name_fails(tmp_path: Path) -> None:
    """draft.txt + sidecar copied to report.txt: the report.txt rule applies, and the name
    is not a subject of the attestation, with or without a policy."""
    from viewkit import record_step

    root = tmp_path / "lab"
    root.mkdir()
    script = root / "draft.py"
    script.write_text("print('draft numbers, not reviewed')\n")
    draft = root / "draft.txt"
    record_step(["python", "draft.py"], root, script, [], [draft], stdout_to=draft)
    policy = _threshold_policy(tmp_path)
    assert shark("verify", str(draft), "--trust", str(policy)).returncode == 0
    report = root / "report.txt"
    report.write_bytes(draft.read_bytes())
    Path(sidecar_path(str(report))).write_bytes(Path(sidecar_path(str(draft))).read_bytes())
    r = shark("verify", str(report), "--trust", str(policy))
    assert r.returncode == 1, r.stdout
    out = r.stdout.replace("\n", "")
    assert "rule 'published result' needs 2 valid signatures" in out, out
    assert "report.txt: not a subject of its attestation (it records draft.txt)" in out, out
    r = shark("verify", str(report))
    assert r.returncode == 1 and "not a subject of its attestation" in r.stdout, r.stdout
    # the same file and sidecar moved to another directory under its own name still verify
    moved = tmp_path / "published" / "draft.txt"
    moved.parent.mkdir()
    moved.write_bytes(draft.read_bytes())
    Path(sidecar_path(str(moved))).write_bytes(Path(sidecar_path(str(draft))).read_bytes())
    r = shark("verify", str(moved))
    assert r.returncode == 0, r.stdout
