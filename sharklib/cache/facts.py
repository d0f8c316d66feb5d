"""Reuse facts: the compact part of an index entry that deciding reuse needs.

The run index (:mod:`sharklib.cache.index`) keeps, beside each successful run's
full JSON entry (:mod:`sharklib.cache.entry`), a facts row: input and module paths
with digests, output paths, imported distributions and downloads. A no-op re-check
of a whole pipeline splits a few hundred bytes per run instead of decoding full
records; this module writes that row (:func:`facts_text`) and reads it
(:class:`RunFacts`).
"""

from __future__ import annotations

import json
import os

from sharklib.errors import StoreError
from sharklib.model.run import decode_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: 2: output digests and the key ids the entry's attestation claims to be signed by;
#: 3: the environment variables the run's own code read (rows of 2 are derived again)
FACTS_VERSION = 3

# A facts row is NUL-separated text (NUL is the one character no path can hold):
#   version, #inputs, #modules, #outputs, (path, sha256) per input, module then output,
#   signers (the key ids the attestation names, comma-separated), distributions (JSON),
#   downloads (JSON)
# Splitting it is several times cheaper than decoding JSON, which is what a no-op
# re-check of 10,000 stages spends its time on otherwise.
# A probe (a path the run asked about without reading it) is counted among the inputs, after
# them, with ``probe:<answer>`` for a digest: no file hashes to that, so an older sharklib
# sharing the cache plans such a run as changed (and runs it) instead of missing the probe.
# An environment variable the run's own code read is counted among them the same way, its
# name for a path and ``env:<digest of the value>`` for a digest.
_SEP = "\0"
_PROBE = "probe:"
_VARIABLE = "env:"


def facts_text(data: dict[str, Any]) -> str:
    """The compact reuse facts of an entry (as :meth:`IndexEntry.to_dict` gives it).

    Just what deciding reuse needs — input and module paths with digests, outputs
    with digests (what a reuse leaves on disk, which a downstream stage then reads),
    who the attestation says signed it, imported distributions, downloads — so a
    no-op re-check of a whole pipeline splits a few hundred bytes per run instead of
    decoding the full record.
    """
    run = data["run"]
    dists = (run.get("environment") or {}).get("distributions") or {}
    outputs = [(o["path"], o["sha256"]) for o in data["objects"] if o["role"] == "output"]
    probes = data.get("probes") or []
    variables = sorted((run.get("variables_read") or {}).items())
    fields = [str(FACTS_VERSION), str(len(data["inputs"]) + len(probes) + len(variables)),
              str(len(data["modules"])), str(len(outputs))]
    for p, sha in (*data["inputs"], *((p, _PROBE + t) for p, t in probes),
                   *((name, _VARIABLE + seen) for name, seen in variables), *data["modules"],
                   *outputs):
        fields += (p, sha)
    fields.append(",".join(claimed_signers(data.get("attestation"))))
    fields.append(json.dumps(dists, sort_keys=True, separators=(",", ":")))
    fields.append(json.dumps(run.get("downloads") or [], sort_keys=True, separators=(",", ":")))
    if any(_SEP in f for f in fields):
        raise StoreError("NUL byte in a cache index entry", None)
    return _SEP.join(fields)


def claimed_signers(envelope: Any) -> list[str]:
    """The key ids a DSSE envelope's signatures name (claimed, not verified: see runner/proof)."""
    sigs = envelope.get("signatures") if isinstance(envelope, dict) else None
    if not isinstance(sigs, list):
        return []
    out = []
    for s in sigs:
        kid = s.get("keyid") if isinstance(s, dict) else None
        if isinstance(kid, str) and kid and kid.isalnum() and kid not in out:
            out.append(kid)
    return out


def sig_text(st: os.stat_result) -> str:
    """A stat signature as kept in the facts' ``sigs`` (see :class:`RunFacts`)."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


class RunFacts:
    """What deciding reuse of one successful indexed run needs, decoded from its facts row.

    ``checked`` lists ``(path, sha256)`` of every input then module (paths relative
    to the project root when they were inside it); ``probes`` the ``(path, answer)`` of
    paths the run asked about without reading them (one ``stat`` each). ``sigs``, aligned
    with ``checked``,
    holds the stat signature (:func:`sig_text`) under which each file was last
    *verified* to have its recorded digest, or ``""``: a file still showing that
    signature needs no digest lookup at all. Signatures are only stored outside
    the stat cache's racy window (see :mod:`sharklib.hashing.statcache`), so they
    prove exactly as much as a stat cache hit does.

    ``signers`` are the key ids the entry's attestation *names*; ``proved``, the one
    whose signature was verified on it (by :mod:`sharklib.runner.proof`, which sets
    it), if any. Whether that key is trusted for reuse is decided at each lookup.
    """

    __slots__ = ("_dists", "_downloads", "checked", "duration", "inputs", "key", "output_digests",
                 "outputs", "plain", "probes", "proved", "relative", "run_id", "signers", "sigs",
                 "started", "variables")

    def __init__(self, run_id: str, key: str, started: float, duration: float,
                 facts: str, sigs: str | None, where: str, proved: str | None = None) -> None:
        try:
            fields = facts.split(_SEP)
            if fields[0] != str(FACTS_VERSION):  # older facts: derived again from the entry
                raise ValueError(f"unknown facts version {fields[0][:20]!r}")
            n_in, n_mod, n_out = int(fields[1]), int(fields[2]), int(fields[3])
            mid = 4 + 2 * (n_in + n_mod)
            end = mid + 2 * n_out
            if n_in < 0 or n_mod < 0 or n_out < 0 or len(fields) != end + 3:
                raise ValueError("truncated facts")
            checked = [(fields[4], fields[5])] if mid == 6 else \
                list(zip(fields[4:mid:2], fields[5:mid:2], strict=True))
            outputs = fields[mid:end:2]
            digests = fields[mid + 1:end:2]
            signers = fields[-3]
            self._dists, self._downloads = fields[-2], fields[-1]
            if "b64:" in facts:
                checked = [(decode_path(p), s) for p, s in checked]
                outputs = [decode_path(p) for p in outputs]
            probes: list[tuple[str, str]] = []
            if _PROBE in facts:
                probes = [(p, s[len(_PROBE):]) for p, s in checked[:n_in] if s.startswith(_PROBE)]
                if probes:
                    checked = [c for c in checked if not c[1].startswith(_PROBE)]
                    n_in -= len(probes)
            variables: dict[str, str] = {}
            if _SEP + _VARIABLE in facts:
                variables = {p: s[len(_VARIABLE):] for p, s in checked[:n_in]
                             if s.startswith(_VARIABLE)}
                if variables:
                    checked = [c for c in checked if not c[1].startswith(_VARIABLE)]
                    n_in -= len(variables)
        except (ValueError, TypeError, AttributeError, IndexError) as exc:
            raise StoreError(f"malformed reuse facts in cache index: {exc}",
                             f"{where} (run {run_id})") from None
        self.run_id = run_id
        self.key = key
        self.started = started
        self.duration = duration
        #: no imported distributions and no downloads: nothing but files to check
        self.plain = self._dists == "{}" and self._downloads == "[]"
        #: every path is relative to the project root (an absolute one follows a NUL;
        #: an encoded one may be either)
        self.relative = "\0/" not in facts and "b64:" not in facts
        self.checked = checked
        self.inputs = checked[:n_in] if n_mod else checked
        #: ``(path, answer)`` of paths the run asked about without reading them
        self.probes = probes
        #: environment variables the run's own code read: name -> digest of the value it saw
        self.variables = variables
        self.outputs = outputs
        self.output_digests = digests
        self.signers = signers.split(",") if signers else []
        self.proved = proved
        parsed = sigs.split(_SEP) if sigs else None
        # a stale or damaged hint is only a lost shortcut
        self.sigs = parsed if parsed is not None and len(parsed) == len(checked) else None

    @property
    def modules(self) -> list[tuple[str, str]]:
        return self.checked[len(self.inputs):]

    @property
    def distributions(self) -> dict[str, Any]:
        """Imported distributions and their versions (decoded on use; usually empty)."""
        return self._json(self._dists, dict)  # type: ignore[no-any-return]

    @property
    def downloads(self) -> list[Any]:
        """The recorded downloads, as in the run record (decoded on use; usually empty)."""
        return self._json(self._downloads, list)  # type: ignore[no-any-return]

    def _json(self, text: str, kind: type) -> Any:
        if text in ("{}", "[]"):
            return kind()
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, kind):
            raise StoreError("malformed reuse facts in cache index", f"run {self.run_id}")
        return value


def sigs_text(sigs: list[str]) -> str:
    return _SEP.join(sigs)
