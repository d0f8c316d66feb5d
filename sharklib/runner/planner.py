"""Reuse plans of commands: would each be reused, and why (not)?

:func:`plan_commands` plans many stages at once from the index's compact reuse
facts (one query for all keys, inputs proved by their stat signature, run keys
vectorised); :func:`plan_command` plans one. The decision itself is the runner's
(:mod:`sharklib.runner.decide`), so a plan says what the run will then do. Keys and
the command-line parsing they rest on are in :mod:`sharklib.runner.stagekey`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sharklib.model import run_key_parts
from sharklib.model.runkey import relocate, sha256_constructor
from sharklib.runner.stagekey import (
    command_argv,
    key_places,
    programs_key,
    project_root,
    stage_environment,
    stage_key,
)

if TYPE_CHECKING:
    from sharklib.cache.facts import RunFacts


@dataclass(slots=True)
class Plan:
    """Would this command be reused, and why (not)?"""

    action: str
    reason: str
    run_id: str | None = None
    saved_seconds: float = 0.0
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    #: for a reuse plan: were all recorded outputs on disk when planned (None: not looked)
    on_disk: bool | None = None
    #: in a pipeline: not handed to any executor (see :func:`sharklib.pipeline.plan.propagate`)
    skip: bool = False


@dataclass(slots=True)
class StageSpec:
    command: Sequence[str] | str
    cwd: str
    shell: bool = True
    env_tag: str | None = None
    #: the ``PATH`` the command will run with (None: this process's)
    path: str | None = None
    #: download pins (URL -> sha256) that make a recorded download trusted
    pins: Mapping[str, str] | None = None


def _abs(path: str, root: str) -> str:
    return path if os.path.isabs(path) else os.path.join(root, path)


# -- run keys of many stages ---------------------------------------------------------------
_PROBE = "\0sharklib-probe-\u00e9\0"  # NUL and non-ASCII: escaping and ensure_ascii both show


class _KeyMaker:
    """Run keys of shell command lines sharing one cwd, root and environment, vectorised.

    The key is a digest of canonical JSON in which the command is the one thing
    that varies, and a relative command line enters it as a JSON string verbatim.
    So the bytes around it are worked out once, from a probe command, and each
    stage costs one string encoding and one sha256. The probe's digest is checked
    against :meth:`RunKeyParts.digest` itself: if the key's make-up ever changes,
    the check fails and every stage goes the slow, always-right way.
    """

    def __init__(self, cwd: str, root: str, env: dict[str, str]) -> None:
        from json.encoder import encode_basestring

        from sharklib.model.runkey import KEY_VERSION, canonical_json

        self.cwd, self.root, self.env = cwd, root, env
        #: a command line enters the key relocated (see sharklib.model.runkey.relocate)
        self.places = key_places(root)
        self.encode = encode_basestring
        self.parts: tuple[bytes, bytes] | None = None
        probe = run_key_parts(command_argv(_PROBE, True), cwd, root, {"kind": "stage"}, env,
                              self.places[1:])
        body = canonical_json({"v": KEY_VERSION, "argv": probe.argv, "cwd": probe.cwd,
                               "code": probe.code, "environment": probe.environment})
        needle = encode_basestring(_PROBE).encode("utf-8", "surrogateescape")
        if body.count(needle) == 1:
            before, after = body.split(needle)
            if "sha256:" + sha256_constructor()(before + needle + after).hexdigest() == probe.digest():
                self.parts = (before, after)

    def digest(self, command: Sequence[str] | str, shell: bool) -> str:
        if self.parts is not None and shell and isinstance(command, str) \
                and not os.path.isabs(command):
            before, after = self.parts
            text = relocate(command, self.places)
            return "sha256:" + sha256_constructor()(
                before + self.encode(text).encode("utf-8", "surrogateescape") + after).hexdigest()
        return run_key_parts(command_argv(command, shell), self.cwd, self.root, {"kind": "stage"},
                             self.env, self.places[1:]).digest()


def stage_keys(specs: Sequence[StageSpec]) -> tuple[list[str], list[str]]:
    """Run key digests and project roots of many stages (see :func:`stage_key`).

    Environment and root are worked out once per (cwd, environment tag), not per stage.
    """
    makers: dict[tuple[str, str | None, str], _KeyMaker] = {}
    envs: dict[str | None, dict[str, str]] = {}
    roots: dict[str, str] = {}
    keys: list[str] = []
    stage_roots: list[str] = []
    sha256 = sha256_constructor()
    last: tuple[str, str | None, str] | None = None
    maker: _KeyMaker | None = None
    here = os.environ.get("PATH", os.defpath)
    for s in specs:
        cwd = os.path.abspath(s.cwd)
        programs = programs_key(s.command, s.shell, cwd, s.path if s.path is not None else here)
        where = (s.cwd, s.env_tag, programs)
        if where != last:  # a pipeline's stages mostly share all three: one look-up per run of them
            last = where
            maker = makers.get(where)
            if maker is None:
                if s.env_tag not in envs:
                    envs[s.env_tag] = stage_environment(s.env_tag)
                if cwd not in roots:
                    roots[cwd] = project_root(cwd)
                maker = makers[where] = _KeyMaker(cwd, roots[cwd],
                                                  {**envs[s.env_tag], "programs": programs})
        assert maker is not None
        command = s.command
        if maker.parts is not None and s.shell and type(command) is str \
                and not command.startswith("/"):  # the vectorised key (see _KeyMaker)
            before, after = maker.parts
            keys.append("sha256:" + sha256(
                before + maker.encode(relocate(command, maker.places)).encode(
                    "utf-8", "surrogateescape") + after
            ).hexdigest())
        else:
            keys.append(maker.digest(command, s.shell))
        stage_roots.append(maker.root)
    return keys, stage_roots


# -- plans ---------------------------------------------------------------------------------
_NEW = "new: no past run of this command, code and environment"
#: a plan names how a new stage's key differs from its command's last run for this many at most
_EXPLAIN_NEW_AT_MOST = 64
_UNCHANGED = "inputs unchanged"


def plan_commands(specs: Sequence[StageSpec], cache: object | None = None) -> list[Plan]:
    """Reuse plans for many commands at once: one index query, stats, rare digest lookups.

    Each past run's reuse facts (:class:`~sharklib.cache.facts.RunFacts`) carry the
    stat signature under which every input was last verified, so an unchanged
    input costs one ``stat`` here; only inputs whose signature moved (touched,
    edited, never verified) go to the stat cache, in one batch, and the answers
    are kept for next time. Nothing is restored or run:
    :func:`sharklib.runner.run_command` does that when the stage is actually run.
    """
    from sharklib.cache.runcache import RunCache
    from sharklib.config import ENV_NO_CACHE, ENV_RERUN, flag

    if flag(ENV_NO_CACHE):
        return [Plan("run", "cache disabled (--no-cache)") for _ in specs]
    if flag(ENV_RERUN):
        return [Plan("run", "forced (--rerun)") for _ in specs]
    if not specs:
        return []
    import gc

    # a dozen long-lived objects per stage: the cyclic GC would rescan them over and over
    collecting = gc.isenabled()
    gc.disable()
    own = cache is None
    rc: RunCache | None = cache  # type: ignore[assignment]
    try:
        keys, roots = stage_keys(specs)
        if rc is None:
            rc = RunCache.from_env(roots[0])
        return _Planner(rc, specs, keys, roots).plans()
    finally:
        if own and rc is not None:
            rc.close()
        if collecting:
            gc.enable()


class _Planner:
    """The decisions of :func:`plan_commands`: a stat-only pass, then a digest pass.

    Facts arrive one batch of keys at a time and are decided at once, so only the
    candidates of stages left for the digest pass outlive their batch.
    """

    def __init__(self, rc: Any, specs: Sequence[StageSpec], keys: list[str],
                 roots: list[str]) -> None:
        from sharklib.runner.proof import reuse_keys

        self.rc, self.specs, self.keys, self.roots = rc, specs, keys, roots
        #: candidates of the stages the stat-only pass could not decide, by key
        self.found: dict[str, list[RunFacts]] = {}
        #: the keys whose signatures this user accepts for reuse (runner/proof.py)
        self.trusted = reuse_keys()
        #: absolute path -> digest a reused stage leaves there (restored if it differs), which
        #: a stage downstream then reads
        self.restores: dict[str, str] = {}
        #: run id -> the key whose signature on its entry this plan verified (kept at the end)
        self.proved: dict[str, str] = {}

    def reuse(self, i: int, f: RunFacts, prefix: str) -> Plan:
        """Plan stage ``i`` to reuse ``f``, noting what the reuse leaves on disk."""
        plan = _reuse_plan(f, prefix)
        self.restores.update(zip(plan.outputs, f.output_digests, strict=True))
        return plan

    def plans(self) -> list[Plan]:
        keys, roots = self.keys, self.roots
        plans: list[Plan | None] = [None] * len(keys)
        first: dict[str, int] = {}  # key -> its first stage; others with the same key follow
        more: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if first.setdefault(key, i) != i:
                more.setdefault(key, []).append(i)
        slow: list[int] = []
        stat = os.stat
        prefixes: dict[str, str] = {}
        for batch in self.rc.index.iter_reuse_facts(first):
            for key, cands in batch.items():
                f = cands[0]
                for i in (first[key], *more.get(key, ())):
                    root = roots[i]
                    prefix = prefixes.get(root)
                    if prefix is None:
                        prefix = prefixes[root] = root if root.endswith("/") else root + "/"
                    checked = f.checked
                    ok = True
                    if checked:
                        sigs = f.sigs
                        if sigs is None:
                            ok = False
                        else:
                            for (p, _), sig in zip(checked, sigs, strict=True):
                                try:
                                    st = stat(p if p.startswith("/") else prefix + p)
                                except (OSError, ValueError):
                                    ok = False
                                    break
                                # a signature this file had when verified to hold its digest
                                if sig != f"{st.st_dev}:{st.st_ino}:{st.st_size}:" \
                                          f"{st.st_mtime_ns}:{st.st_ctime_ns}":
                                    ok = False
                                    break
                    # asked about without reading (os.path.exists): one stat each; a path an
                    # upstream reuse is about to restore counts as it is now (so: run, safely)
                    if ok and f.probes:
                        ok = _probes_hold(f.probes, prefix)
                    # the variables the run's own code read: same values in this environment
                    if ok and f.variables:
                        ok = _variables_hold(f.variables)
                    # proved: signed by a key trusted for reuse, checked when it was recorded
                    # or planned before (the signer is the one question not about files)
                    if ok and f.proved is not None and f.proved in self.trusted \
                            and (f.plain or self._environment_reason(f, i) is None):
                        plans[i] = self.reuse(i, f, prefix)
                    else:
                        slow.append(i)
                        self.found[key] = cands
        found = self.found
        new: list[int] = []
        for i, p in enumerate(plans):
            if p is None and keys[i] not in found:
                plans[i] = Plan("run", _NEW)
                new.append(i)
        if new and len(new) <= _EXPLAIN_NEW_AT_MOST:
            self._name_key_differences(new, plans)
        if slow:
            self._slow(slow, plans)
        _mark_on_disk(plans)
        return plans  # type: ignore[return-value]

    def _name_key_differences(self, new: list[int], plans: list[Plan | None]) -> None:
        """For a few new stages: how the key differs from the last run of the same command.

        A teammate's checkout, another environment variable, another interpreter: the
        reason column then says what to look at instead of only "new".
        """
        from sharklib.runner.explain import same_command_difference

        for i in new:
            spec = self.specs[i]
            try:
                parts, _ = stage_key(spec.command, shell=spec.shell, cwd=spec.cwd,
                                     env_tag=spec.env_tag, root=self.roots[i], path=spec.path)
                if parts.digest() != self.keys[i]:
                    continue  # (the planner's own key is the truth; never explain another)
                diff = same_command_difference(self.rc, parts)
            except Exception:
                continue
            if diff is not None:
                plans[i] = Plan("run", f"new key: {diff}")

    def _environment_reason(self, f: RunFacts, i: int) -> str | None:
        if not f.distributions and not f.downloads:
            return None
        from sharklib.runner import decide

        return decide.environment_reason(f.distributions, f.downloads, None, self.specs[i].pins)

    def _slow(self, slow: list[int], plans: list[Plan | None]) -> None:
        """Stages the stat-only pass could not prove: ask the stat cache, check signatures.

        A file a reused stage upstream restores counts with the digest it will have
        then (the run restores it before the stage downstream is looked at), so stages
        are decided again while a new reuse changes what they would read.
        """
        from sharklib.cache.facts import sig_text, sigs_text
        from sharklib.runner import decide

        wanted: set[str] = set()
        for i in slow:
            root = self.roots[i]
            for f in self.found[self.keys[i]]:
                wanted.update(_abs(p, root) for p, _ in f.checked)
        got = self.rc.statcache.verified(wanted)
        fresh: dict[str, str] = {}
        reasons: dict[int, str] = {}
        pending = slow
        while pending:
            overlaid = {p: (sha, None, None) for p, sha in self.restores.items()
                        if p in wanted and (p not in got or got[p][0] != sha)}
            now = {**got, **overlaid} if overlaid else got
            before = len(self.restores)
            left = []
            for i in pending:
                root, spec = self.roots[i], self.specs[i]
                first_reason: str | None = None
                for f in self.found[self.keys[i]]:
                    # the one decision the run makes too (sharklib.runner.decide)
                    verdict = decide.judge_run(f.inputs, f.modules, f.distributions, f.downloads,
                                               root=root, now=now, policy=None, pins=spec.pins,
                                               cwd=spec.cwd, run_id=f.run_id, signers=f.signers,
                                               trusted=self.trusted, probes=f.probes,
                                               variables=f.variables)
                    reason = verdict if isinstance(verdict, str) else self._unproved(f)
                    if reason is None:
                        plans[i] = self.reuse(i, f, root if root.endswith("/") else root + "/")
                        paths = [_abs(p, root) for p, _ in f.checked]
                        if not any(p in overlaid for p in paths):
                            sigs = [sig_text(st) if (st := got[p][2]) is not None else ""
                                    for p in paths]
                            if any(sigs) and sigs != f.sigs:
                                fresh[f.run_id] = sigs_text(sigs)
                        break
                    if first_reason is None:
                        first_reason = reason
                if plans[i] is None:
                    reasons[i] = first_reason or ""
                    left.append(i)
            pending = left if len(self.restores) != before else []
        for i, reason in reasons.items():
            if plans[i] is None:
                root = self.roots[i]
                f = self.found[self.keys[i]][0]
                plans[i] = Plan("run", reason, f.run_id, 0.0,
                                [_abs(p, root) for p, _ in f.inputs],
                                [_abs(p, root) for p in f.outputs])
        self.rc.index.update_sigs(fresh.items())
        self.rc.index.set_proved(self.proved.items())

    def _unproved(self, f: RunFacts) -> str | None:
        """Why ``f``'s entry proves nothing (None: a trusted signature on it verifies).

        Checked once per entry and key: the key whose signature verified is kept in the
        index (``proved``), so a later plan costs no signature check. The run checks the
        signature itself before restoring anything (:func:`sharklib.runner.proof.prove`).
        """
        if f.proved is not None and f.proved in self.trusted:
            return None
        from sharklib.runner.proof import proven_by

        entry = self.rc.index.entry(f.run_id)
        if entry is None:
            return f"past run {f.run_id[:12]} was removed meanwhile"
        keyid, reason = proven_by(entry, f.key)
        if keyid is None:
            return reason or "no proof"
        self.proved[f.run_id] = f.proved = keyid
        return None


def _variables_hold(variables: dict[str, str]) -> bool:
    """Does each variable the run's own code read still have the value it saw (here, now)?"""
    from sharklib.common.envread import variable_reason

    return all(variable_reason(name, seen, os.environ) is None
               for name, seen in variables.items())


def _probes_hold(probes: list[tuple[str, str]], prefix: str) -> bool:
    """Does each probed path still answer as the recorded run saw it?"""
    from sharklib.model.run import probe_mask
    from sharklib.runner.decide import kind_now

    for p, answer in probes:
        try:
            if not probe_mask(answer) & kind_now(p if p.startswith("/") else prefix + p):
                return False
        except ValueError:
            return False
    return True


def _reuse_plan(f: RunFacts, prefix: str) -> Plan:
    """Reuse ``f``: recorded paths made absolute (``prefix`` is the root with a slash)."""
    if f.relative:
        return Plan("reuse", _UNCHANGED, f.run_id, f.duration, [prefix + p for p, _ in f.inputs],
                    [prefix + p for p in f.outputs])
    return Plan("reuse", _UNCHANGED, f.run_id, f.duration,
                [p if p.startswith("/") else prefix + p for p, _ in f.inputs],
                [p if p.startswith("/") else prefix + p for p in f.outputs])


#: after this many outputs looked for in one directory, the directory is listed once instead
_LIST_AT = 64


def _mark_on_disk(plans: list[Plan | None]) -> None:
    """Set ``on_disk`` of every reuse plan: are all its recorded outputs there?

    Where many outputs share a directory (a map's), one listing answers for the
    rest of them; a symlink in it is still followed, as :func:`os.path.exists` would.
    """
    seen: dict[str, int] = {}
    listed: dict[str, set[str]] = {}
    exists = os.path.exists
    for p in plans:
        if p is None or p.action != "reuse":
            continue
        ok = True
        for o in p.outputs:
            d, _, name = o.rpartition("/")
            names = listed.get(d)
            if names is None and o.startswith("/"):
                n = seen.get(d, 0) + 1
                seen[d] = n
                if n == _LIST_AT:
                    try:
                        with os.scandir(d or "/") as it:
                            names = listed[d] = {e.name for e in it if not e.is_symlink()}
                    except OSError:
                        seen[d] = -(1 << 62)  # unlistable: never tried again
            if names is not None and name in names:
                continue
            if not exists(o):
                ok = False
                break
        p.on_disk = ok


def plan_command(command: Sequence[str] | str, *, shell: bool = True, cwd: str | None = None,
                 env_tag: str | None = None) -> Plan:
    """The reuse plan of one command (see :func:`plan_commands`)."""
    return plan_commands([StageSpec(command, os.path.abspath(cwd or os.getcwd()), shell,
                                    env_tag)])[0]

