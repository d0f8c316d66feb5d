"""Load a big sidecar for verification in parallel worker processes.

Verifying 10,000 attestations is CPU work that holds the GIL — JSON parsing,
decoding each statement into a Run, one Ed25519 check per signature, a
stat-cache lookup per file — so the sidecar is cut at line boundaries and each
piece is handled by a forked worker. Pickling decoded Runs back costs as much
as decoding them, so a worker returns only what verification reads, as plain
tuples: the line's digest and number, which signatures verified, the command,
directory, run id, output and inputs, and the digests of the files its lines
name. The main process rebuilds light Steps from those (their envelopes keep
only the signatures' key ids; the statements are not kept), then links and
checks the lineage exactly as :func:`sharklib.attest.lineage.load_lineage` does
(every output of each line travels, with its inputs as indices, so the main
process can tell which outputs the lineage involves).
"""

from __future__ import annotations

import gc
import os
from typing import TYPE_CHECKING, Any

from sharklib.attest.lineage import (
    Decoded,
    Lineage,
    decode_line,
    lineage_from_decoded,
    reject_duplicates,
    split_target,
)
from sharklib.attest.sidecar import BundleEntry, open_sidecar
from sharklib.errors import SidecarError
from sharklib.model import Artifact, Output, Run

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

#: below this sidecar size one process is faster than starting workers
PARALLEL_BYTES = 2 * 1024 * 1024
PARALLEL_MAX = 4 * 1024 * 1024 * 1024

Row = tuple[Any, ...]


def _row(d: Decoded) -> Row:
    run = d.run
    position = {a.path: i for i, a in enumerate(run.inputs)}
    outputs = [(o.path, o.sha256, o.size, o.stream,
                None if o.inputs is None else [position[p] for p in o.inputs if p in position])
               for o in d.outputs or [d.output]]
    return (d.entry.line, d.entry.digest, d.good, d.bad,
            [str(s.get("keyid", "")) for s in d.entry.envelope.get("signatures", [])],
            run.run_id, run.argv, run.cwd, run.exit_status, run.started, run.ended,
            outputs, [(a.path, a.sha256, a.attestation) for a in run.inputs])


def _decoded(row: Row) -> Decoded:
    (line, digest, good, bad, keyids, run_id, argv, cwd, status, started, ended,
     outs, inputs) = row
    entry = BundleEntry(digest, {"signatures": [{"keyid": k} for k in keyids]}, {}, line)
    outputs = [Output(path=path, sha256=sha, size=size, stream=stream,
                      inputs=None if feeding is None else [inputs[i][0] for i in feeding])
               for path, sha, size, stream, feeding in outs]
    run = Run(run_id=run_id, argv=argv, cwd=cwd, started=started, ended=ended,
              exit_status=status, inputs=[Artifact(p, s, attestation=a) for p, s, a in inputs],
              outputs=outputs)
    return Decoded(entry, run, outputs[0], good, bad, outputs=outputs)


def _decode_piece(data: bytes, sidecar: str, first_line: int,
                  keys: dict[str, Ed25519PublicKey]) -> tuple[list[Decoded], dict[str, str]]:
    """Decode and check the lines in ``data`` and look up the digests of the files they name.

    No ``on_disk`` filter before the stat cache: it stats every path itself and answers
    only for regular files and directory listings, so a filter would stat each one twice.
    """
    from sharklib.hashing import StatCache

    decoded: list[Decoded] = []
    paths: set[str] = set()
    for i, raw in enumerate(data.split(b"\n")):
        d = decode_line(raw, sidecar, first_line + i, keys)
        if d is None:
            continue
        decoded.append(d)
        if d.good:  # what a statement without a trusted signature names is not looked at
            paths.update(o.path for o in d.outputs or [d.output])
            paths.update(a.path for a in d.run.inputs)
    cache = StatCache()
    try:
        found = cache.digests(paths)
    finally:
        cache.close()
    return decoded, {p: v[0] for p, v in found.items()}


def _worker(sidecar: str, start: int, end: int, first_line: int,
            keys_raw: dict[str, bytes]) -> tuple[list[Row], dict[str, str], tuple[str, int] | None]:
    """Decode and check lines [start, end) of the sidecar; module level so it pickles by name."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys = {k: Ed25519PublicKey.from_public_bytes(v) for k, v in keys_raw.items()}
    gc.disable()  # bulk allocation of acyclic objects: collections would only cost time
    try:
        with open_sidecar(sidecar) as fh:
            fh.seek(start)
            data = fh.read(end - start)
        decoded, disk = _decode_piece(data, sidecar, first_line, keys)
    except SidecarError as exc:
        return [], {}, (exc.message, exc.line or 0)
    except OSError as exc:
        return [], {}, (f"cannot read sidecar: {exc.strerror}", 0)
    return [_row(d) for d in decoded], disk, None


def _bounds(data: bytes, parts: int) -> list[tuple[int, int, int]]:
    """(start, end, first line number) of ``parts`` pieces of ``data`` with as many lines each.

    Cut by lines, not bytes: a line costs about the same to check whatever its length
    (one signature, one statement), and the head line naming every input is a big share
    of the bytes.
    """
    total = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    cuts = [(0, 1)]
    pos, line = 0, 0
    for k in range(1, parts):
        target = total * k // parts
        while line < target:
            nl = data.find(b"\n", pos)
            if nl < 0:
                break
            pos, line = nl + 1, line + 1
        if cuts[-1][0] < pos < len(data):
            cuts.append((pos, line + 1))
    ends = [c[0] for c in cuts[1:]] + [len(data)]
    return [(start, end, first) for (start, first), end in zip(cuts, ends, strict=True)]


def wants_parallel(path: str | os.PathLike[str]) -> bool:
    if (os.cpu_count() or 1) < 2:
        return False
    try:
        size = os.path.getsize(split_target(path)[1])
    except OSError:
        return False
    return PARALLEL_BYTES <= size <= PARALLEL_MAX


def load_for_verification(path: str | os.PathLike[str],
                          keys: dict[str, Ed25519PublicKey]) -> Lineage:
    """A light Lineage with ``Step.signers`` and ``Lineage.on_disk`` filled, decoded in parallel."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from cryptography.hazmat.primitives import serialization

    p, sidecar = split_target(path)
    with open_sidecar(sidecar) as fh:
        data = fh.read()
    workers = min(os.cpu_count() or 1, 8)
    pieces = _bounds(data, workers)
    keys_raw = {k: v.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
                for k, v in keys.items()}
    # this process decodes the first piece itself while the workers decode the others: it
    # would only wait otherwise, and its own lines need no pickling or rebuilding
    own_error: tuple[str, int] | None = None
    own: tuple[list[Decoded], dict[str, str]] = ([], {})
    enabled = gc.isenabled()
    with ProcessPoolExecutor(max(1, len(pieces) - 1),
                             mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(_worker, sidecar, a, b, first, keys_raw)
                   for a, b, first in pieces[1:]]
        start, end, first = pieces[0]
        gc.disable()  # tens of thousands of small objects; nothing cyclic to collect
        try:
            own = _decode_piece(data[start:end], sidecar, first, keys)
        except SidecarError as exc:
            own_error = (exc.message, exc.line or 0)
        finally:
            if enabled:
                gc.enable()
        del data
        results = [f.result() for f in futures]
    errors = [err for _, _, err in results if err is not None]
    if own_error is not None:
        errors.append(own_error)
    if errors:
        message, line = min(errors, key=lambda e: e[1])
        raise SidecarError(message, sidecar, line or None)
    decoded, on_disk = own
    gc.disable()  # tens of thousands of small objects; nothing cyclic to collect
    try:
        for rows, disk, _ in results:
            decoded.extend(_decoded(r) for r in rows)
            on_disk.update(disk)
        reject_duplicates(decoded, sidecar)
        lineage = lineage_from_decoded(p, sidecar, decoded)
    finally:
        if enabled:
            gc.enable()
    if p not in on_disk and os.path.isfile(p):
        from sharklib.hashing import StatCache

        got = StatCache().digest(p)
        if got is not None:
            on_disk[p] = got[0]
    lineage.on_disk = on_disk
    if lineage.relocation is not None:
        # the workers looked at the recorded paths; a moved tree is checked where it is now
        lineage.on_disk = None
        lineage.on_disk = lineage.disk_digests(code=False, signed_only=True)
    return lineage
