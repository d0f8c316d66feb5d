"""Trust policies: which keys may sign which steps, how many, until when.

A signature proves *who* signed; a policy says whether that is *enough* for
this step. It is a TOML file (read with :mod:`tomllib`)::

    [keys.alice]
    id = "3f2a…"                # a full key id (sharklib keys show)
    expires = 2027-06-30        # optional; signatures stop counting after it
    [keys.bob]
    imported = "bob"            # a key imported with `sharklib keys import --name bob`
    [keys.institution]
    pem = "institution.pub.pem" # a public key file, relative to the policy

    [groups]
    lab = ["alice", "bob"]

    [[rule]]                    # rules are tried in order; the first that matches applies
    name = "published result"
    outputs = ["results/*.csv"] # globs on the output path (relative to the step's cwd, or absolute)
    signers = ["institution", "lab"]
    threshold = 2

    [[rule]]
    name = "intermediate steps"
    commands = ["python *"]     # globs on the command line (program shown by its base name)
    signers = ["lab"]
    allow_failed = false        # true: these steps may have exited non-zero (verify fails them)

    [policy]
    unmatched = "trusted"       # or "deny": a step no rule matches fails

Expiry is checked against the time of verification: a key past its date no
longer vouches for anything, old signatures included (a signature carries no
trustworthy time of its own).
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sharklib.errors import SharkError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from sharklib.attest.lineage import Step

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(slots=True)
class PolicyKey:
    name: str
    keyid: str
    expires: _dt.date | None = None
    public: Ed25519PublicKey | None = None

    def expired(self, today: _dt.date) -> bool:
        return self.expires is not None and today > self.expires


@dataclass(slots=True)
class Rule:
    name: str
    commands: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    signers: list[str] = field(default_factory=list)  # key names, groups expanded
    threshold: int = 1
    #: a step this rule covers may have a non-zero exit status (verify fails such steps otherwise)
    allow_failed: bool = False

    def matches(self, step: Step, verified_as: str | None = None) -> bool:
        """Whether this rule covers ``step``; ``verified_as`` is the name the file is verified
        under when ``step`` is its head: an ``outputs`` rule applies to that name too, or a
        lab-signed draft.txt copied (sidecar and all) to report.txt escaped a report.txt rule.
        """
        from sharklib.attest.lineage import command_text

        if self.commands:
            texts = (command_text(step.run.argv), " ".join(step.run.argv))
            if not any(fnmatch.fnmatchcase(t, g) for g in self.commands for t in texts):
                return False
        if self.outputs:
            # a step with several outputs matches when any of them does (the stricter reading)
            paths = [o.path for o in step.outputs or [step.output]]
            if verified_as:
                paths.append(verified_as)
            names = [n for p in paths
                     for n in (os.path.relpath(p, step.run.cwd), p, os.path.basename(p))]
            if not any(fnmatch.fnmatchcase(n, g) for g in self.outputs for n in names):
                return False
        return True


@dataclass(slots=True)
class TrustPolicy:
    path: str
    keys: dict[str, PolicyKey] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    deny_unmatched: bool = False

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Keys the policy brings itself (``pem = ...``), to check signatures with."""
        return {k.keyid: k.public for k in self.keys.values() if k.public is not None}

    def names(self) -> dict[str, str]:
        return {k.keyid: k.name for k in self.keys.values()}

    def rule_for(self, step: Step, verified_as: str | None = None) -> Rule | None:
        return next((r for r in self.rules if r.matches(step, verified_as)), None)

    def allows_failure(self, step: Step, verified_as: str | None = None) -> bool:
        """Whether the rule covering ``step`` accepts a non-zero exit status (``allow_failed``)."""
        rule = self.rule_for(step, verified_as)
        return rule is not None and rule.allow_failed

    def evaluate(self, step: Step, good_keyids: list[str],
                 today: _dt.date | None = None, verified_as: str | None = None) -> list[str]:
        """Why ``step`` falls short of the policy (empty when it satisfies it).

        The threshold counts distinct key ids: an envelope carrying one signature entry
        twice (copied, or the same key listed under two policy names) is one signer.
        """
        today = today or _dt.datetime.now(_dt.UTC).date()
        rule = self.rule_for(step, verified_as)
        if rule is None:
            if self.deny_unmatched:
                return ["no trust rule covers this step (policy says unmatched = \"deny\")"]
            return []  # the base check already requires a trusted signature
        allowed = {name for name in rule.signers}
        by_id: dict[str, PolicyKey] = {}
        for k in self.keys.values():  # one key under two names: the name the rule lists
            if k.keyid not in by_id or (k.name in allowed and by_id[k.keyid].name not in allowed):
                by_id[k.keyid] = k
        counted: list[str] = []
        notes: list[str] = []
        for kid in dict.fromkeys(good_keyids):  # each key once, however often it signed
            key = by_id.get(kid)
            if key is None or key.name not in allowed:
                continue
            if key.expired(today):
                notes.append(f"key {key.name!r} expired on {key.expires}")
                continue
            counted.append(key.name)
        if len(counted) >= rule.threshold:
            return []
        need = ", ".join(sorted(allowed)) or "(no keys)"
        have = ", ".join(counted) if counted else "none"
        msg = (f"rule {rule.name!r} needs {rule.threshold} valid signature"
               f"{'s' if rule.threshold != 1 else ''} from [{need}]; valid: {have}")
        if notes:
            msg += "; " + "; ".join(notes)
        return [msg]


def _fail(path: str, message: str) -> SharkError:
    return SharkError(f"trust policy: {message}", path)


def _as_list(value: Any, path: str, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise _fail(path, f"{what} must be a string or a list of strings")


def _date(value: Any, path: str, name: str) -> _dt.date | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise _fail(path, f"keys.{name}.expires must be a date like 2027-06-30")


def _resolve_key(name: str, spec: Any, path: str) -> PolicyKey:
    from sharklib.attest.keys import imported_key_labels, keyid_of, load_public_key

    if not isinstance(spec, dict):
        raise _fail(path, f"keys.{name} must be a table")
    expires = _date(spec.get("expires"), path, name)
    if "id" in spec:
        kid = str(spec["id"]).lower()
        if not _HEX64.match(kid):
            raise _fail(path, f"keys.{name}.id must be a 64-digit hex key id")
        return PolicyKey(name, kid, expires)
    if "imported" in spec:
        wanted = str(spec["imported"])
        hits = [kid for kid, label in imported_key_labels() if label == wanted]
        if not hits:
            raise _fail(path, f"keys.{name}: no imported key named {wanted!r} "
                              "(sharklib keys import FILE --name NAME)")
        return PolicyKey(name, hits[0], expires)
    if "pem" in spec:
        pem = os.path.join(os.path.dirname(path), str(spec["pem"]))
        try:
            data = open(pem, "rb").read()  # noqa: SIM115 - tiny file
        except OSError as exc:
            raise _fail(path, f"keys.{name}: cannot read {pem}: {exc.strerror}") from None
        pub = load_public_key(data, pem)
        return PolicyKey(name, keyid_of(pub), expires, pub)
    raise _fail(path, f"keys.{name} needs one of id, imported or pem")


def load_policy(path: str | os.PathLike[str]) -> TrustPolicy:
    """Parse and resolve a policy; every mistake is one line naming the file."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise SharkError("trust policy not found", p) from None
    except OSError as exc:
        raise SharkError(f"cannot read trust policy: {exc.strerror}", p) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _fail(p, f"not valid TOML ({exc})") from None
    policy = TrustPolicy(path=p)
    keys = doc.get("keys") or {}
    if not isinstance(keys, dict):
        raise _fail(p, "[keys] must be a table")
    for name, spec in keys.items():
        policy.keys[name] = _resolve_key(name, spec, p)
    groups_raw = doc.get("groups") or {}
    if not isinstance(groups_raw, dict):
        raise _fail(p, "[groups] must be a table")
    groups = {g: _as_list(v, p, f"groups.{g}") for g, v in groups_raw.items()}
    rules = doc.get("rule") or []
    if not isinstance(rules, list):
        raise _fail(p, "rules are written [[rule]]")
    for i, raw in enumerate(rules, 1):
        if not isinstance(raw, dict):
            raise _fail(p, f"rule {i} must be a table")
        name = str(raw.get("name") or f"rule {i}")
        signers: list[str] = []
        for s in _as_list(raw.get("signers"), p, f"rule {name!r} signers"):
            members = groups.get(s, [s])
            for m in members:
                if m not in policy.keys:
                    raise _fail(p, f"rule {name!r} names unknown key or group {m!r}")
                signers.append(m)
        if not signers:
            raise _fail(p, f"rule {name!r} lists no signers")
        threshold = raw.get("threshold", 1)
        if not isinstance(threshold, int) or threshold < 1:
            raise _fail(p, f"rule {name!r}: threshold must be a positive integer")
        if threshold > len(set(signers)):
            raise _fail(p, f"rule {name!r}: threshold {threshold} is more than its "
                           f"{len(set(signers))} signers")
        allow_failed = raw.get("allow_failed", False)
        if not isinstance(allow_failed, bool):
            raise _fail(p, f"rule {name!r}: allow_failed must be true or false")
        policy.rules.append(Rule(name=name, allow_failed=allow_failed,
                                 commands=_as_list(raw.get("commands"), p, "commands"),
                                 outputs=_as_list(raw.get("outputs"), p, "outputs"),
                                 signers=signers, threshold=threshold))
    settings = doc.get("policy") or {}
    unmatched = settings.get("unmatched", "trusted") if isinstance(settings, dict) else None
    if unmatched not in ("trusted", "deny"):
        raise _fail(p, "policy.unmatched must be \"trusted\" or \"deny\"")
    policy.deny_unmatched = unmatched == "deny"
    return policy


def default_policy_path() -> str | None:
    """``config_dir()/trust.toml`` when the user keeps one there."""
    from sharklib.config import config_dir

    candidate = config_dir() / "trust.toml"
    return str(candidate) if candidate.is_file() else None
