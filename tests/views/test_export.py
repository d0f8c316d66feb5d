"""Exports checked by the other side's tools: securesystemslib (DSSE), prov, rocrate, OpenLineage."""

from __future__ import annotations

import json
import uuid
import zipfile
from pathlib import Path

import pytest
from viewkit import Pipeline, shark

from sharklib.attest import load_signing_key


def test_intoto_bundle_verifies_with_securesystemslib(pipeline: Pipeline, tmp_path: Path) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    out = tmp_path / "bundle.intoto.jsonl"
    r = shark("export", str(pipeline.report), "--format", "intoto", "-o", str(out))
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 3
    key = load_signing_key()
    ssl_key = SSlibKey.from_crypto(key.public, keyid=key.keyid)
    subjects = []
    for line in lines:
        env = Envelope.from_dict(json.loads(line))
        assert env.payload_type == "application/vnd.in-toto+json"
        accepted = env.verify([ssl_key], 1)  # an independent PAE and Ed25519 check
        assert list(accepted) == [key.keyid]
        statement = json.loads(env.payload)
        assert statement["_type"] == "https://in-toto.io/Statement/v1"
        assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
        subjects.append(statement["subject"][0]["name"])
    assert subjects[0] == "results/report.txt"
    # a tampered payload is refused by the independent verifier
    bad = json.loads(lines[0])
    env = Envelope.from_dict(bad)
    env.payload = env.payload.replace(b"report.py", b"rep0rt.py")
    with pytest.raises(VerificationError):
        env.verify([ssl_key], 1)
    # stdout and -o give the same bytes
    assert shark("export", str(pipeline.report), "--format", "intoto").stdout == out.read_text()


def test_intoto_statement_loads_with_in_toto(pipeline: Pipeline) -> None:
    in_toto = pytest.importorskip("in_toto")
    from in_toto.models.metadata import Envelope as InTotoEnvelope

    line = shark("export", str(pipeline.report), "--format", "intoto").stdout.splitlines()[0]
    env = InTotoEnvelope.from_dict(json.loads(line))
    assert json.loads(env.payload)["subject"][0]["name"] == "results/report.txt"
    assert in_toto.__name__ == "in_toto"


def test_prov_json_loads_with_prov(pipeline: Pipeline) -> None:
    from prov.model import (
        ProvActivity,
        ProvAgent,
        ProvDocument,
        ProvEntity,
        ProvGeneration,
        ProvUsage,
    )

    r = shark("export", str(pipeline.report), "--format", "prov-json")
    assert r.returncode == 0, r.stderr
    doc = ProvDocument.deserialize(content=r.stdout, format="json")
    records = list(doc.get_records())
    activities = [x for x in records if isinstance(x, ProvActivity)]
    entities = [x for x in records if isinstance(x, ProvEntity)]
    assert len(activities) == 3
    assert len([x for x in records if isinstance(x, ProvAgent)]) == 1
    labels = {str(next(iter(e.get_attribute("prov:label")))) for e in entities}
    assert {str(pipeline.raw), str(pipeline.clean), str(pipeline.stats), str(pipeline.report)} <= labels
    gens = [x for x in records if isinstance(x, ProvGeneration)]
    uses = [x for x in records if isinstance(x, ProvUsage)]
    assert len(gens) == 3 and len(uses) == 4 + 3  # 4 data reads + 3 scripts
    # prov itself can write it as PROV-N: the document is well formed
    assert "activity(sharkrun:" in doc.get_provn()


def test_ro_crate_reads_back_with_rocrate(pipeline: Pipeline, tmp_path: Path) -> None:
    from rocrate.rocrate import ROCrate

    out = tmp_path / "crate"
    r = shark("export", str(pipeline.report), "--format", "ro-crate", "-o", str(out), "--with-data")
    assert r.returncode == 0, r.stderr
    crate = ROCrate(str(out))
    actions = [e for e in crate.get_entities() if e.type == "CreateAction"]
    assert len(actions) == 3
    by_name = {a["name"]: a for a in actions}
    stats = by_name["Run of python stats.py data/clean.csv results/stats.json"]
    assert [o.id for o in stats["object"]] == ["data/clean.csv"]
    assert [o.id for o in stats["result"]] == ["results/stats.json"]
    assert stats["instrument"].type == "SoftwareApplication"
    status = stats["actionStatus"]
    assert getattr(status, "id", status) == "http://schema.org/CompletedActionStatus"
    root = crate.root_dataset
    conforms = root["conformsTo"]
    assert getattr(conforms, "id", conforms) == "https://w3id.org/ro/wfrun/process/0.5"
    report = crate.dereference("results/report.txt")
    assert report["sha256"] == pipeline.runs[2].outputs[0].sha256
    assert (out / "results" / "report.txt").read_bytes() == pipeline.report.read_bytes()
    zipped = tmp_path / "crate.zip"
    assert shark("export", str(pipeline.report), "--format", "ro-crate", "-o",
                 str(zipped)).returncode == 0
    with zipfile.ZipFile(zipped) as z:
        assert "ro-crate-metadata.json" in z.namelist()
    assert len([e for e in ROCrate(str(zipped)).get_entities() if e.type == "CreateAction"]) == 3
    no_out = shark("export", str(pipeline.report), "--format", "ro-crate")
    assert no_out.returncode == 2 and "needs -o" in no_out.stderr


def test_openlineage_events(pipeline: Pipeline) -> None:
    """OpenLineage's schema is not shipped with its client (only URLs), so the events are
    built with the client's own attrs model and checked for the spec's required fields here."""
    r = shark("export", str(pipeline.report), "--format", "openlineage")
    assert r.returncode == 0, r.stderr
    events = [json.loads(x) for x in r.stdout.splitlines()]
    assert [e["job"]["name"] for e in events] == ["clean.py", "stats.py", "report.py"]
    for e, run in zip(events, pipeline.runs, strict=True):
        assert e["eventType"] == "COMPLETE"
        assert str(uuid.UUID(e["run"]["runId"])) == run.run_id
        assert e["schemaURL"].startswith("https://openlineage.io/spec/")
        assert e["producer"] and e["eventTime"].endswith("Z")
        outs = {o["name"]: o["facets"]["version"]["datasetVersion"] for o in e["outputs"]}
        assert outs == {o.path: o.sha256 for o in run.outputs}
        ins = {i["name"] for i in e["inputs"]}
        assert ins == {a.path for a in run.inputs}
    assert events[2]["run"]["facets"]["environmentVariables"]["environmentVariables"] == [
        {"name": "LANG", "value": "C.UTF-8"}]


def test_downloads_are_inputs_in_ro_crate_and_openlineage(tmp_path: Path) -> None:
    """show/why/PROV listed a step's download; the RO-Crate action and OpenLineage event did not."""
    from viewkit import record_download

    url = "http://127.0.0.1:8765/data/remote.csv"
    saved, _ = record_download(tmp_path / "dl", "remote.csv", url)
    r = shark("export", str(saved), "--format", "ro-crate", "-o", str(tmp_path / "crate"))
    assert r.returncode == 0, r.stderr
    graph = {e["@id"]: e for e in
             json.loads((tmp_path / "crate" / "ro-crate-metadata.json").read_text())["@graph"]}
    action = next(e for e in graph.values() if e.get("@type") == "CreateAction")
    objects = action["object"] if isinstance(action["object"], list) else [action["object"]]
    assert {"@id": url} in objects
    assert graph[url]["sha256"] == "c" * 64 and graph[url]["contentSize"] == "4"
    r = shark("export", str(saved), "--format", "openlineage")
    assert r.returncode == 0, r.stderr
    event = json.loads(r.stdout.splitlines()[0])
    assert [_strip(d) for d in event["inputs"]] == [
        {"namespace": "http://127.0.0.1:8765", "name": "/data/remote.csv",
         "facets": {"version": {"datasetVersion": "c" * 64}}}]


def _strip(ds: dict) -> dict:
    """An OpenLineage dataset without the facets' _producer/_schemaURL bookkeeping."""
    facets = {k: {f: x for f, x in v.items() if not f.startswith("_")}
              for k, v in ds.get("facets", {}).items()}
    return {"namespace": ds["namespace"], "name": ds["name"], "facets": facets}
