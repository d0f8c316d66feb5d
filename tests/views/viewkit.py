"""Real lineages for the view tests: scripts really run, Runs recorded by hand, really signed.

The capture helper's ``sharklib run`` is not needed here: each step is run with
``subprocess`` and the Run describing it is built from the real files (real
digests), then ``attest_run`` writes real Ed25519-signed sidecars, chaining
steps through ``input_attestation`` exactly as capture does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sharklib.attest import SigningKey, attest_run, input_attestation
from sharklib.hashing import sha256_file
from sharklib.model import Artifact, CodeIdentity, Download, Environment, GitInfo, Output, Run

CLEAN = '''import sys
src, dst = sys.argv[1], sys.argv[2]
rows = [l.strip().split(",") for l in open(src) if l.strip()]
with open(dst, "w") as fh:
    for r in rows[1:]:
        if r[1] != "NA":
            fh.write(f"{r[0]},{float(r[1]):.3f}\\n")
'''
STATS = '''import json, sys
vals = [float(l.split(",")[1]) for l in open(sys.argv[1])]
json.dump({"n": len(vals), "mean": round(sum(vals) / len(vals), 6)}, open(sys.argv[2], "w"),
          sort_keys=True)
'''
REPORT = '''import json, sys
stats = json.load(open(sys.argv[2]))
n = sum(1 for _ in open(sys.argv[1]))
print(f"rows={n} mean={stats['mean']}")
'''


@dataclass
class Pipeline:
    root: Path
    raw: Path
    clean: Path
    stats: Path
    report: Path
    scripts: dict[str, Path] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)


def _artifact(path: Path) -> Artifact:
    digest, size = sha256_file(path)
    return Artifact(path=str(path), sha256=digest, size=size,
                    attestation=input_attestation(str(path), digest))


def record_step(argv: list[str], cwd: Path, script: Path, inputs: list[Path],
                outputs: list[Path], stdout_to: Path | None = None,
                env: dict[str, str] | None = None, distributions: dict[str, str] | None = None,
                git_commit: str | None = None, downloads: list[Download] | None = None,
                run: bool = True, key: SigningKey | None = None,
                exit_status: int = 0) -> Run:
    """Run ``argv`` for real in ``cwd`` and sign a Run describing what it read and wrote.

    ``exit_status`` is what is recorded when the step is not run (``run=False``).
    """
    started = time.time()
    if run:
        out = open(stdout_to, "wb") if stdout_to else subprocess.DEVNULL  # noqa: SIM115
        try:
            proc = subprocess.run([sys.executable, *argv[1:]], cwd=cwd, stdout=out, check=True)
            exit_status = proc.returncode
        finally:
            if stdout_to:
                out.close()
    outs: list[Output] = []
    for p in outputs:
        d, s = sha256_file(p)
        outs.append(Output(path=str(p), sha256=d, size=s, inputs=[str(i) for i in inputs],
                           stream="stdout" if stdout_to and p == stdout_to else None))
    sd, ss = sha256_file(script)
    r = Run(run_id=str(uuid.uuid4()), argv=argv, cwd=str(cwd), started=started,
            ended=time.time(), exit_status=exit_status, user="tester", host="testhost", pid=os.getpid(),
            code=CodeIdentity(script=Artifact(str(script), sd, ss),
                              git=GitInfo(root=str(cwd), commit=git_commit or "a" * 40,
                                          branch="main") if git_commit != "" else None),
            environment=Environment(interpreter=sys.executable, python_version="3.11.2",
                                    distributions=distributions or {"numpy": "1.26.4"},
                                    variables=env or {"LANG": "C.UTF-8"}),
            inputs=[_artifact(p) for p in inputs], outputs=outs,
            downloads=downloads or [])
    attest_run(r, key)
    return r


def build_pipeline(root: Path, raw_text: str = "id,value\n1,2.5\n2,NA\n3,4.25\n4,1\n",
                   stats_argv_extra: list[str] | None = None,
                   distributions: dict[str, str] | None = None,
                   keys: tuple[SigningKey | None, SigningKey | None, SigningKey | None] = (
                       None, None, None)) -> Pipeline:
    """A deterministic 3-step pipeline: clean -> stats -> report (report reads both)."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "results").mkdir(exist_ok=True)
    raw = root / "data" / "raw.csv"
    raw.write_text(raw_text)
    scripts = {}
    for name, body in (("clean.py", CLEAN), ("stats.py", STATS), ("report.py", REPORT)):
        scripts[name] = root / name
        scripts[name].write_text(body)
    p = Pipeline(root=root, raw=raw, clean=root / "data" / "clean.csv",
                 stats=root / "results" / "stats.json", report=root / "results" / "report.txt",
                 scripts=scripts)
    p.runs.append(record_step(["python", "clean.py", "data/raw.csv", "data/clean.csv"], root,
                              scripts["clean.py"], [raw], [p.clean], key=keys[0]))
    p.runs.append(record_step(["python", "stats.py", "data/clean.csv", "results/stats.json",
                               *(stats_argv_extra or [])],
                              root, scripts["stats.py"], [p.clean], [p.stats],
                              distributions=distributions, key=keys[1]))
    p.runs.append(record_step(["python", "report.py", "data/clean.csv", "results/stats.json"],
                              root, scripts["report.py"], [p.clean, p.stats], [p.report],
                              stdout_to=p.report, key=keys[2]))
    return p


def shark(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess (``python -m sharklib``)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    full_env["COLUMNS"] = "200"
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "sharklib", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def record_download(root: Path, name: str, url: str, etag: str | None = None) -> tuple[Path, Download]:
    """A signed step ``python fetch.py`` that downloaded ``url`` into ``root/name`` (not re-run)."""
    root.mkdir(parents=True, exist_ok=True)
    script = root / "fetch.py"
    script.write_text("# fetched over the network (recorded, not re-run here)\n")
    saved = root / name
    saved.write_text("a,b\n")
    dl = Download(url=url, sha256="c" * 64, size=4, etag=etag, saved_to=str(saved))
    record_step(["python", "fetch.py"], root, script, [], [saved], downloads=[dl], run=False)
    return saved, dl
