"""Turn a finished Run into signed sidecars beside its outputs.

Outputs are signed in groups of at most :data:`~sharklib.model.MAX_SUBJECTS`:
one statement names every output of a group, each with exactly the inputs it
read (:func:`~sharklib.model.run_to_statement`), and the one signed envelope
heads the sidecar of each of them. A script that writes hundreds of outputs
thus serialises and signs a handful of statements instead of hundreds of
ever longer ones, and each line is serialised once and written many times.
Outputs are grouped in the order of how many inputs they read, so outputs
with the same or nearly the same inputs share a statement and a sidecar
carries little that is not about its own file.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import tempfile
from typing import TYPE_CHECKING, Any

from sharklib.attest.dsse import envelope_line, merge_signatures, sign_payload, statement_bytes
from sharklib.attest.keys import SigningKey, load_signing_key
from sharklib.attest.naming import sidecar_path
from sharklib.attest.sidecar import Bundle, SidecarWriter, read_bundle
from sharklib.errors import SharkError, SidecarError
from sharklib.model import MAX_SUBJECTS, run_to_statement

if TYPE_CHECKING:
    from sharklib.model import Artifact, Output, Run


def group_outputs(run: Run, limit: int = MAX_SUBJECTS) -> list[list[Output]]:
    """The run's outputs in groups that share a statement (each group at most ``limit``).

    Ordered by the number of inputs each read (stable), which for a script
    that reads and writes in turn is the order it finished them, so each
    group's statement lists few inputs beyond what each of its outputs read.
    """
    everything = len(run.inputs)
    ordered = sorted(run.outputs,
                     key=lambda o: everything if o.inputs is None else len(o.inputs))
    return [ordered[i:i + limit] for i in range(0, len(ordered), max(1, limit))]


class _Upstream:
    """Upstream attestations of the run's inputs, each sidecar read and each line serialised once."""

    def __init__(self, run: Run) -> None:
        self.by_path: dict[str, Artifact] = {a.path: a for a in run.inputs if a.attestation}
        self.warnings = run.warnings
        self.bundles: dict[str, Bundle | None] = {}
        self.lines: dict[str, tuple[dict[str, Any], bytes]] = {}

    def _bundle(self, path: str, art: Artifact) -> Bundle | None:
        if path not in self.bundles:
            try:
                bundle: Bundle | None = read_bundle(sidecar_path(path))
            except SidecarError as exc:
                self.warnings.append(f"upstream lineage not folded in: {exc}")
                bundle = None
            if bundle is not None and bundle.head.digest != art.attestation:
                self.warnings.append(
                    f"upstream sidecar of {path} changed while the run read it; not folded in")
                bundle = None
            self.bundles[path] = bundle
        return self.bundles[path]

    def _line(self, digest: str, envelope: dict[str, Any]) -> bytes:
        known = self.lines.get(digest)
        if known is not None and known[0] is envelope:
            return known[1]
        line = envelope_line(envelope)
        if known is None:
            self.lines[digest] = (envelope, line)
        return line

    def data(self, inputs: list[str], skip: str) -> bytes:
        """Sidecar lines (after the head) for an output that read ``inputs``, deduplicated."""
        found: dict[str, dict[str, Any]] = {}
        for path in inputs:
            art = self.by_path.get(path)
            if art is None:
                continue
            bundle = self._bundle(path, art)
            if bundle is None:
                continue
            for entry in bundle.entries:
                if entry.digest == skip:
                    continue
                have = found.get(entry.digest)
                found[entry.digest] = entry.envelope if have is None else \
                    merge_signatures(have, entry.envelope)
        return b"".join(self._line(d, env) + b"\n" for d, env in found.items())


_REDIRECT = re.compile(r"^(?:\d*[<>]+&?|&>>?)")


def _named_paths(run: Run) -> set[str]:
    """Every path the run's command line names, absolute (``a=b`` and ``>f`` words too).

    A word that is itself a shell command line (``sh -c 'cp a /tmp/b'``) is split into words.
    """
    words: list[str] = []
    for arg in run.argv[1:]:
        if any(c.isspace() for c in arg):
            try:
                lexer = shlex.shlex(arg, posix=True, punctuation_chars=";&|()")
                lexer.whitespace_split = True
                words.extend(lexer)
            except ValueError:
                words.extend(arg.split())
        else:
            words.append(arg)
    named: set[str] = set()
    for word in words:
        for part in {word, _REDIRECT.sub("", word), word.split("=", 1)[-1]}:
            if part and part[0] != "-":
                path = os.path.normpath(os.path.join(run.cwd, os.path.expanduser(part)))
                named.add(path)
                named.add(os.path.realpath(path))
    return named


def unnamed_outside(run: Run) -> frozenset[str]:
    """The run's outputs outside its project that its command line does not name.

    sharklib writes no sidecar outside the project except beside a file the user named as an
    output (``sharklib run gen.py /tmp/out.txt``, ``cp -r a /tmp/copy`` and the files under
    it): a library's cache in ``~/.cache``, a scratch file in ``/tmp`` or a log redirected to
    ``/var/log`` is signed in its run's statement by digest but gets no file beside it.
    """
    from sharklib.common.identity import project_root

    root = project_root(run.cwd or os.getcwd()).rstrip("/") + "/"
    outside = [o.path for o in run.outputs if not o.path.startswith(root)]
    if not outside:
        return frozenset()
    named = _named_paths(run)
    # a directory named on the command line covers the files under it, unless it is so broad
    # that it would cover everything (``/``, the home or temporary directory, the project's
    # own ancestors)
    broad = {"/", os.path.expanduser("~"), tempfile.gettempdir(),
             os.path.realpath(tempfile.gettempdir())}
    dirs = tuple(d.rstrip("/") + "/" for d in named
                 if d not in broad and not root.startswith(d.rstrip("/") + "/"))
    return frozenset(p for p in outside if p not in named and not p.startswith(dirs))


def attest_run(run: Run, key: SigningKey | None = None,
               no_sidecar: frozenset[str] = frozenset()) -> list[str]:
    """Sign the run's outputs (a statement per group) and write each output's sidecar.

    ``no_sidecar``: outputs signed in their statement (by digest) that get no sidecar file
    beside them. Outputs outside the project that the command line does not name
    (:func:`unnamed_outside`) never get one: this is the one place run sidecars are written.

    Returns the sidecar paths. Raises :class:`SharkError` naming the first
    sidecar that could not be written (a read-only directory); callers inside
    a captured script turn it into a warning line.
    """
    if not run.outputs:
        return []
    no_sidecar = no_sidecar | unnamed_outside(run)
    key = key or load_signing_key()
    upstream = _Upstream(run)
    written: list[str] = []
    failures: list[str] = []
    deps: dict[str, dict[str, Any]] = {}
    with SidecarWriter() as writer:
        for group in group_outputs(run):
            payload = statement_bytes(run_to_statement(run, group, deps))
            head_digest = "sha256:" + hashlib.sha256(payload).hexdigest()
            head_line = envelope_line(sign_payload(payload, key)) + b"\n"
            for output in group:
                if output.path in no_sidecar:
                    continue
                data = head_line
                if upstream.by_path:
                    inputs = output.inputs if output.inputs is not None else \
                        [a.path for a in run.inputs]
                    data += upstream.data(inputs, head_digest)
                target = sidecar_path(output.path)
                try:
                    writer.write(target, data)
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
