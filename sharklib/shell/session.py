"""``sharklib shell``: a prompt whose every command is recorded, classified and snapshotted.

Each line goes through the runner exactly like a pipeline stage
(:func:`sharklib.runner.run_command` with argv ``[bash, -c, LINE]``): a reuse
look-up first, else the command runs under the native tracer (eBPF, else
ptrace; else the Python capture, which records Python commands only), its
outputs get signed sidecars, and a complete record is cached for reuse. The
shell state that makes consecutive lines one shell (``cd``, variables,
aliases, functions) is carried by :mod:`sharklib.shell.bashstate` and is part
of each line's run key.

From the record the command is classified (:mod:`sharklib.shell.classify`);
a mutation's changed files are stored (:mod:`sharklib.shell.snapshots`) and
the command is written to the session (:mod:`sharklib.shell.store`) before
the next prompt.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import IO, Any

from sharklib.config import ENV_SHELL_STATE
from sharklib.errors import SharkError, printable
from sharklib.shell import bashstate, classify, jobs
from sharklib.shell.snapshots import Snapshots
from sharklib.shell.store import Command, SessionStore


def workspace_of(cwd: str) -> str:
    """The project folder a shell started in ``cwd`` records: its git root, else ``cwd``."""
    from sharklib.common.identity import project_root

    return project_root(cwd)


class Shell:
    """One interactive or scripted session in a workspace."""

    def __init__(self, workspace: str, *, new: bool = False, out: IO[str] | None = None,
                 interactive: bool = False) -> None:
        self.workspace = os.path.realpath(workspace)
        self.out = out or sys.stdout
        self.interactive = interactive
        self.session, self.resumed = SessionStore.open(self.workspace, new=new)
        self.snapshots = Snapshots(self.workspace)
        self.snapshots.root_session(self.session)
        self._tmp = tempfile.mkdtemp(prefix="sharklib-session-shell-")
        self.bash = bashstate.BashState(self._tmp)
        self.base_env = {k: v for k, v in os.environ.items()
                         if k not in ("BASH_ENV", ENV_SHELL_STATE)}
        self.env = dict(self.base_env)
        self.cwd = os.getcwd() if _under(os.getcwd(), self.workspace) else self.workspace
        self._said: set[str] = set()
        self.jobs: list[jobs.Job] = []
        self._warned_jobs = False
        #: the status ``exit N`` asked the shell to leave with
        self.exit_request: int | None = None
        self._saved: tuple[bytes, bytes] = (b"", b"")
        self._load_state()
        self.mode = self._capture_mode()
        user_shell = os.path.basename(self.base_env.get("SHELL", "") or "bash")
        if user_shell not in ("bash", "sh", "dash", "rbash"):
            self.note("shell", f"your $SHELL is {user_shell}; sharklib shell runs each line "
                      "with bash (its aliases and functions come from ~/.bashrc)")

    # -- state across lines and sessions -----------------------------------------------------
    def _state_dir(self) -> str:
        return os.path.join(self.session.dir, "bash")

    def _load_state(self) -> None:
        import json

        d = self._state_dir()
        os.makedirs(d, exist_ok=True)
        saved = self._read_state(d)
        if saved is not None:
            env, text = saved
            self.bash.set_vars(text.decode("utf-8", "surrogateescape"))
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                state = json.loads(env)
                for name, value in state.get("set", {}).items():
                    self.env[name] = value
                for name in state.get("unset", []):
                    self.env.pop(name, None)
                cwd = os.path.join(self.workspace, state.get("cwd", "."))
                if os.path.isdir(cwd):
                    self.cwd = os.path.realpath(cwd)
        else:
            bashstate.seed(self.bash, self.env)
            self._save_state()

    def _state_mac(self, env: bytes, text: bytes) -> str:
        from sharklib.common.envread import user_mac

        return user_mac(b"sharklib-shell-state-v1", os.fsencode(self.workspace), env, text)

    def _read_state(self, d: str) -> tuple[bytes, bytes] | None:
        """The saved (env.json, vars.sh) when this user wrote them, else None.

        ``vars.sh`` is sourced before every line and ``env.json`` becomes the lines'
        environment, and both lie in the project, where whoever can write it (a shared
        folder, a cloned repository with a ``.sharklib/``) could plant an alias or a
        ``PATH``: so they carry an HMAC under this user's secret, and state without a
        matching one is not used (the session resumes with a fresh shell state).
        """
        try:
            with open(os.path.join(d, "vars.sh"), "rb") as f:
                text = f.read()
        except FileNotFoundError:
            return None
        except OSError:
            text = b""
        try:
            with open(os.path.join(d, "env.json"), "rb") as f:
                env = f.read()
            with open(os.path.join(d, "state.mac"), encoding="ascii") as f:
                mac = f.read().strip()
        except (OSError, ValueError):
            mac, env = "", b""
        import hmac

        if not hmac.compare_digest(mac, self._state_mac(env, text)):
            self.note("state", f"the saved shell state of session {self.session.id} was not "
                      "written by you (edited, or from another machine): its variables, "
                      "aliases and functions are not used; starting from your ~/.bashrc")
            return None
        self._saved = (env, text)
        return env, text

    def _save_state(self) -> None:
        import json

        from sharklib.hashing.atomic import atomic_write

        d = self._state_dir()
        changed = {k: v for k, v in self.env.items() if self.base_env.get(k) != v}
        unset = sorted(k for k in self.base_env if k not in self.env)
        rel = os.path.relpath(self.cwd, self.workspace)
        env = json.dumps({"set": changed, "unset": unset,
                          "cwd": rel if not rel.startswith("..") else "."}
                         ).encode("utf-8", "surrogateescape")
        text = self.bash.vars_text().encode("utf-8", "surrogateescape")
        if (env, text) == self._saved:  # most lines change no state: nothing to write
            return
        atomic_write(os.path.join(d, "env.json"), env, fsync=False)
        atomic_write(os.path.join(d, "vars.sh"), text, fsync=False)
        atomic_write(os.path.join(d, "state.mac"),
                     self._state_mac(env, text).encode("ascii"), fsync=False)
        self._saved = (env, text)

    def _capture_mode(self) -> str:
        from sharklib.trace.session import choose_backend

        try:
            return choose_backend("auto")
        except Exception as exc:
            self.note("tracer", f"the native tracer cannot run here ({exc}); Python commands "
                      "are recorded by the Python capture, other commands run unrecorded "
                      "(neither classified nor snapshotted)")
            return "python"

    def note(self, key: str, text: str) -> None:
        """A one-time line on stderr."""
        if key in self._said:
            return
        self._said.add(key)
        sys.stderr.write(f"sharklib: {printable(text)}\n")
        sys.stderr.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._save_state()
        self.snapshots.close()
        if not any(job.running() for job in self.jobs):  # a job left running still writes there
            shutil.rmtree(self._tmp, ignore_errors=True)

    # -- the prompt ----------------------------------------------------------------------
    def prompt(self) -> str:
        rel = os.path.relpath(self.cwd, self.workspace)
        where = os.path.basename(self.workspace) if rel == "." else \
            os.path.join(os.path.basename(self.workspace), rel)
        return f"shark[{self.session.id} {len(self.session.mutations())}m] {where}$ "

    # -- one command line ----------------------------------------------------------------
    def run_line(self, line: str, stdin: IO[Any] | int | None = None) -> bool:
        """Run one line; False when the shell should end."""
        text = line.strip()
        if not text or text.startswith("#"):
            return True
        if re.match(r":[A-Za-z]", text):  # `:`, `: > f`, `:>f` are bash's no-op
            from sharklib.shell import meta

            return meta.dispatch(self, text) or self._may_leave()
        if text in ("exit", "logout") or text.startswith(("exit ", "logout ")):
            args = text.split()[1:]
            if args:  # as bash: `exit 3` leaves with 3, a word that is no number with 2
                self.exit_request = int(args[0]) & 0xFF if re.fullmatch(r"[+-]?\d+", args[0]) \
                    else 2
            return self._may_leave()
        words = jobs.builtin(text)
        if words is not None:
            self.job_builtin(words)
            return True
        body = jobs.background(line)
        if body is not None:
            self.start_job(body, stdin)
            return True
        self.execute(line, stdin)
        return True

    def execute(self, line: str, stdin: IO[Any] | int | None = None) -> Command:
        from sharklib.runner import run_command

        n = self.session.next_number()
        tag = bashstate.state_tag(self.bash.vars_text(), self.env, self.base_env, line,
                                  self.bash.status)
        self.bash.clear_outputs()
        start_cwd = self.cwd
        started = time.time()
        # file timestamps come from the kernel's coarse clock, up to a tick behind time.time()
        coarse = _coarse_now()
        interrupted = False
        env_before = dict(self.env)
        self.snapshots.keep_named(line, start_cwd, self.session)
        self.snapshots.before_command(f"shell-{self.session.id}-{n}-before", self.session)
        env = self.bash.environ(self.env)
        argv = ["bash", "-c", line]
        try:
            result = run_command(argv, cwd=start_cwd, env=env, env_tag=tag,
                                 capture="auto" if self.mode != "python" else "python",
                                 quiet=True, stdin=stdin,
                                 rerun=not self._reusable(argv, start_cwd, env, tag))
        except KeyboardInterrupt:
            interrupted = True
            result = None
        ended = time.time()
        self.env, cwd, _ = self.bash.collect(self.env, self.cwd)
        self.cwd = os.path.realpath(cwd)
        with contextlib.suppress(OSError):
            os.chdir(self.cwd)
        cmd = Command(n=n, line=line.rstrip("\n"), cwd=os.path.relpath(start_cwd, self.workspace),
                      started=started, duration=ended - started, exit_status=130
                      if result is None else result.exit_status, kind="inspect",
                      parent=self.session.head,
                      env=bashstate.session_exports(env_before, self.base_env))
        self._record(cmd, result, coarse)
        self.bash.set_status(cmd.exit_status)
        if interrupted:
            sys.stderr.write(f"sharklib: [{n}] interrupted\n")
        elif self.interactive and cmd.exit_status in (130, -2):
            sys.stdout.write("\n")  # after the ^C the terminal echoed, as bash does
            sys.stdout.flush()
        self._add(cmd)
        return cmd

    def _add(self, cmd: Command) -> None:
        self.session.add(cmd)
        if cmd.kind == "mutate":
            self.session.set_head(cmd.n)
        self._save_state()

    def _record(self, cmd: Command, result: Any, coarse: float) -> None:
        """Classify a finished line from its result, store what it changed, fill in ``cmd``."""
        n = cmd.n
        if result is not None:
            cmd.backend = result.backend
            cmd.run_id = result.run_id
            cmd.reused = result.reused
            cmd.saved = result.saved_seconds
            if result.reused:
                digests = self.snapshots.statcache.digests(
                    p for p in result.run_outputs if os.path.isfile(p))
                eff = classify.from_restored(result.run_outputs, self.workspace, digests)
                self._reused_facts(eff, result.run_id)
                text = result.message or f"sharklib: reused (saved {result.saved_seconds:.1f} s)"
                sys.stderr.write(text.replace("sharklib: reused", f"sharklib: [{n}] reused", 1)
                                 + "\n")
            elif result.runs or result.backend not in ("python", "none"):
                eff = classify.from_runs(result.runs, self.workspace,
                                         classify.inherited_streams())
            else:
                eff = classify.Effect()
                cmd.kind = "untraced"
            cmd.inputs = sorted(eff.inputs.items())
            cmd.downloads = eff.downloads
            cmd.python, cmd.distributions = eff.python, eff.distributions
            cmd.outside = eff.outside
            if eff.outside:
                self.note("outside", f"[{n}] wrote outside the workspace (recorded, not "
                          f"snapshotted): {', '.join(eff.outside[:3])}"
                          f"{' …' if len(eff.outside) > 3 else ''} (said once)")
            if cmd.kind != "untraced":
                self.snapshots.keep_inputs(eff, self.session)
            if eff.mutates:
                changes = self.snapshots.record(eff, self.session, coarse,
                                                cmd.run_id or f"shell-{self.session.id}-{n}")
                if changes:
                    cmd.kind = "mutate"
                    cmd.changes = changes
        self.snapshots.after_command(cmd.kind == "mutate" and self.snapshots.pre_used)

    # -- background jobs -----------------------------------------------------------------
    def start_job(self, body: str, stdin: IO[Any] | int | None = None) -> jobs.Job:
        """Run ``body`` as a job (``body &``): its own process group, the prompt back at once."""
        import json

        number = max((j.number for j in self.jobs), default=0) + 1
        started, coarse = time.time(), _coarse_now()
        stamp = time.time_ns()
        tag = bashstate.state_tag(self.bash.vars_text(), self.env, self.base_env, body,
                                  self.bash.status)
        self.snapshots.keep_named(body, self.cwd, self.session)
        self.snapshots.before_command(f"shell-{self.session.id}-bg{stamp}-before", self.session)
        pre = self.snapshots.detach()
        workdir = os.path.join(self._tmp, f"job-{stamp}")
        state = bashstate.BashState(workdir)  # a subshell's: what it sets stays in it
        state.set_vars(self.bash.vars_text())
        env = state.environ(self.env)
        argv = ["bash", "-c", body]
        spec = {"argv": argv, "cwd": self.cwd, "env": env, "tag": tag,
                "capture": "auto" if self.mode != "python" else "python",
                "rerun": not self._reusable(argv, self.cwd, env, tag),
                "devnull": stdin is not None, "result": os.path.join(workdir, "result.json")}
        spec_path = os.path.join(workdir, "spec.json")
        with open(spec_path, "w", encoding="utf-8", errors="surrogateescape") as f:
            json.dump(spec, f)
        from sharklib.shell.jobrun import block_signals

        proc = subprocess.Popen([sys.executable, "-m", "sharklib.shell.jobrun", spec_path],
                                cwd=self.cwd, stdin=subprocess.DEVNULL if stdin is not None
                                else None, process_group=0, preexec_fn=block_signals)
        job = jobs.Job(number, proc, body, started, coarse, self.cwd, dict(self.env), workdir, pre)
        self.jobs.append(job)
        self.bash.set_status(0)  # `cmd &` itself succeeds, as in bash
        sys.stderr.write(f"[{number}] {proc.pid}\n")
        sys.stderr.flush()
        return job

    def finish_job(self, job: jobs.Job) -> Command:
        """Record a job that ended as a step of the session (numbered when it ended)."""
        import json

        from sharklib.model import Run
        from sharklib.runner.command import RunResult

        self.jobs.remove(job)
        code = job.proc.wait()
        result = None
        try:
            with open(os.path.join(job.workdir, "result.json"), encoding="utf-8",
                      errors="surrogateescape") as f:
                got = json.load(f)
            result = RunResult(exit_status=got["exit_status"], reused=got["reused"],
                               runs=[Run.from_dict(r) for r in got["runs"]],
                               saved_seconds=got["saved_seconds"], message=got["message"],
                               backend=got["backend"], run_id=got["run_id"],
                               run_outputs=got["run_outputs"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # its recorder was killed (SIGKILL): the line ran unrecorded
        self.snapshots.attach(job.pre)
        n = self.session.next_number()
        cmd = Command(n=n, line=job.line, cwd=os.path.relpath(job.cwd, self.workspace),
                      started=job.started, duration=time.time() - job.started,
                      exit_status=result.exit_status if result is not None
                      else (128 - code if code < 0 else code), kind="inspect",
                      parent=self.session.head, background=True,
                      env=bashstate.session_exports(job.env_before, self.base_env))
        if result is None:
            cmd.kind = "untraced"
            self.snapshots.after_command(False)
        else:
            self._record(cmd, result, job.coarse)
        self._add(cmd)
        import shutil as _shutil

        _shutil.rmtree(job.workdir, ignore_errors=True)
        return cmd

    def reap(self) -> None:
        """Record the jobs that ended; say so as bash does before a prompt."""
        for job in list(self.jobs):
            if job.running():
                continue
            mark = self._marks().get(job.number, " ")
            cmd = self.finish_job(job)
            sys.stderr.write(jobs.job_line(job, mark, jobs.status_word(cmd.exit_status)) + "\n")
            sys.stderr.flush()

    def wait_jobs(self) -> None:
        """Every job to its end (a scripted session's end: nothing goes unrecorded)."""
        for job in list(self.jobs):
            job.proc.wait()
        self.reap()

    def _marks(self) -> dict[int, str]:
        """``+`` for the current job (the newest), ``-`` for the one before, as bash marks."""
        marks = {}
        if self.jobs:
            marks[self.jobs[-1].number] = "+"
        if len(self.jobs) > 1:
            marks[self.jobs[-2].number] = "-"
        return marks

    def _job(self, spec: str | None, what: str) -> jobs.Job:
        if not self.jobs:
            raise SharkError(f"{what}: {'current' if spec is None else spec}: no such job")
        if spec is None or spec in ("%", "%%", "%+"):
            return self.jobs[-1]
        if spec == "%-" and len(self.jobs) > 1:
            return self.jobs[-2]
        key = spec[1:] if spec.startswith("%") else spec
        for job in self.jobs:
            if key.isdigit() and (job.number == int(key) if spec.startswith("%")
                                  else job.pid == int(key)):
                return job
            if not key.isdigit() and job.line.startswith(key):
                return job
        raise SharkError(f"{what}: {spec}: no such job")

    def job_builtin(self, words: list[str]) -> None:
        """``jobs``, ``fg``, ``bg``, ``wait``, ``kill %N``: answered from the shell's job table."""
        name, args = words[0], words[1:]
        if name == "jobs":
            self.reap()
            marks = self._marks()
            for job in self.jobs:
                word = "Stopped" if job.stopped() else "Running"
                line = jobs.job_line(job, marks.get(job.number, " "), word)
                if "-l" in args or "-p" in args:
                    line = str(job.pid) if "-p" in args else line.replace(
                        "  ", f" {job.pid} ", 1)
                self.out.write(line + "\n")
            self.out.flush()
        elif name == "fg":
            self.foreground(self._job(args[0] if args else None, "fg"))
        elif name == "bg":
            job = self._job(args[0] if args else None, "bg")
            with contextlib.suppress(OSError):
                os.killpg(job.pid, signal.SIGCONT)
            sys.stderr.write(f"sharklib: bg: job {job.number} already in background\n"
                             if not job.stopped() else f"[{job.number}]+ {job.line} &\n")
        elif name == "wait":
            targets = [self._job(a, "wait") for a in args] if args else list(self.jobs)
            try:
                for job in targets:
                    job.proc.wait()
            except KeyboardInterrupt:  # the jobs go on, as in bash
                sys.stdout.write("\n")
        else:
            self._kill(args)

    def foreground(self, job: jobs.Job) -> Command:
        """``fg``: the job gets the terminal (Ctrl-C reaches it, not the shell) until it ends."""
        # the terminal first, then the line: once it shows, a Ctrl-C reaches the job
        old = jobs.give_terminal(job.pid) if self.interactive else None
        self.out.write(job.line + "\n")
        self.out.flush()
        try:
            with contextlib.suppress(OSError):
                os.killpg(job.pid, signal.SIGCONT)
            while True:
                try:
                    job.proc.wait()
                    break
                except KeyboardInterrupt:  # no terminal to hand over: pass the ^C on
                    with contextlib.suppress(OSError):
                        os.killpg(job.pid, signal.SIGINT)
        finally:
            jobs.take_terminal(old)
        cmd = self.finish_job(job)
        if self.interactive and cmd.exit_status in (130, -2):
            sys.stdout.write("\n")
            sys.stdout.flush()
        return cmd

    def _kill(self, args: list[str]) -> None:
        sig: int = signal.SIGTERM
        rest = list(args)
        if rest and rest[0] == "-s" and len(rest) > 1:
            rest = [f"-{rest[1]}", *rest[2:]]
        if rest and rest[0].startswith("-") and rest[0] != "--":
            try:
                sig = jobs.parse_signal(rest.pop(0))
            except (ValueError, AttributeError):
                raise SharkError(f"kill: {args[0]}: invalid signal specification") from None
        for target in (a for a in rest if a != "--"):
            try:
                if target.startswith("%"):
                    os.killpg(self._job(target, "kill").pid, sig)
                else:
                    os.kill(int(target), sig)
            except (OSError, ValueError) as exc:
                sys.stderr.write(f"sharklib: kill: {target}: {getattr(exc, 'strerror', exc)}\n")

    def _may_leave(self) -> bool:
        """``exit`` with jobs running: said once (as bash does); the second ``exit`` leaves."""
        self.reap()
        if self.jobs and self.interactive and not self._warned_jobs:
            self._warned_jobs = True
            sys.stderr.write("There are running jobs (they are recorded when they end; a "
                             "second exit leaves them running unrecorded).\n")
            return True
        if not self.interactive:
            self.wait_jobs()
        return False

    def _reusable(self, argv: list[str], cwd: str, env: dict[str, str], tag: str) -> bool:
        """Whether a past run of this line may stand in for it: only one that made files.

        Replaying what an inspect command printed is no saving and can mislead: the
        runner does not count the working directory's listing as an input, so a
        reused ``ls`` would show yesterday's files, and a reused ``python plot.py
        --show`` would show no window at all.
        """
        from sharklib.runner import opencaches, stagekey

        try:
            root = stagekey.project_root(cwd)
            environment = opencaches.memo(("shell-environment", tag, tuple(sorted(env.items()))),
                                      lambda: stagekey.stage_environment(tag, env))
            key, root = stagekey.stage_key(argv, shell=False, cwd=cwd, env_tag=tag,
                                        environment=environment, root=root,
                                        path=env.get("PATH", os.defpath))
            cache = opencaches.kept(root) or self.snapshots.cache
            return any(entry.outputs() for entry in cache.candidates(key.digest()))
        except Exception:  # no reuse then; the command runs and is recorded
            return False

    def _reused_facts(self, eff: classify.Effect, run_id: str | None) -> None:
        """What the reused run read: from this session's record of it, else from the cache index."""
        past = self._by_run(run_id)
        if past is not None:
            eff.inputs = dict(past.inputs)
            eff.downloads = past.downloads
            eff.python, eff.distributions = past.python, past.distributions
            return
        if not run_id:
            return
        with contextlib.suppress(Exception):
            from sharklib.runner.reuse import rebase

            entry = self.snapshots.cache.index.entry(run_id)
            if entry is None:
                return
            for path, sha in [*entry.inputs, *entry.modules]:
                rel = classify.inside(rebase(path, entry.root), self.workspace)
                if rel is not None and not path.endswith("/"):
                    eff.inputs.setdefault(rel, sha)
            run = entry.run
            eff.downloads = [{"url": d.url, "sha256": d.sha256, "saved_to": d.saved_to}
                             for d in run.downloads]
            eff.python = run.environment.python_version
            eff.distributions = dict(run.environment.distributions or {})

    def _by_run(self, run_id: str | None) -> Command | None:
        if not run_id:
            return None
        for c in reversed(self.session.commands):
            if c.run_id == run_id and not c.reused:
                return c
        for c in reversed(self.session.commands):
            if c.run_id == run_id:
                return c
        return None

    # -- loops ---------------------------------------------------------------------------
    def scripted(self, lines: IO[str]) -> int:
        """Read command lines from ``lines`` (not a terminal): no prompt, commands get /dev/null."""
        status = 0
        buf = ""
        for raw in lines:
            self.reap()
            buf += raw
            if _continues(buf):
                continue
            text, buf = buf, ""
            try:
                if not self.run_line(text.rstrip("\n"), stdin=subprocess.DEVNULL):
                    break
            except SharkError as exc:
                sys.stderr.write(f"sharklib: error: {exc}\n")
                status = 1
            last = self.session.commands[-1] if self.session.commands else None
            status = last.exit_status if last is not None else status
        if buf.strip():
            self.run_line(buf.rstrip("\n"), stdin=subprocess.DEVNULL)
            last = self.session.commands[-1] if self.session.commands else None
            status = last.exit_status if last is not None else status
        self.wait_jobs()  # a script's jobs are recorded before the session ends
        return status if self.exit_request is None else self.exit_request

    def interactive_loop(self) -> int:
        import readline

        hist = os.path.join(self.session.dir, "history")
        with contextlib.suppress(OSError):
            readline.read_history_file(hist)
        readline.set_history_length(10000)
        readline.set_completer_delims(" \t\n;|&<>()=`\"'")
        readline.set_completer(_Completer(self).complete)
        readline.parse_and_bind("tab: complete")
        with contextlib.suppress(OSError):
            os.chdir(self.cwd)
        while True:
            self.reap()
            try:
                line = input(self.prompt())
                while _continues(line + "\n"):
                    line += "\n" + input("> ")
            except EOFError:
                sys.stdout.write("\n")
                if self._may_leave():
                    continue
                return 0
            except KeyboardInterrupt:
                sys.stdout.write("^C\n")
                continue
            with contextlib.suppress(OSError):
                readline.write_history_file(hist)
            try:
                if not self.run_line(line):
                    return self.exit_request or 0
            except SharkError as exc:
                sys.stderr.write(f"sharklib: error: {exc}\n")
            except KeyboardInterrupt:
                sys.stderr.write("\nsharklib: interrupted\n")


def _coarse_now() -> float:
    """``CLOCK_REALTIME_COARSE``: the clock inode timestamps (birth time included) are taken from."""
    try:
        return time.clock_gettime(5)  # CLOCK_REALTIME_COARSE on Linux
    except OSError:
        return time.time() - 0.02


def _under(path: str, root: str) -> bool:
    rel = os.path.relpath(os.path.realpath(path), root)
    return not (rel == ".." or rel.startswith(".." + os.sep))


def _continues(text: str) -> bool:
    """Whether a line read so far is an unfinished construct (``\\`` at the end, an open ``for``).

    ``bash -n`` decides, but only for lines that may be unfinished (an odd quote, an open
    bracket, a compound keyword, a here-document): most lines cost no extra process.
    """
    stripped = text.rstrip("\n")
    if stripped.endswith("\\") and not stripped.endswith("\\\\"):
        return True
    if stripped.lstrip().startswith(":"):
        return False
    bare = re.sub(r"\\.", "", stripped)
    maybe = (bare.count("'") % 2 == 1 or bare.count('"') % 2 == 1
             or bare.count("(") > bare.count(")") or bare.count("{") > bare.count("}")
             or "<<" in bare or _COMPOUND.search(bare) is not None)
    if not maybe:
        return False
    try:
        proc = subprocess.run(["bash", "-n", "-c", stripped], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=5,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    err = proc.stderr
    # an open quote or compound command; a here-document still waiting for its delimiter
    return (proc.returncode != 0 and (b"unexpected end of file" in err
                                      or b"unexpected EOF" in err)) \
        or b"delimited by end-of-file" in err


_COMPOUND = re.compile(r"(^|[;&|(]\s*|\s)(for|while|until|if|case|select|function)\b")


class _Completer:
    """Tab completion: programs and meta-commands for the first word, then file names."""

    META = (":history", ":diff", ":undo", ":checkout", ":graph", ":export", ":help", ":exit")

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.matches: list[str] = []
        self._programs: list[str] | None = None

    def programs(self) -> list[str]:
        if self._programs is None:
            names: set[str] = set()
            for d in self.shell.env.get("PATH", os.defpath).split(os.pathsep):
                with contextlib.suppress(OSError):
                    names.update(os.listdir(d))
            self._programs = sorted(names)
        return self._programs

    def complete(self, text: str, state: int) -> str | None:
        if state == 0:
            import glob
            import readline

            before = readline.get_line_buffer()[:readline.get_begidx()]
            first = not before.strip()
            if first and text.startswith(":"):
                self.matches = [m for m in self.META if m.startswith(text)]
            elif first and "/" not in text:
                self.matches = [p for p in self.programs() if p.startswith(text)]
            else:
                pattern = os.path.expanduser(text) + "*"
                found = glob.glob(pattern, root_dir=self.shell.cwd) if not os.path.isabs(
                    pattern) else glob.glob(pattern)
                self.matches = sorted(
                    f + ("/" if os.path.isdir(os.path.join(self.shell.cwd, f)) else "")
                    for f in found if not f.endswith(".intoto.jsonl"))
        return self.matches[state] if state < len(self.matches) else None


@contextlib.contextmanager
def _session_services() -> Iterator[None]:
    """Keep the tracer loaded and the run cache open for the whole session (not per line)."""
    from sharklib.runner.opencaches import kept_open
    from sharklib.trace.service import shared_tracing

    with shared_tracing(), kept_open():
        yield


def run_shell(cwd: str | None = None, *, new: bool = False,
              stdin: IO[str] | None = None) -> int:
    """What ``sharklib shell`` does: resume (or start) the session here and read lines."""
    stdin = stdin or sys.stdin
    interactive = stdin.isatty()
    shell = Shell(workspace_of(cwd or os.getcwd()), new=new, interactive=interactive)
    try:
        with _session_services():
            n = len(shell.session.commands)
            if interactive or shell.resumed or shell.session.busy:
                if shell.session.busy:
                    sys.stderr.write(f"sharklib: session {shell.session.busy} is open in another "
                                     "sharklib shell here; starting a new one\n")
                what = (f"resumed session {shell.session.id} ({n} command"
                        f"{'s' if n != 1 else ''}, {len(shell.session.mutations())} "
                        "mutation(s))") if shell.resumed else f"new session {shell.session.id}"
                sys.stderr.write(f"sharklib: {what} in {shell.workspace}; "
                                 f"recording with {shell.mode}; :help lists the meta-commands\n")
            if interactive:
                old = signal.getsignal(signal.SIGINT)
                try:
                    return shell.interactive_loop()
                finally:
                    signal.signal(signal.SIGINT, old)
            return shell.scripted(stdin)
    finally:
        shell.close()
