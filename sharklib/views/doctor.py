"""``sharklib doctor``: what this machine allows, and what each missing piece costs.

sharklib degrades instead of failing: without eBPF it traces through ptrace,
without a copy-on-write filesystem it restores by copying, without a remote it
reuses only locally. That is right for a run, but it leaves a user wondering
why a restore of 10 GB took a minute on one machine and no time on another.
Each check here looks at the real thing (a reflink tried in the project
directory, the remote asked for an object) and changes nothing the user has:
the only file it writes is a scratch file it removes (a ``file://`` remote's
directory is created, as the first push would).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from typing import TextIO


@dataclass(slots=True)
class Check:
    """One line of the report: ``ok`` None means "not applicable / informational"."""

    name: str
    ok: bool | None
    found: str
    cost: str = ""


def _bootstrap() -> Check:
    from sharklib.common.environ import bootstrap_dir

    boot = os.path.join(bootstrap_dir(), "sitecustomize.py")
    if os.path.isfile(boot):
        return Check("capture bootstrap", True, boot)
    return Check("capture bootstrap", False, f"missing: {boot}",
                 "run and env refuse to start: Python child processes could not be recorded "
                 "(reinstall sharklib)")


def _tracers() -> list[Check]:
    from sharklib.trace import ebpf, ptrace

    ebpf_why = ebpf.unavailable_reason()
    ptrace_why = ptrace.unavailable_reason()
    out = []
    if ebpf_why is None:
        out.append(Check("eBPF tracer", True, "allowed (BTF, CO-RE object, privileges)"))
    else:
        cost = ("`sharklib trace` and non-Python pipeline stages use ptrace instead: every "
                "system call stops the traced program, so I/O-heavy steps run several times slower"
                if ptrace_why is None else
                "no tracer at all (see ptrace below)")
        out.append(Check("eBPF tracer", False, ebpf_why, cost))
    if ptrace_why is None:
        out.append(Check("ptrace tracer", True, f"allowed ({ptrace.strace_path()})"))
    else:
        cost = ("only a fallback: eBPF is used" if ebpf_why is None else
                "`sharklib trace` and non-Python pipeline stages (Rscript, a shell loop) cannot "
                "be recorded; Python steps are still captured")
        out.append(Check("ptrace tracer", False, ptrace_why, cost))
    mounted = os.path.isdir("/sys/kernel/tracing/events") or \
        os.path.isdir("/sys/kernel/debug/tracing/events")
    out.append(Check("tracefs", True if mounted else None,
                     "mounted" if mounted else "not mounted",
                     "" if mounted else "nothing for sharklib (its eBPF programs attach to BTF "
                     "tracepoints); bpftrace/perf need it (mount -t tracefs nodev "
                     "/sys/kernel/tracing)"))
    return out


def _fs_type(path: str) -> str:
    """The filesystem type of the mount holding ``path`` (from /proc/self/mounts)."""
    best, kind = "", "unknown"
    real = os.path.realpath(path)
    with contextlib.suppress(OSError), open("/proc/self/mounts") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 3:
                continue
            mount = parts[1].replace("\\040", " ")
            if (real == mount or real.startswith(mount.rstrip("/") + "/")) and \
                    len(mount) >= len(best):
                best, kind = mount, parts[2]
    return kind


def _reflink_works(directory: str) -> str | None:
    """None when a block clone works in ``directory``, else why not."""
    from sharklib.cache.links import reflink

    try:
        fd, src = tempfile.mkstemp(prefix=".sharklib-doctor-", dir=directory)
    except OSError as exc:
        return f"cannot write a scratch file here ({exc.strerror})"
    dst = src + ".clone"
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"sharklib doctor reflink probe\n")
        fd2 = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd2)
        reflink(src, dst)
        return None
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        for p in (src, dst):
            with contextlib.suppress(OSError):
                os.unlink(p)


def _cache_location(root: str) -> tuple[str, str | None]:
    """(local cache directory, remote URL or None), as a run would resolve them."""
    from sharklib.cache.runcache import is_url, project_settings
    from sharklib.config import ENV_CACHE, ENV_CACHE_REMOTE, cache_dir

    settings = project_settings(root)
    # a setting of the wrong type is the run's one warning line; here it is no location
    directory = settings.get("dir") if isinstance(settings.get("dir"), str) else None
    remote = settings.get("remote") if isinstance(settings.get("remote"), str) else None
    location = os.environ.get(ENV_CACHE) or None
    if location:
        if is_url(location):
            remote = location
        else:
            directory = location
    remote = os.environ.get(ENV_CACHE_REMOTE) or remote
    if directory and not os.path.isabs(directory):
        directory = os.path.join(root, directory)
    return str(directory or cache_dir()), remote


def _storage(root: str, cache: str) -> list[Check]:
    out = []
    kind = _fs_type(root)
    why = _reflink_works(root)
    if why is None:
        out.append(Check("copy-on-write restores", True,
                         f"reflink works in {root} ({kind})"))
    else:
        out.append(Check("copy-on-write restores", False, f"no reflink in {root} ({kind}): {why}",
                         "a restore from the cache copies every byte (time and disk space grow "
                         "with the output's size) instead of an instant block clone; use btrfs, "
                         "XFS (reflink=1) or ZFS >= 2.2 for the project"))
    existing = cache
    while existing and not os.path.exists(existing):
        existing = os.path.dirname(existing)
    with contextlib.suppress(OSError):
        if existing and os.stat(existing).st_dev != os.stat(root).st_dev:
            out.append(Check("cache on the project's filesystem", False,
                             f"{cache} is on another filesystem ({_fs_type(existing)})",
                             "blocks cannot be cloned across filesystems: restores copy; set "
                             "SHARKLIB_CACHE to a directory on the project's filesystem"))
        else:
            out.append(Check("cache on the project's filesystem", True, cache))
    snap = []
    if kind == "btrfs" and shutil.which("btrfs"):
        snap.append("btrfs")
    if kind == "zfs" and shutil.which("zfs"):
        snap.append("zfs")
    tools = [t for t in ("btrfs", "zfs") if shutil.which(t)]
    if snap:
        out.append(Check("snapshot store (btrfs/ZFS)", True,
                         f"project on {kind}: store = \"{snap[0]}\" in .sharklib/cache.toml "
                         "snapshots a whole run"))
    else:
        out.append(Check("snapshot store (btrfs/ZFS)", None,
                         f"project on {kind}" + (f" (tools here: {', '.join(tools)})"
                                                 if tools else ""),
                         "outputs are stored file by file in the content store (the default; "
                         "fine unless a step writes many thousands of files)"))
    return out


def _remote(remote: str | None) -> Check:
    if remote is None:
        return Check("shared remote cache", None, "none configured",
                     "runs are reused on this machine only; colleagues and CI recompute them "
                     "(set SHARKLIB_CACHE_REMOTE=s3://… or file://…)")
    try:
        from sharklib.cache.remote import RemoteStore

        RemoteStore(remote).has("0" * 64)
    except Exception as exc:
        return Check("shared remote cache", False, f"{remote}: {exc}",
                     "new runs are kept locally and pushed later; reuse of others' runs "
                     "needs it reachable")
    return Check("shared remote cache", True, f"{remote} reachable")


def _key() -> Check:
    from sharklib.attest.keys import default_key_path
    from sharklib.config import ENV_KEY

    explicit = os.environ.get(ENV_KEY)
    path = explicit or str(default_key_path())
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if explicit:
            return Check("signing key", False, f"{ENV_KEY}={path} does not exist",
                         "every captured run fails to sign its outputs")
        return Check("signing key", None, f"none yet ({path})",
                     "nothing: the first run creates one (back it up, and give colleagues "
                     "`sharklib keys export`)")
    except OSError as exc:
        return Check("signing key", False, f"{path}: {exc.strerror}",
                     "outputs cannot be signed")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return Check("signing key", False, f"{path} is readable by others (mode {mode:o})",
                     f"anyone who can read it can sign as you: chmod 600 {path}")
    return Check("signing key", True, f"{path} (mode {mode:o}, owner only)")


def run_checks(cwd: str | None = None) -> list[Check]:
    """Every check, in the order a user reads them; nothing here raises."""
    from sharklib.common.identity import project_root

    root = project_root(cwd or os.getcwd())
    cache, remote = _cache_location(root)
    checks: list[Check] = []
    for part in (lambda: [_bootstrap()], _tracers, lambda: _storage(root, cache),
                 lambda: [_remote(remote)], lambda: [_key()]):
        try:
            checks.extend(part())
        except Exception as exc:  # a check that breaks says so and the others still run
            checks.append(Check(getattr(part, "__name__", "check"), None,
                                f"could not check: {exc}"))
    return checks


def render(checks: list[Check], out: TextIO) -> None:
    """One screen: a mark, the check, what was found, and (when missing) what it costs."""
    marks = {True: "ok ", False: "NO ", None: " - "}
    width = max(len(c.name) for c in checks)
    out.write("sharklib doctor: what this machine allows (informational; nothing is changed)\n")
    for c in checks:
        out.write(f"  {marks[c.ok]} {c.name.ljust(width)}  {c.found}\n")
        if c.ok is not True and c.cost:
            out.write(f"      {' ' * width}  → {c.cost}\n")
    missing = sum(1 for c in checks if c.ok is False)
    out.write(f"{missing} missing piece{'s' if missing != 1 else ''}; sharklib works without "
              "them, at the cost shown.\n" if missing else "everything sharklib can use is here.\n")
