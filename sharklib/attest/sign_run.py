"""Turn a finished Run into signed sidecars beside its outputs."""

from __future__ import annotations

import os
from typing import Any

from sharklib.attest.dsse import sign_statement
from sharklib.attest.keys import SigningKey, load_signing_key
from sharklib.attest.sidecar import Bundle, read_bundle, sidecar_path, write_bundle
from sharklib.errors import SharkError, SidecarError
from sharklib.model import Run, run_to_statement


def _upstream(run: Run, output_inputs: list[str], cache: dict[str, Bundle | None],
              warnings: list[str]) -> list[dict[str, Any]]:
    by_path = {a.path: a for a in run.inputs}
    envelopes: list[dict[str, Any]] = []
    for path in output_inputs:
        art = by_path.get(path)
        if art is None or not art.attestation:
            continue
        if path not in cache:
            try:
                cache[path] = read_bundle(sidecar_path(path))
            except SidecarError as exc:
                warnings.append(f"upstream lineage not folded in: {exc}")
                cache[path] = None
        bundle = cache[path]
        if bundle is None:
            continue
        if bundle.head.digest != art.attestation:
            warnings.append(f"upstream sidecar of {path} changed while the run read it; not folded in")
            continue
        envelopes.extend(e.envelope for e in bundle.entries)
    return envelopes


def attest_run(run: Run, key: SigningKey | None = None) -> list[str]:
    """Sign one statement per output and write each output's sidecar; return sidecar paths.

    Raises :class:`SharkError` naming the first sidecar that could not be
    written (a read-only directory); callers inside a captured script turn it
    into a warning line.
    """
    if not run.outputs:
        return []
    key = key or load_signing_key()
    cache: dict[str, Bundle | None] = {}
    written: list[str] = []
    failures: list[str] = []
    deps: dict[str, dict[str, Any]] = {}
    for output in run.outputs:
        statement = run_to_statement(run, output, deps)
        head = sign_statement(statement, key)
        inputs = output.inputs if output.inputs is not None else [a.path for a in run.inputs]
        envelopes = [head, *_upstream(run, inputs, cache, run.warnings)]
        target = sidecar_path(output.path)
        try:
            write_bundle(target, envelopes)
        except OSError as exc:
            failures.append(f"{target}: cannot write sidecar: {exc.strerror or exc}")
            continue
        written.append(target)
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise SharkError(failures[0] + more)
    return written


def sidecar_exists(path: str) -> bool:
    return os.path.exists(sidecar_path(path))
