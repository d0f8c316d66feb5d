"""``sharklib log``, ``uses``, ``impact``: questions across every recorded run.

All three answer from the ledger (:mod:`sharklib.cache.ledger`), the indexed
rows kept beside the run index, never by walking sidecars: "who read this
dataset, and what came of it?" is two index lookups per step of the answer.

A query names a path as the user sees it (``data/raw.csv``, ``data/``,
``helper.py``, an ``https://`` URL). Recorded paths are relative to each run's
project root, so the path is matched in every form it can have been recorded
under: relative to each recorded root that contains it (for runs of that
root), and as given when absolute. Over a remote (``--remote``) the roots are
other machines', so the path is matched relative to this project's root
(the nearest ``.git`` above the working directory, else the working directory).

Who ran a step is what its attestation says, and only as far as its signature
verifies: each run's stored sidecar is read and its signatures checked against
the keys this user trusts, exactly as ``verify`` would; a run signed by a key
that is not trusted, or whose signature does not verify, is marked as such.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from sharklib.cache.compact import entry_value
from sharklib.cache.ledger import Ledger, PathMatch
from sharklib.errors import SharkError
from sharklib.model.run import decode_path

#: the version of the JSON documents these commands print (``"schema"``)
JSON_SCHEMA = 1


# -- time ------------------------------------------------------------------------------------
_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(text: str, *, now: float | None = None) -> float:
    """``7d``/``12h``/``30m`` ago, an ISO date or date-time (local time unless it says), or epoch."""
    now = time.time() if now is None else now
    t = text.strip()
    m = _AGO.match(t)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        return float(t) if re.fullmatch(r"\d{9,}(\.\d+)?", t) else \
            _dt.datetime.fromisoformat(t).timestamp()
    except ValueError:
        raise SharkError(f"not a date or time: {text!r} (use 2026-12-01, 2026-12-01T14:00, "
                         "or 7d / 12h / 30m ago)") from None


def iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_time(t: float) -> str:
    return _dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def seconds(s: float | None) -> str:
    """A duration as a person reads it: 0.4 s, 41.3 s, 12 min, 3.2 h."""
    if s is None:
        return "-"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


class _Event(TypedDict):
    """A recorded run (``ran``/``failed``) or a reuse of it, before it is rendered."""

    event: str
    at: float
    run: dict[str, Any]
    user: str
    host: str
    saved: float


# -- where the ledger is ---------------------------------------------------------------------
@dataclass
class Source:
    """An open ledger, and how to read a run's attestation from the store behind it."""

    ledger: Ledger
    where: str
    remote: bool
    envelope: Callable[[dict[str, Any]], bytes | None]
    close: Callable[[], None]
    #: the run's signed cache entry's envelope (JSON), for a run that kept no sidecar (a step
    #: whose only outputs are logs outside the project): its record is signed all the same
    record: Callable[[dict[str, Any]], bytes | None] = field(default=lambda run: None)


def open_source(remote: bool | str = False, root: str | None = None) -> Source:
    """The local run index's ledger, or (``remote``) a local mirror of a remote's entries."""
    from sharklib.cache.runcache import RunCache

    root = root or project_root(os.getcwd())
    cache = RunCache.from_env(root)
    if remote:
        url = remote if isinstance(remote, str) else cache.remote_url
        if not url:
            cache.close()
            raise SharkError("no remote cache configured: pass --remote URL, or set "
                             "SHARKLIB_CACHE_REMOTE (or `remote` in .sharklib/cache.toml)")
        from sharklib.views.query_remote import mirror

        try:
            ledger, remote_envelope = mirror(url, cache.directory)
        except SharkError:
            raise
        except Exception as exc:  # credentials, permissions, a URL fsspec cannot list
            reason = str(exc).strip() or type(exc).__name__
            raise SharkError(f"remote {url}: cannot read its index entries: "
                             f"{type(exc).__name__}: {reason}") from None
        finally:
            cache.close()
        return Source(ledger, url, True, remote_envelope, ledger.close, remote_envelope)
    ledger = Ledger.open(cache.directory / "index.sqlite")

    def envelope(run: dict[str, Any]) -> bytes | None:
        sha = run.get("sidecar")
        if not sha or not cache.store.has(sha):
            return None
        try:
            with cache.store.open(sha) as fh:
                return fh.readline(4 << 20)
        except Exception:
            return None

    def close() -> None:
        ledger.close()
        cache.close()

    def record(run: dict[str, Any]) -> bytes | None:
        rows = ledger.q("SELECT entry FROM runs WHERE run_id=?", (run["run_id"],))
        try:
            attestation = entry_value(rows[0][0]).get("attestation") if rows else None
        except (ValueError, AttributeError, KeyError, TypeError):
            return None
        return json.dumps(attestation).encode() if isinstance(attestation, dict) else None

    return Source(ledger, str(cache.directory), False, envelope, close, record)


def project_root(cwd: str) -> str:
    from sharklib.common.identity import project_root as _root

    return _root(cwd)


# -- signers ---------------------------------------------------------------------------------
class Signers:
    """Who signed each run, as far as this user's trusted keys can tell (cached per sidecar)."""

    def __init__(self, source: Source) -> None:
        from sharklib.attest.keys import trusted_key_names, trusted_keys

        self.source = source
        self.keys = trusted_keys()
        self.names = trusted_key_names()
        self._seen: dict[str, dict[str, Any]] = {}

    def of(self, run: dict[str, Any], writes: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        """``{"keyid", "name", "trusted", "state"}``; state: trusted, untrusted, bad, unsigned,
        not-stored (the attestation is no longer in the cache)."""
        sha = run.get("sidecar") or ""
        got = self._seen.get(sha) if sha else None
        if got is None:
            got = self._judge(run, writes)
            if sha:
                self._seen[sha] = got
        return got

    def _judge(self, run: dict[str, Any], writes: list[tuple[str, str]] | None) -> dict[str, Any]:
        from sharklib.attest.dsse import check_signatures, payload_of

        entry = False
        if not run.get("sidecar"):
            # no sidecar kept (its outputs are logs outside the project, or it failed): the
            # signed cache entry of a cached run says who recorded it
            line = self.source.record(run)
            if not line:
                # a failed run is not cached: its attestation is beside its outputs, not here
                state = "not-stored" if run.get("exit_status") not in (0, None) else "unsigned"
                return {"keyid": None, "name": None, "trusted": False, "state": state}
            entry = True
        else:
            line = self.source.envelope(run)
        if not line:
            return {"keyid": None, "name": None, "trusted": False, "state": "not-stored"}
        try:
            envelope = json.loads(line)
            sigs = [str(s.get("keyid", "")) for s in envelope.get("signatures", [])]
            good, _bad = check_signatures(envelope, self.keys)
            statement = json.loads(payload_of(envelope))
            subjects = {str((s.get("digest") or {}).get("sha256", ""))
                        for s in statement.get("subject", [])}
            if entry and statement["predicate"]["entry"]["run"]["run_id"] != run["run_id"]:
                raise ValueError("the signed entry is another run's")
        except Exception:
            return {"keyid": None, "name": None, "trusted": False, "state": "bad"}
        if not entry and writes and not subjects & {sha for _, sha in writes}:
            # an attestation of other outputs: says nothing about this run
            return {"keyid": sigs[0] if sigs else None, "name": None, "trusted": False,
                    "state": "bad"}
        if good:
            kid = good[0]
            return {"keyid": kid, "name": self.names.get(kid), "trusted": True,
                    "state": "trusted"}
        if not sigs:
            return {"keyid": None, "name": None, "trusted": False, "state": "unsigned"}
        state = "bad" if sigs[0] in self.keys else "untrusted"
        return {"keyid": sigs[0], "name": None, "trusted": False, "state": state}


def signer_text(s: dict[str, Any]) -> str:
    kid = (s.get("keyid") or "")[:8]
    state = s.get("state")
    if state == "trusted":
        return f"{s.get('name') or 'trusted'} ({kid})"
    if state == "untrusted":
        return f"UNTRUSTED key {kid}"
    if state == "bad":
        return f"BAD signature {kid}".rstrip()
    if state == "not-stored":
        return "not in the cache"
    return "unsigned"


# -- one run as the commands print it --------------------------------------------------------
def run_json(run: dict[str, Any], signer: dict[str, Any], writes: list[tuple[str, str]],
             reuse: tuple[int, float] = (0, 0.0)) -> dict[str, Any]:
    cwd, _, command = str(run["step"]).partition("\0")
    status = run.get("exit_status")
    return {
        "run_id": run["run_id"],
        "when": iso(run["created"]),
        "started": run["created"],
        "duration": round(float(run["duration"]), 6),
        "cpu": None if run.get("cpu") is None else round(float(run["cpu"]), 6),
        "command": command,
        "cwd": cwd,
        "exit_status": status,
        "user": run["user"],
        "host": run["host"],
        "project": run["project"],
        "root": decode_path(run["root"]),
        "signed_by": signer,
        "outputs": [{"path": decode_path(p), "sha256": sha} for p, sha in sorted(writes)],
        "reused": reuse[0],
        "saved": round(reuse[1], 6),
    }


# -- targets ---------------------------------------------------------------------------------
@dataclass
class Target:
    """What a user named, and every form it can have been recorded under."""

    given: str
    shown: str
    kind: str  # file, directory, url
    matches: list[PathMatch] = field(default_factory=list)


def target(given: str, ledger: Ledger, *, remote: bool = False, cwd: str | None = None) -> Target:
    from sharklib.model.run import encode_path

    if "://" in given:
        prefix = given.endswith("/")
        return Target(given, given, "url", [PathMatch(given, prefix)])
    cwd = cwd or os.getcwd()
    path = os.path.normpath(os.path.join(cwd, os.path.expanduser(given)))
    prefix = os.path.isdir(path) or given.endswith("/")
    kind = "directory" if prefix else "file"
    matches: list[PathMatch] = [PathMatch(encode_path(path), prefix)]
    here = project_root(cwd)
    roots = [] if remote else [decode_path(r) for r in ledger.roots()]
    inside = [r for r in roots if path == r or path.startswith(r.rstrip("/") + "/")]
    for r in inside:
        rel = os.path.relpath(path, r)
        matches.append(PathMatch(encode_path(rel) if rel != "." else "", prefix or rel == ".",
                                 encode_path(r)))
    if not inside and (path == here or path.startswith(here.rstrip("/") + "/")):
        rel = os.path.relpath(path, here)
        matches.append(PathMatch(encode_path(rel) if rel != "." else "", prefix or rel == "."))
    shown = os.path.relpath(path, here) if path.startswith(here.rstrip("/") + "/") else path
    if prefix:
        shown = shown.rstrip("/") + "/"
    return Target(given, shown, kind, [m for m in matches if m.path or m.prefix])


# -- log -------------------------------------------------------------------------------------
STATUSES = ("ran", "reused", "failed")


def log(source: Source, paths: list[str], *, command: str | None = None,
        since: float | None = None, until: float | None = None, status: str | None = None,
        limit: int | None = None) -> dict[str, Any]:
    """Recorded runs and reuses, newest first, as one event list.

    A run is a ``ran`` event at the time it was recorded (``failed`` when it did
    not exit 0); each reuse of it is a ``reused`` event at the time of the reuse,
    by whoever reused it, with the time it saved. ``paths`` keeps the runs that
    read or wrote one of them.
    """
    led = source.ledger
    ids: set[str] | None = None
    if paths:
        ids = set()
        for p in paths:
            t = target(p, led, remote=source.remote)
            ids |= {r[0] for r in led.readers(t.matches)}
            ids |= set(_writers(led, t.matches))
    rows, total = led.events(since=since, until=until, status=status,
                             command=command, run_ids=ids, limit=limit)
    runs = led.runs(r[2] for r in rows)
    events: list[_Event] = [{"event": "reused" if ev == "reused" else
               ("ran" if runs[rid]["exit_status"] == 0 else "failed"),
               "at": at, "run": runs[rid], "user": user, "host": host, "saved": saved}
              for ev, at, rid, user, host, saved in rows if rid in runs]
    signers = Signers(source)
    writes = led.writes(e["run"]["run_id"] for e in events)
    out = []
    for e in events:
        run = e["run"]
        w = writes.get(run["run_id"], [])
        cwd, _, cmd = str(run["step"]).partition("\0")
        out.append({
            "event": e["event"], "when": iso(e["at"]), "at": e["at"], "run_id": run["run_id"],
            "user": e["user"], "host": e["host"], "command": cmd, "cwd": cwd,
            "project": run["project"], "duration": round(float(run["duration"]), 6),
            "exit_status": run["exit_status"], "saved": round(float(e["saved"]), 6),
            "outputs": [decode_path(p) for p, _ in sorted(w)],
            "signed_by": signers.of(run, w),
        })
    return {"schema": JSON_SCHEMA, "source": source.where, "remote": source.remote,
            "events": out, "total": total, "shown": len(out)}


def _writers(led: Ledger, matches: list[PathMatch]) -> list[str]:
    out: list[str] = []
    for m in matches:
        cond, args = m.sql("w")
        sql = "SELECT w.run_id FROM ledger_writes w"
        if m.root is not None:
            sql += " JOIN ledger_runs l ON l.run_id = w.run_id"
            cond += " AND l.root = ?"
            args.append(m.root)
        out += [r[0] for r in led.q(f"{sql} WHERE {cond}", args)]
    return out


# -- uses ------------------------------------------------------------------------------------
def uses(source: Source, given: str, *, digest: str | None = None,
         depth: int | None = None) -> dict[str, Any]:
    """Every step that read ``given`` (any version, or ``digest``) and everything downstream."""
    led = source.ledger
    t = target(given, led, remote=source.remote)
    reads = led.readers(t.matches, digest)
    direct: dict[str, list[tuple[str, str, str]]] = {}
    for rid, kind, path, sha in reads:
        direct.setdefault(rid, []).append((kind, path, sha))
    down = led.downstream(direct, depth)
    runs = led.runs(down)
    writes = led.writes(down)
    totals = led.reuse_totals(down)
    signers = Signers(source)
    readers_out = []
    for rid in sorted(direct, key=lambda r: -runs[r]["created"] if r in runs else 0):
        run = runs.get(rid)
        if run is None:
            continue
        item = run_json(run, signers.of(run, writes.get(rid)), writes.get(rid, []),
                        totals.get(rid, (0, 0.0)))
        item["read"] = [{"kind": k, "path": decode_path(p), "sha256": s}
                        for k, p, s in sorted(direct[rid], key=lambda x: (x[1], x[0]))]
        readers_out.append(item)
    downstream_out = []
    for rid, (d, via) in sorted(down.items(), key=lambda kv: (kv[1][0], -runs.get(
            kv[0], {"created": 0})["created"])):
        if d == 0 or rid not in runs:
            continue
        run = runs[rid]
        item = run_json(run, signers.of(run, writes.get(rid)), writes.get(rid, []),
                        totals.get(rid, (0, 0.0)))
        item["depth"] = d
        item["via"] = sorted(decode_path(p) for p in via)
        downstream_out.append(item)
    results = sorted({(decode_path(p), sha, rid, down[rid][0])
                      for rid in down for p, sha in writes.get(rid, [])},
                     key=lambda x: (x[3], x[0], x[2]))
    versions = sorted({(decode_path(p), s) for rid in direct for _k, p, s in direct[rid]})
    return {
        "schema": JSON_SCHEMA, "source": source.where, "remote": source.remote,
        "target": t.shown, "kind": t.kind, "digest": digest,
        "versions": [{"path": p, "sha256": s} for p, s in versions],
        "readers": readers_out, "downstream": downstream_out,
        "results": [{"path": p, "sha256": s, "run_id": r, "depth": d}
                    for p, s, r, d in results],
    }


# -- impact ----------------------------------------------------------------------------------
def impact(source: Source, given: list[str], *, changed: bool = False,
           since_rev: str | None = None, digest: str | None = None) -> dict[str, Any]:
    """Recorded outputs whose current lineage includes the target, grouped by step.

    Only each step's newest run counts (older runs are history: their outputs
    were replaced). The cost to redo a step is its newest run's recorded
    duration. With ``changed``, the targets are the recorded inputs of those
    newest runs that differ on disk now (stat, re-hash when the stat changed);
    with ``since_rev``, the files git says changed since that revision.
    """
    led = source.ledger
    cwd = os.getcwd()
    here = project_root(cwd)
    seeds: dict[str, set[str]] = {}
    changed_out: list[dict[str, Any]] = []
    targets: list[str] = list(given)
    if since_rev is not None:
        targets += _git_changed(here, since_rev)
    shown = []
    for g in targets:
        t = target(g, led, remote=source.remote, cwd=cwd if g in given else here)
        shown.append(t.shown)
        for rid, _kind, path, _sha in led.readers(t.matches, digest):
            seeds.setdefault(rid, set()).add(path)
    if changed:
        for rid, path, rec, now in _stale_inputs(led, here):
            seeds.setdefault(rid, set()).add(path)
            changed_out.append({"path": decode_path(path), "recorded": rec, "now": now,
                                "run_id": rid})
    down = led.downstream(seeds)
    runs = led.runs(down)
    newest = led.newest_of_steps((r["root"], r["step"]) for r in runs.values())
    current = {rid for rid, r in runs.items() if newest.get((r["root"], r["step"])) == rid}
    writes = led.writes(current)
    signers = Signers(source)
    steps = []
    for rid in sorted(current, key=lambda r: (down[r][0], runs[r]["step"])):
        run = runs[rid]
        item = run_json(run, signers.of(run, writes.get(rid)), writes.get(rid, []))
        item["depth"] = down[rid][0]
        item["via"] = sorted(decode_path(p) for p in (seeds.get(rid) or down[rid][1]))
        for o in item["outputs"]:
            o["state"] = _state(o["path"], o["sha256"], decode_path(run["root"]))
        steps.append(item)
    seen_changed: set[tuple[str, str]] = set()
    uniq_changed = []
    for c in changed_out:
        if (c["path"], c["now"] or "") not in seen_changed:
            seen_changed.add((c["path"], c["now"] or ""))
            uniq_changed.append({k: c[k] for k in ("path", "recorded", "now")})
    return {
        "schema": JSON_SCHEMA, "source": source.where, "remote": source.remote,
        "targets": shown, "changed": uniq_changed if changed else None,
        "since": since_rev, "steps": steps,
        "outputs": sum(len(s["outputs"]) for s in steps),
        "redo_seconds": round(sum(s["duration"] for s in steps), 6),
    }


def _state(path: str, sha: str, root: str) -> str:
    """An output on disk now: current, changed or missing (stat cache: one stat if unchanged)."""
    from sharklib.hashing import StatCache

    full = path if os.path.isabs(path) else os.path.join(root, path)
    if not os.path.exists(full):
        return "missing"
    try:
        return "current" if StatCache().unchanged(full, sha) else "changed"
    except Exception:
        return "unreadable"


def _stale_inputs(led: Ledger, here: str) -> list[tuple[str, str, str, str | None]]:
    """(run, path, recorded sha, current sha or None) for inputs of newest runs that differ now."""
    from sharklib.hashing import StatCache
    from sharklib.model.run import encode_path

    roots = [decode_path(r) for r in led.roots()]
    mine = [r for r in roots if r == here or r.startswith(here.rstrip("/") + "/")] or [here]
    out = []
    cache = StatCache()
    for root in mine:
        rows = [r for r in led.newest_readers_under(encode_path(root)) if r[1] != "download"]
        files = {r[2]: decode_path(r[2]) if os.path.isabs(decode_path(r[2]))
                 else os.path.join(root, decode_path(r[2])) for r in rows}
        # as reuse checks them: a directory read (a listing) has a digest of its own
        got = cache.digests([f for f in files.values() if os.path.exists(f)])
        for rid, _kind, path, sha in rows:
            now = got.get(files[path])
            if now is None or now[0] != sha:
                out.append((rid, path, sha, now[0] if now else None))
    return out


def _git_changed(root: str, rev: str) -> list[str]:
    """Tracked files changed since ``rev`` (committed, staged, or in the working tree).

    Untracked files are left out: they are mostly outputs the recorded steps
    wrote, not changes to what they read (``--changed`` compares those).
    """
    import subprocess

    def git(*args: str) -> list[str]:
        try:
            done = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True,
                                  check=False)
        except OSError as exc:
            raise SharkError(f"--since needs git: {exc.strerror}") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["git failed"])[-1]
            raise SharkError(f"git {' '.join(args[:2])}: {last}")
        return [line for line in done.stdout.splitlines() if line]

    top = git("rev-parse", "--show-toplevel")[0]
    names = set(git("diff", "--name-only", rev, "--"))
    return [os.path.join(top, n) for n in sorted(names)]


# -- rendering -------------------------------------------------------------------------------
def _table(title: str, columns: list[str]) -> Any:
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    return t


def _esc(text: str) -> str:
    from sharklib.views.text import safe_markup

    return safe_markup(text)


def _outputs_text(outputs: list[Any], n: int = 3) -> str:
    paths = [o["path"] if isinstance(o, dict) else o for o in outputs]
    shown = ", ".join(_esc(p) for p in paths[:n])
    return shown + (f" +{len(paths) - n}" if len(paths) > n else "")


def print_log(doc: dict[str, Any], console: Any) -> None:
    if not doc["events"]:
        console.print(f"no recorded run matches · {_esc(doc['source'])}")
        return
    t = _table(f"{doc['shown']} of {doc['total']} events · {_esc(doc['source'])}",
               ["when", "", "who", "signed by", "command", "took", "saved", "outputs"])
    for e in doc["events"]:
        mark = {"ran": "ran", "reused": "[green]reused[/]", "failed": "[red]failed[/]"}[e["event"]]
        who = f"{e['user']}@{e['host']}" if e["user"] else "(unknown)"
        t.add_row(local_time(e["at"]), mark, _esc(who),
                  _esc(signer_text(e["signed_by"])), _esc(e["command"]), seconds(e["duration"]),
                  seconds(e["saved"]) if e["event"] == "reused" else "",
                  _outputs_text(e["outputs"]))
    console.print(t)


def print_uses(doc: dict[str, Any], console: Any) -> None:
    if not doc["readers"]:
        console.print(f"no recorded step read {_esc(doc['target'])}"
                      + (f" at {doc['digest']}" if doc["digest"] else ""))
        return
    t = _table(f"{len(doc['readers'])} step(s) read {_esc(doc['target'])}",
               ["when", "who", "signed by", "command", "read", "outputs"])
    for r in doc["readers"]:
        read = ", ".join(f"{_esc(x['path'])}@{x['sha256'][:8]}" for x in r["read"][:3])
        t.add_row(local_time(r["started"]), _esc(f"{r['user']}@{r['host']}"),
                  _esc(signer_text(r["signed_by"])), _esc(r["command"]), read,
                  _outputs_text(r["outputs"]))
    console.print(t)
    if doc["downstream"]:
        d = _table(f"{len(doc['downstream'])} step(s) downstream", ["depth", "when", "who",
                                                                    "command", "via", "outputs"])
        for r in doc["downstream"]:
            d.add_row(str(r["depth"]), local_time(r["started"]), _esc(f"{r['user']}@{r['host']}"),
                      _esc(r["command"]), _outputs_text(r["via"], 2), _outputs_text(r["outputs"]))
        console.print(d)
    console.print(f"{len(doc['results'])} recorded result(s) come from "
                  f"{_esc(doc['target'])}")


def print_impact(doc: dict[str, Any], console: Any) -> None:
    if doc["changed"] is not None:
        if doc["changed"]:
            console.print(f"{len(doc['changed'])} recorded input(s) changed: "
                          + ", ".join(_esc(c["path"]) for c in doc["changed"][:8]))
        else:
            console.print("no recorded input changed: nothing is stale")
    if not doc["steps"]:
        if doc["targets"]:
            console.print("no current recorded output depends on "
                          + ", ".join(_esc(x) for x in doc["targets"]))
        return
    # the ledger is the cache's: steps of other projects sharing it are named with theirs
    several = len({s["root"] for s in doc["steps"]}) > 1
    t = _table(f"{len(doc['steps'])} step(s) to redo, {doc['outputs']} output(s)",
               ["depth", *(["project"] if several else []), "command", "last run", "redo cost",
                "outputs"])
    for s in doc["steps"]:
        outs = ", ".join(_esc(o["path"]) + ("" if o["state"] == "current" else f" [{o['state']}]")
                         for o in s["outputs"][:4])
        if len(s["outputs"]) > 4:
            outs += f" +{len(s['outputs']) - 4}"
        t.add_row(str(s["depth"]), *([_esc(s["project"])] if several else []), _esc(s["command"]),
                  local_time(s["started"]), seconds(s["duration"]), outs)
    console.print(t)
    console.print(f"redoing them costs {seconds(doc['redo_seconds'])} of recorded compute")


def dump(doc: dict[str, Any]) -> str:
    """The JSON document: indented on a terminal, compact otherwise.

    Compact output goes through the C encoder; ``indent`` forces the pure-Python
    one, which took 0.9 s of a 1.5 s ``impact`` answering with 850 kB.
    """
    import sys

    if sys.stdout.isatty():
        return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
