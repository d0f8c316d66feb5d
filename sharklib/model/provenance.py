"""The Run in the in-toto Statement v1 / SLSA Provenance v1 shape.

A statement is about one or more outputs of one run: its ``subject`` lists
them, and the predicate describes the run that made them. Each subject says
which of the statement's input dependencies were read before that output was
finished (``annotations.inputs``, ranges of input indices; absent means all of
them), so one signed statement can serve many outputs of a run without
widening any output's lineage. The mapping is lossless for what lineage views
need, so a sidecar alone is enough to answer "where did this come from"
offline (:func:`statement_subjects` inverts :func:`run_to_statement`).

Why several subjects: a script that reads n files and writes n outputs, one
after each read, would otherwise sign n statements listing 1, 2, ... n inputs
(quadratic JSON, n signatures); grouped, it signs n / :data:`MAX_SUBJECTS`
statements, and a downstream step that reads all those outputs carries a few
upstream attestations instead of n.

Where each fact goes (see docs/manifest.md for the field table):

* ``subject[]``: name (relative to the run's directory), sha256, and in
  ``annotations`` the size, the stream (``stdout``/``stderr``) and the inputs
  selection;
* ``buildDefinition.externalParameters``: ``argv`` and ``cwd`` (what the user chose);
* ``buildDefinition.internalParameters``: user, host, pid, backend, run key and
  the environment identity;
* ``buildDefinition.resolvedDependencies``: code (script, local modules, git
  commit), data inputs (with the digest of their own attestation) and downloads,
  told apart by ``annotations.role``;
* ``runDetails``: builder, invocation id, start and finish times, and a
  ``sharklib/run`` byproduct with exit status, parent and child runs, execs,
  connects, temporaries, removals and probes (project paths the run asked about
  without reading them, and what it saw: ``[[path, "absent"], ...]``).

Statements written before subjects carried annotations (one subject, with
``outputPath``/``outputSize``/``outputStream`` in the byproduct) are read as well.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from sharklib.model.run import (
    Artifact,
    CodeIdentity,
    Download,
    Environment,
    Exec,
    GitInfo,
    Output,
    Run,
    decode_path,
    encode_path,
    probes_from,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # neither ``typing`` nor ``datetime`` at run time: the reuse path needs
    from typing import Any  # only this module's names of statement and payload types

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://sharklib.dev/run/v1"
BUILDER_ID = "https://sharklib.dev/builder/"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
#: most outputs one statement names (bounds every sidecar's size: each carries the whole statement)
MAX_SUBJECTS = 64


def iso(ts: float | None) -> str | None:
    """Seconds since the epoch as RFC 3339 UTC with microseconds."""
    if ts is None:
        return None
    import datetime as _dt

    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat().replace("+00:00", "Z")


def from_iso(text: str | None) -> float | None:
    if not text:
        return None
    import datetime as _dt

    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _file_uri(path: str) -> str:
    return "file://" + encode_path(path)


def _path_from_uri(uri: str) -> str:
    return decode_path(uri[len("file://"):]) if uri.startswith("file://") else decode_path(uri)


def subject_name(output_path: str, cwd: str) -> str:
    """The subject name: the path relative to the run's directory when inside it."""
    prefix = cwd.rstrip("/") + "/"
    if output_path.startswith(prefix) and "/." not in output_path and "//" not in output_path:
        # both are normalised absolute paths: what relpath would say, without its cost
        return encode_path(output_path[len(prefix):])
    try:
        rel = os.path.relpath(output_path, cwd)
    except ValueError:
        rel = output_path
    if rel.startswith(".." + os.sep) or rel == "..":
        rel = output_path
    return encode_path(rel)


def _artifact_dep(a: Artifact, role: str) -> dict[str, Any]:
    ann: dict[str, Any] = {"role": role, "size": a.size}
    if a.attestation:
        ann["attestation"] = a.attestation
    # a directory listing (``dir/``) is named ``dir/``, not by the empty name after its slash;
    # the last part is cut by text (``os.path.basename``'s answer, without its cost per input)
    encoded = encode_path(a.path)
    if a.path.endswith("/"):
        name = encoded.rstrip("/").rpartition("/")[2] + "/"
    else:
        name = encoded.rpartition("/")[2]
    return {"uri": "file://" + encoded, "name": name,
            "digest": {"sha256": a.sha256}, "annotations": ann}


def _download_dep(d: Download) -> dict[str, Any]:
    dep: dict[str, Any] = {"uri": d.url, "annotations": {"role": "download"}}
    if d.sha256:
        dep["digest"] = {"sha256": d.sha256}
    for key, value in (("size", d.size), ("etag", d.etag), ("lastModified", d.last_modified),
                       ("status", d.status), ("method", d.method), ("savedTo", d.saved_to)):
        if value is not None:
            dep["annotations"][key] = value
    return dep


def _ranges(indices: list[int]) -> list[list[int]]:
    """Sorted indices as half-open ``[start, end]`` ranges (a prefix is one range)."""
    out: list[list[int]] = []
    for i in indices:
        if out and out[-1][1] == i:
            out[-1][1] = i + 1
        else:
            out.append([i, i + 1])
    return out


def run_to_statement(run: Run, output: Output | Sequence[Output],
                     dep_cache: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The in-toto Statement v1 about ``output`` (one, or several of one run), describing ``run``.

    The statement's input dependencies are the union of its outputs' inputs,
    in the order they were read; an output that did not read all of them
    names its own (``annotations.inputs``). ``dep_cache`` lets a caller signing
    many statements of one run build each input's dependency entry once.
    """
    outputs = [output] if isinstance(output, Output) else list(output)
    if not outputs:
        raise ValueError("a statement needs at least one output")
    if any(o.inputs is None for o in outputs):
        inputs = list(run.inputs)
    else:
        wanted: set[str] = set()
        for o in outputs:
            wanted.update(o.inputs or ())
        inputs = [a for a in run.inputs if a.path in wanted]
    paths = [a.path for a in inputs]
    position: dict[str, int] | None = None

    subjects: list[dict[str, Any]] = []
    for o in outputs:
        ann: dict[str, Any] = {"size": o.size}
        if o.stream:
            ann["stream"] = o.stream
        if o.inputs is not None:
            n = len(o.inputs)
            if o.inputs == paths[:n]:  # the common case: the first n inputs, in read order
                if n != len(paths):
                    ann["inputs"] = [[0, n]] if n else []
            else:
                if position is None:
                    position = {p: i for i, p in enumerate(paths)}
                chosen = sorted({position[p] for p in o.inputs if p in position})
                if len(chosen) != len(paths):
                    ann["inputs"] = _ranges(chosen)
        subjects.append({"name": subject_name(o.path, run.cwd), "digest": {"sha256": o.sha256},
                         "annotations": ann})

    deps: list[dict[str, Any]] = []
    if run.code.script:
        deps.append(_artifact_dep(run.code.script, "script"))
    deps.extend(_artifact_dep(m, "module") for m in run.code.modules)
    if run.code.git:
        g = run.code.git
        dep: dict[str, Any] = {
            "uri": ("git+" + g.remote) if g.remote else _file_uri(g.root),
            "annotations": {"role": "git", "root": g.root, "branch": g.branch, "dirty": g.dirty,
                            "remote": g.remote},
        }
        if g.commit:
            dep["digest"] = {"gitCommit": g.commit}
        deps.append(dep)
    if dep_cache is None:
        deps.extend(_artifact_dep(a, "input") for a in inputs)
    else:
        for a in inputs:
            known = dep_cache.get(a.path)
            if known is None:
                known = dep_cache[a.path] = _artifact_dep(a, "input")
            deps.append(known)
    deps.extend(_download_dep(d) for d in run.downloads)

    predicate = {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {"argv": [encode_path(a) for a in run.argv],
                                   "cwd": encode_path(run.cwd)},
            "internalParameters": {
                "user": run.user, "host": run.host, "pid": run.pid, "backend": run.backend,
                "runKey": run.run_key, "environment": run.environment.to_dict(),
            },
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": {"id": BUILDER_ID + run.backend},
            "metadata": {"invocationId": run.run_id, "startedOn": iso(run.started),
                         "finishedOn": iso(run.ended)},
            "byproducts": [{
                "name": "sharklib/run",
                "annotations": {
                    "exitStatus": run.exit_status,
                    "parent": run.parent,
                    "children": list(run.children),
                    "execs": [e.to_dict() for e in run.execs],
                    "connects": list(run.connects),
                    "temporaries": [encode_path(p) for p in run.temporaries],
                    "removed": [encode_path(p) for p in run.removed],
                    "warnings": list(run.warnings),
                    **({"stdin": run.stdin} if run.stdin else {}),
                    # paths asked about without reading them (os.path.exists...), as seen
                    **({"probes": [[encode_path(p), t] for p, t in run.probes.items()]}
                       if run.probes else {}),
                },
            }],
        },
    }
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def _selected(selection: Any, inputs: list[Artifact]) -> list[str]:
    """The input paths a subject's ``annotations.inputs`` ranges name (ValueError if malformed)."""
    if not isinstance(selection, list):
        raise ValueError("subject inputs selection is not a list of ranges")
    paths: list[str] = []
    for r in selection:
        if (not isinstance(r, list) or len(r) != 2 or not all(type(x) is int for x in r)
                or not 0 <= r[0] <= r[1] <= len(inputs)):
            raise ValueError(f"subject inputs selection {str(r)[:40]} is not a range of "
                             f"the {len(inputs)} inputs")
        paths.extend(a.path for a in inputs[r[0]:r[1]])
    return paths


def statement_subjects(statement: dict[str, Any]) -> tuple[Run, list[Output]]:
    """The whole Run one statement describes, and every output it names (subject order).

    ``Run.inputs`` holds all the statement's inputs; each output's ``inputs``
    names those read before it was finished. Raises ``KeyError``,
    ``TypeError`` or ``ValueError`` on a statement of the wrong shape; callers
    reading files turn those into one-line errors naming the file.
    """
    if statement.get("_type") != STATEMENT_TYPE:
        raise ValueError(f"not an in-toto Statement v1 (_type={statement.get('_type')!r})")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise ValueError(f"unknown predicate type {statement.get('predicateType')!r}")
    pred = statement["predicate"]
    bd = pred["buildDefinition"]
    rd = pred["runDetails"]
    ext = bd["externalParameters"]
    internal = bd.get("internalParameters") or {}
    meta = rd.get("metadata") or {}
    extra: dict[str, Any] = {}
    for bp in rd.get("byproducts") or []:
        if isinstance(bp, dict) and bp.get("name") == "sharklib/run":
            extra = bp.get("annotations") or {}

    code = CodeIdentity()
    inputs: list[Artifact] = []
    downloads: list[Download] = []
    for dep in bd.get("resolvedDependencies") or []:
        ann = dep.get("annotations") or {}
        role = ann.get("role")
        if role in ("script", "module", "input"):
            art = Artifact(path=_path_from_uri(dep["uri"]), sha256=dep["digest"]["sha256"],
                           size=int(ann.get("size", 0)), attestation=ann.get("attestation"))
            if role == "script":
                code.script = art
            elif role == "module":
                code.modules.append(art)
            else:
                inputs.append(art)
        elif role == "git":
            code.git = GitInfo(root=ann.get("root", ""),
                               commit=(dep.get("digest") or {}).get("gitCommit"),
                               branch=ann.get("branch"), dirty=bool(ann.get("dirty")),
                               remote=ann.get("remote"))
        elif role == "download":
            downloads.append(Download(
                url=dep["uri"], sha256=(dep.get("digest") or {}).get("sha256"),
                size=ann.get("size"), etag=ann.get("etag"), last_modified=ann.get("lastModified"),
                status=ann.get("status"), method=ann.get("method", "GET"),
                saved_to=ann.get("savedTo")))

    cwd = decode_path(ext["cwd"])
    all_paths = [a.path for a in inputs]
    outputs: list[Output] = []
    for k, subject in enumerate(statement["subject"]):
        ann = subject.get("annotations") or {}
        if not isinstance(ann, dict):
            raise TypeError("subject annotations are not an object")
        legacy = extra if k == 0 else {}  # one-subject statements of earlier versions
        out_path = decode_path(legacy["outputPath"]) if legacy.get("outputPath") else \
            os.path.join(cwd, decode_path(subject["name"]))
        feeding = all_paths if "inputs" not in ann else _selected(ann["inputs"], inputs)
        outputs.append(Output(
            path=out_path, sha256=subject["digest"]["sha256"],
            size=int(ann.get("size", legacy.get("outputSize", 0)) or 0),
            inputs=list(feeding), stream=ann.get("stream", legacy.get("outputStream"))))
    run = Run(
        run_id=str(meta.get("invocationId", "")),
        argv=[decode_path(a) for a in ext["argv"]],
        cwd=cwd,
        started=from_iso(meta.get("startedOn")) or 0.0,
        ended=from_iso(meta.get("finishedOn")),
        exit_status=extra.get("exitStatus"),
        user=internal.get("user", ""),
        host=internal.get("host", ""),
        pid=int(internal.get("pid", 0) or 0),
        backend=internal.get("backend", "python"),
        code=code,
        environment=Environment.from_dict(internal.get("environment") or {}),
        inputs=inputs,
        downloads=downloads,
        outputs=outputs,
        temporaries=[decode_path(p) for p in extra.get("temporaries", [])],
        removed=[decode_path(p) for p in extra.get("removed", [])],
        execs=[Exec.from_dict(e) for e in extra.get("execs", [])],
        connects=list(extra.get("connects", [])),
        children=list(extra.get("children", [])),
        parent=extra.get("parent"),
        run_key=internal.get("runKey"),
        warnings=list(extra.get("warnings", [])),
        stdin=extra.get("stdin") if isinstance(extra.get("stdin"), str) else None,
        probes=probes_from(extra.get("probes")),
    )
    return run, outputs


def narrowed(run: Run, outputs: Sequence[Output]) -> Run:
    """``run`` as far as ``outputs`` are concerned: only their inputs, only them as outputs.

    Modifies and returns ``run`` (a Run decoded for this purpose); inputs keep
    the order they were read in.
    """
    if len(outputs) == 1:
        run.inputs = run.inputs_of(outputs[0])
    else:
        wanted: set[str] = set()
        for o in outputs:
            wanted.update(a.path for a in run.inputs_of(o))
        run.inputs = [a for a in run.inputs if a.path in wanted]
    run.outputs = list(outputs)
    return run


def statement_to_run(statement: dict[str, Any], subject: int = 0) -> tuple[Run, Output]:
    """The Run as one output of the statement saw it, and that output (the first by default).

    The Run holds exactly what the statement says about that output: its
    ``inputs`` are the inputs of this output only.
    """
    run, outputs = statement_subjects(statement)
    output = outputs[subject]
    return narrowed(run, [output]), output
