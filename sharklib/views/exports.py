"""``sharklib export``: a lineage in the ecosystem's own formats, made with its own libraries.

* ``intoto``: the in-toto attestation bundle (JSON lines of DSSE envelopes,
  the file's own attestation first) — exactly what in-toto / sigstore tools read;
* ``prov-json``: W3C PROV through the ``prov`` package (entities for files at a
  digest, activities for runs, agents for signing keys);
* ``ro-crate``: a Workflow Run RO-Crate following the *Process Run Crate*
  profile through ``rocrate`` (a ``CreateAction`` per run, with the script as
  instrument, inputs and downloads (by URL) as ``object`` and outputs as ``result``);
* ``openlineage``: one OpenLineage ``RunEvent`` per run through the
  OpenLineage client's event model, as JSON lines (downloads are input datasets
  in the URL's ``scheme://host`` namespace).

Files are named by path and carry their sha256, so a consumer can check them.
"""

from __future__ import annotations

import datetime as _dt
import os
import uuid
from collections.abc import Iterable
from typing import Any

from sharklib.attest import check_signatures, envelope_line, trusted_keys
from sharklib.attest.lineage import Lineage, Step, load_lineage
from sharklib.errors import SharkError
from sharklib.model.provenance import iso

FORMATS = ("intoto", "prov-json", "ro-crate", "openlineage")
#: the other spellings users type for the same formats
ALIASES = {"in-toto": "intoto", "prov": "prov-json", "rocrate": "ro-crate"}
#: format -> the module of the extra it is made with (checked before anything is loaded)
NEEDS = {"prov-json": "prov.model", "ro-crate": "rocrate.rocrate",
         "openlineage": "openlineage.client"}
PRODUCER = "https://sharklib.dev/sharklib"
PROCESS_RUN_CRATE = "https://w3id.org/ro/wfrun/process/0.5"


def _runs(lineage: Lineage) -> list[list[Step]]:
    """Steps grouped by run (one run may have written several files), producers first."""
    groups: dict[str, list[Step]] = {}
    for step in lineage.topological():
        groups.setdefault(step.run_id, []).append(step)
    return list(groups.values())


def to_intoto(lineage: Lineage) -> bytes:
    """The bundle as in-toto JSON lines, head first (a clean copy of the sidecar)."""
    return b"".join(envelope_line(e.envelope) + b"\n" for e in lineage.bundle.entries)


def to_prov(lineage: Lineage) -> Any:
    """A ``prov.model.ProvDocument`` of the lineage."""
    from urllib.parse import quote

    from prov.model import ProvDocument

    doc = ProvDocument()
    doc.set_default_namespace("https://sharklib.dev/ns#")
    shark = doc.add_namespace("shark", "https://sharklib.dev/ns#")
    fns = doc.add_namespace("sharkfile", "https://sharklib.dev/file/")
    rns = doc.add_namespace("sharkrun", "https://sharklib.dev/run/")
    kns = doc.add_namespace("sharkkey", "https://sharklib.dev/key/")
    keys = trusted_keys()
    entities: dict[str, Any] = {}
    agents: dict[str, Any] = {}

    def entity(path: str, sha: str, size: int | None, role: str) -> Any:
        eid = fns[f"{sha}/{quote(path, safe='')}"]
        key = str(eid)
        if key not in entities:
            entities[key] = doc.entity(eid, {"prov:label": path, "prov:location": path,
                                             shark["sha256"]: sha, shark["size"]: size or 0,
                                             shark["role"]: role})
        return entities[key]

    for steps in _runs(lineage):
        first = steps[0]
        run = first.run
        act = doc.activity(rns[first.run_id],
                           _dt.datetime.fromtimestamp(run.started, _dt.UTC) if run.started else None,
                           _dt.datetime.fromtimestamp(run.ended, _dt.UTC) if run.ended else None,
                           {"prov:label": first.command, shark["command"]: " ".join(run.argv),
                            shark["cwd"]: run.cwd, shark["exitStatus"]: run.exit_status
                            if run.exit_status is not None else -1,
                            shark["attestation"]: " ".join(s.digest for s in steps)})
        signers: set[str] = set()
        for s in steps:
            signers.update(check_signatures(s.entry.envelope, keys)[0])
        for kid in sorted(signers):
            if kid not in agents:
                agents[kid] = doc.agent(kns[kid], {"prov:type": shark["SigningKey"],
                                                   "prov:label": f"Ed25519 key {kid[:16]}"})
            doc.wasAssociatedWith(act, agents[kid])
        if run.code.script:
            sc = run.code.script
            doc.used(act, entity(sc.path, sc.sha256, sc.size, "code"), None,
                     other_attributes={"prov:role": shark["code"]})
        inputs = {a.path: a for s in steps for a in s.inputs}
        for art in inputs.values():
            doc.used(act, entity(art.path, art.sha256, art.size, "input"))
        for d in run.downloads:
            did = fns[f"{d.sha256 or 'unknown'}/{quote(d.url, safe='')}"]
            dl = doc.entity(did, {"prov:location": d.url, "prov:label": d.url,
                                  shark["sha256"]: d.sha256 or "", shark["role"]: "download"})
            doc.used(act, dl)
        for s in steps:
            for o in s.outputs or [s.output]:
                out = entity(o.path, o.sha256, o.size, "output")
                doc.wasGeneratedBy(out, act)
                for art in s.run.inputs_of(o):
                    doc.wasDerivedFrom(out, entity(art.path, art.sha256, art.size, "input"))
    return doc


def to_prov_json(lineage: Lineage) -> bytes:
    return to_prov(lineage).serialize(format="json", indent=1).encode("utf-8")


def _crate_id(path: str, base: str) -> str | None:
    """The payload path for a file under ``base`` (None outside it)."""
    rel = os.path.relpath(path, base)
    return None if rel.startswith("..") else rel


def _file_uri(path: str) -> str:
    """An absolute ``file://`` URI (percent-encoded; a directory keeps its trailing slash)."""
    from pathlib import Path

    uri = Path(path).as_uri()
    return uri + "/" if path.endswith("/") and not uri.endswith("/") else uri


#: terms sharklib adds to the RO-Crate context (a term must be defined to be valid JSON-LD)
CRATE_TERMS = {
    "sharklibAttestation": "https://sharklib.dev/terms#attestation",
    "etag": "https://sharklib.dev/terms#etag",
}
#: the root's license when the exporter has none to state: RO-Crate requires the property
UNSTATED_LICENSE = "#license-not-stated"


def to_ro_crate(lineage: Lineage, out: str, with_data: bool = False) -> None:
    """Write a Process Run Crate to ``out`` (a directory, or a ``.zip``).

    Without ``with_data`` the crate is detached: it carries no payload, and
    every file and directory is a data entity identified by its absolute
    ``file://`` URI with its digest (a relative id would claim a payload file
    the crate does not have, which rocrate-validator rejects, and rocrate wrote
    an empty directory for each listed one). ``with_data`` copies into the
    crate every file still on disk whose content matches its record; those
    get relative ids, the rest keep their absolute URI.
    """
    import warnings

    from rocrate.model.contextentity import ContextEntity
    from rocrate.model.softwareapplication import SoftwareApplication
    from rocrate.rocrate import ROCrate

    base = lineage.head.run.cwd or os.path.dirname(lineage.path)
    crate = ROCrate()
    crate.name = f"Lineage of {os.path.basename(lineage.path)}"
    crate.description = f"Provenance of {lineage.path} recorded and signed by sharklib"
    crate.metadata.extra_terms.update(CRATE_TERMS)
    crate.root_dataset["conformsTo"] = {"@id": PROCESS_RUN_CRATE}
    crate.root_dataset["datePublished"] = _dt.datetime.now(_dt.UTC).isoformat()
    crate.root_dataset["license"] = {"@id": UNSTATED_LICENSE}
    crate.add(ContextEntity(crate, PROCESS_RUN_CRATE, properties={
        "@type": ["CreativeWork", "Profile"], "name": "Process Run Crate", "version": "0.5"}))
    crate.add(ContextEntity(crate, UNSTATED_LICENSE, properties={
        "@type": "CreativeWork", "name": "License not stated",
        "description": "sharklib records lineage, not terms of use: the licence of the data "
                       "is the data owner's to state"}))
    files: dict[tuple[str, str], Any] = {}
    on_disk = lineage.disk_digests() if with_data else {}
    said = lineage.relocation_note() if with_data else None
    if said:
        from sharklib.views.text import note

        note(said)

    def file(path: str, sha: str, size: int | None) -> Any:
        key = (path, sha)
        if key not in files:
            if path.endswith("/"):  # a directory listing: a Dataset; its data is its names
                props = {"name": os.path.basename(path.rstrip("/")) + "/", "sha256": sha,
                         "description": "directory listing: the sha256 of its sorted entry "
                                        f"names ({size or 0} entries)"}
                files[key] = crate.add_dataset(source=_file_uri(path), properties=props)
                return files[key]
            props = {"name": os.path.basename(path), "sha256": sha,
                     "contentSize": str(size or 0), "encodingFormat": "application/octet-stream"}
            dest = _crate_id(path, base)
            if dest is not None and on_disk.get(path) == sha:
                entity = crate.add_file(source=lineage.locate(path), dest_path=dest,
                                        properties=props)
            else:
                entity = crate.add_file(source=_file_uri(path), properties=props)
            files[key] = entity
        return files[key]

    def download(d: Any) -> Any:
        """A web resource the run read: a File entity identified by its URL, with its digest."""
        key = (d.url, d.sha256 or "")
        if key not in files:
            props: dict[str, Any] = {"name": os.path.basename(d.url.split("?")[0]) or d.url,
                                     "url": d.url, "description": "downloaded by the run"}
            if d.sha256:
                props["sha256"] = d.sha256
            if d.size is not None:
                props["contentSize"] = str(d.size)
            if d.etag:
                props["etag"] = d.etag
            files[key] = crate.add_file(source=d.url, properties=props)
        return files[key]

    apps: dict[str, Any] = {}
    for steps in _runs(lineage):
        first = steps[0]
        run = first.run
        script = run.code.script
        app_id = f"#software-{script.sha256[:16]}" if script else \
            f"#program-{os.path.basename(run.argv[0]) if run.argv else 'unknown'}"
        if app_id not in apps:
            props: dict[str, Any] = {"name": os.path.basename(script.path) if script else
                                     (os.path.basename(run.argv[0]) if run.argv else "?")}
            if script:
                props["sha256"] = script.sha256
                props["url"] = "file://" + script.path
            git = run.code.git
            # RO-Crate requires a version: the commit, else the script's own digest
            if git and git.commit:
                props["version"] = git.commit
            elif script:
                props["version"] = f"sha256:{script.sha256}"
            else:
                props["version"] = "not recorded"
            apps[app_id] = crate.add(SoftwareApplication(crate, app_id, properties=props))
        ok = run.exit_status == 0
        props = {"name": f"Run of {first.command}", "description": " ".join(run.argv),
                 "actionStatus": {"@id": "http://schema.org/CompletedActionStatus" if ok else
                                  "http://schema.org/FailedActionStatus"},
                 "identifier": first.run_id, "sharklibAttestation": [s.digest for s in steps]}
        if run.started:
            props["startTime"] = iso(run.started)
        if run.ended:
            props["endTime"] = iso(run.ended)
        inputs = {(a.path, a.sha256): a for s in steps for a in s.inputs}
        objects = [file(a.path, a.sha256, a.size) for a in inputs.values()]
        objects += [download(d) for d in run.downloads]
        results = [file(o.path, o.sha256, o.size) for s in steps for o in s.outputs or [s.output]]
        crate.add_action(apps[app_id], identifier=f"#run-{first.run_id}",
                         object=objects or None, result=results, properties=props)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No source for")
        write_crate(crate, out)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _directory_mode(out: str) -> int:
    """An existing (empty) target keeps its mode; a new one gets the umask's, not mkdtemp's 0700."""
    if os.path.isdir(out):
        return os.stat(out).st_mode & 0o7777
    return 0o777 & ~_umask()


def write_crate(crate: Any, out: str) -> None:
    """Write ``crate`` to ``out`` (a directory, or a ``.zip``) whole or not at all.

    ``rocrate`` writes into a directory file by file, replacing whatever has
    the same name, so a crate exported into a user's non-empty directory
    overwrote their ``data/raw.csv`` with the crate's copy. A directory
    target must therefore be new or empty: the crate is built in a private
    directory beside it and renamed into place (``rename`` replaces only an
    empty directory, so one filled meanwhile is refused too). Re-exporting
    over an earlier crate needs that crate removed first: sharklib cannot
    tell the files it wrote from files added since. A ``.zip`` is written
    beside the target and renamed over it, like every other ``-o`` file.
    """
    import errno
    import shutil
    import tempfile

    from sharklib.views.output import cannot_write

    parent = os.path.dirname(os.path.abspath(out))
    is_zip = out.endswith(".zip")
    if os.path.lexists(out):
        if is_zip and os.path.isdir(out):
            raise SharkError("cannot write here: it is a directory", out)
        if not is_zip and (os.path.islink(out) or not os.path.isdir(out)):
            raise SharkError("cannot write the crate here: it exists and is not a directory", out)
        if not is_zip and os.listdir(out):
            raise SharkError("refusing to write the crate into a non-empty directory (its files "
                             "could be overwritten); choose a new or empty directory", out)
    work: str | None = None
    try:
        work = tempfile.mkdtemp(prefix=".sharklib-crate-", dir=parent)
        if is_zip:
            made = os.path.join(work, "crate.zip")
            crate.write_zip(made)
            os.chmod(made, 0o666 & ~_umask())
            os.replace(made, out)
        else:
            crate.write(work)
            os.chmod(work, _directory_mode(out))
            os.rename(work, out)
            work = None
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and os.path.isdir(out):
            raise SharkError("refusing to write the crate into a non-empty directory (it was "
                             "filled while the crate was made)", out) from None
        raise cannot_write(out, exc) from None
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


def _ol_uuid(run_id: str) -> str:
    try:
        return str(uuid.UUID(run_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "sharklib:" + run_id))


def to_openlineage_events(lineage: Lineage) -> list[Any]:
    """One COMPLETE (or FAIL) ``RunEvent`` per run, producers first."""
    from openlineage.client.event_v2 import (
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )
    from openlineage.client.facet_v2 import (
        DatasetFacet,
        dataset_version_dataset,
        environment_variables_run,
        processing_engine_run,
        source_code_location_job,
    )

    def datasets(cls: Any, arts: Iterable[Any]) -> list[Any]:
        seen: dict[tuple[str, str], Any] = {}
        for a in arts:
            if (a.path, a.sha256) not in seen:
                seen[(a.path, a.sha256)] = cls(namespace="file", name=a.path, facets={
                    "version": dataset_version_dataset.DatasetVersionDatasetFacet(
                        datasetVersion=a.sha256)})
        return list(seen.values())

    def downloaded(downloads: Iterable[Any]) -> list[Any]:
        """Downloads as input datasets: namespace scheme://authority, name the rest of the URL."""
        from urllib.parse import urlsplit

        seen: dict[tuple[str, str | None], Any] = {}
        for d in downloads:
            if (d.url, d.sha256) in seen:
                continue
            parts = urlsplit(d.url)
            namespace = f"{parts.scheme}://{parts.netloc}" if parts.scheme else "url"
            name = d.url[len(namespace):] if d.url.startswith(namespace) else d.url
            facets: dict[str, DatasetFacet] = {}
            if d.sha256:
                facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                    datasetVersion=d.sha256)
            seen[(d.url, d.sha256)] = InputDataset(namespace=namespace, name=name or "/",
                                                   facets=facets)
        return list(seen.values())

    events = []
    for steps in _runs(lineage):
        first = steps[0]
        run = first.run
        job_name = os.path.basename(run.code.script.path) if run.code.script else first.command
        job_facets: dict[str, Any] = {}
        git = run.code.git
        if git and git.commit and run.code.script:
            job_facets["sourceCodeLocation"] = source_code_location_job.SourceCodeLocationJobFacet(
                type="git", url=git.remote or ("file://" + git.root), version=git.commit,
                path=os.path.relpath(run.code.script.path, git.root) if git.root else None)
        run_facets: dict[str, Any] = {
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version=run.environment.python_version or "unknown", name="python",
                openlineageAdapterVersion=None)}
        if run.environment.variables:
            run_facets["environmentVariables"] = \
                environment_variables_run.EnvironmentVariablesRunFacet(environmentVariables=[
                    environment_variables_run.EnvironmentVariable(name=k, value=v)
                    for k, v in sorted(run.environment.variables.items())])
        events.append(RunEvent(
            eventType=RunState.COMPLETE if run.exit_status == 0 else RunState.FAIL,
            eventTime=iso(run.ended or run.started) or iso(0.0) or "",
            run=Run(runId=_ol_uuid(first.run_id), facets=run_facets),
            job=Job(namespace="sharklib", name=job_name, facets=job_facets),
            inputs=datasets(InputDataset, (a for s in steps for a in s.inputs))
            + downloaded(run.downloads),
            outputs=datasets(OutputDataset, (o for s in steps for o in s.outputs or [s.output])),
            producer=PRODUCER))
    return events


def to_openlineage(lineage: Lineage) -> bytes:
    from openlineage.client.serde import Serde

    return "".join(Serde.to_json(e) + "\n" for e in to_openlineage_events(lineage)).encode()


def export_command(path: str, fmt: str, out: str | None, with_data: bool = False) -> bytes | None:
    """What ``sharklib export`` does: the bytes for stdout, or None once written to ``out``."""
    from sharklib.extras import require
    from sharklib.views.output import write_output

    fmt = ALIASES.get(fmt, fmt)
    if fmt in NEEDS:
        require(NEEDS[fmt], f"export --format {fmt}")
    lineage = load_lineage(path)
    if fmt == "ro-crate":
        if not out:
            raise SharkError("ro-crate export needs -o DIR (or -o FILE.zip)")
        to_ro_crate(lineage, out, with_data)
        return None
    makers = {"intoto": to_intoto, "prov-json": to_prov_json, "openlineage": to_openlineage}
    if fmt not in makers:
        raise SharkError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    data = makers[fmt](lineage)
    if out:
        write_output(out, data)
        return None
    return data
