"""Environment variables a script reads: what is recorded of their values.

A SLURM array job picks its file with ``os.environ["SLURM_ARRAY_TASK_ID"]``: the same script,
code and inputs give another answer for another value, so a variable the user's own code read
is an input of the run (:mod:`sharklib.capture.envreads` sees the reads; the reuse decision,
:func:`sharklib.runner.decide.judge_run`, compares the values now). No value is ever recorded:
a plain variable by the sha256 of its value; one whose name looks like a credential
(:func:`secret_like`) by an HMAC-SHA256 under a per-user secret kept in sharklib's private
config directory (mode 0600), so a published sidecar or a shared cache cannot be used to guess
it (a sha256 of a short token is brute-forced in minutes). The price: a run that read such a
variable is reused only where that secret is, i.e. by the same user on machines sharing it.
"""

from __future__ import annotations

import hashlib
import hmac
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

#: parts of a variable name that mark a credential (``AWS_SECRET_ACCESS_KEY``, ``GH_TOKEN``,
#: ``DB_PASSWORD``, ``SESSION_COOKIE``...); upper-cased substring match, on purpose wide
SECRET_PARTS = ("KEY", "TOKEN", "SECRET", "PASS", "PASSWORD", "AUTH", "CREDENTIAL",
                "SIGNATURE", "COOKIE", "SESSION")

#: a variable that was not set when it was read (``os.environ.get`` gave None)
UNSET = "unset"

_SECRET_FILE = "env-hmac.key"
_secret: bytes | None = None


def secret_like(name: str) -> bool:
    """Does ``name`` look like it holds a credential?"""
    upper = name.upper()
    return any(part in upper for part in SECRET_PARTS)


def _user_secret() -> bytes:
    """This user's HMAC secret, created (0600, in a 0700 directory) on first use."""
    global _secret
    if _secret is not None:
        return _secret
    from sharklib.config import config_dir, private_dir

    folder = private_dir(config_dir())
    path = os.path.join(folder, _SECRET_FILE)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        data = b""
    if len(data) < 32:
        data = os.urandom(32)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # the first of two racing processes wins; both use its secret
        except FileExistsError:
            with open(path, "rb") as fh:
                data = fh.read()
        finally:
            os.unlink(tmp)
    _secret = data
    return data


def user_mac(*parts: bytes) -> str:
    """An HMAC-SHA256 of ``parts`` under this user's secret, as hex.

    For state sharklib keeps in a project folder and acts on later (a shell session's
    saved bash state): anyone who can write the folder can edit the file, only this
    user can make a tag that matches it.
    """
    mac = hmac.new(_user_secret(), b"", "sha256")
    for part in parts:
        mac.update(len(part).to_bytes(8, "big"))
        mac.update(part)
    return mac.hexdigest()


def value_digest(name: str, value: str | None) -> str:
    """What is recorded of ``name``'s value: ``unset``, ``sha256:…`` or ``hmac-sha256:…``."""
    if value is None:
        return UNSET
    raw = value.encode("utf-8", "surrogateescape")
    if secret_like(name):
        mac = hmac.new(_user_secret(), name.encode("utf-8", "surrogateescape") + b"\0" + raw,
                       hashlib.sha256)
        return "hmac-sha256:" + mac.hexdigest()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def variable_reason(name: str, recorded: str, environ: Mapping[str, str]) -> str | None:
    """Why a variable the past run read has another value now (None: the same)."""
    now_value = environ.get(name)
    if recorded.startswith("hmac-sha256:") and not secret_like(name):
        return f"environment variable {name} was recorded under another rule"
    try:
        now = value_digest(name, now_value)
    except OSError as exc:  # no config directory to hold the secret: nothing can match
        return f"environment variable {name} cannot be compared ({exc.strerror})"
    if now == recorded:
        return None
    if now_value is None:
        return f"environment variable {name} is now unset (the recorded run read it set)"
    if recorded == UNSET:
        return f"environment variable {name} is now set (the recorded run read it unset)"
    if secret_like(name):
        return f"environment variable {name} differs (a credential-like name: compared " \
               f"under this user's secret, so only this user's runs can match)"
    return f"environment variable {name} differs (recorded {recorded[7:15]}…, now {now[7:15]}…)"
