"""Environments named by content: ``host``, a venv, or a container image.

A ``shark-build:ENV`` block holds YAML::

    python: "3.11"            # a venv made with this interpreter
    requirements: [numpy==1.26]
    find_links: [wheels]      # optional: local wheel directories (relative to the document)
    no_index: true            # optional: never ask a package index

or ``image: docker.io/library/python:3.11-slim`` for a container. The
environment's identity is the sha256 of its canonical definition: it is the
``env_tag`` of every stage that uses it (so it is part of every run key) and
names the venv directory under the cache, created once and reused by every
pipeline that defines the same environment.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sharklib.config import cache_dir, make_dirs
from sharklib.errors import PipelineError
from sharklib.model import canonical_json
from sharklib.pipeline.document import Block

EnvKind = Literal["host", "venv", "container"]
_KEYS = {"python", "requirements", "find_links", "no_index", "image"}


@dataclass(slots=True)
class EnvSpec:
    """An environment's definition and identity; nothing is created until :func:`prepare`."""

    name: str
    kind: EnvKind
    digest: str
    line: int = 0
    definition: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return "host" if self.kind == "host" else f"{self.kind}:{self.digest}"


@dataclass(slots=True)
class PreparedEnv:
    """What a stage needs to run inside the environment."""

    tag: str
    overrides: dict[str, str] = field(default_factory=dict)
    engine: list[str] | None = None
    image: str | None = None

    def wrap(self, command: str, cwd: str) -> str:
        """The command line that runs ``command`` in this environment."""
        if self.engine is None or self.image is None:
            return command
        return shlex.join([*self.engine, "-w", cwd, self.image, "sh", "-c", command])


HOST = EnvSpec(name="host", kind="host", digest="host")


def parse_build_block(block: Block, doc: Path) -> EnvSpec:
    import hashlib

    import yaml

    assert block.env is not None
    text = "\n".join(t for _, t in block.lines)
    try:
        data = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = block.line + 1 + (mark.line if mark is not None else 0)
        raise PipelineError(f"shark-build:{block.env} is not valid YAML", doc, line) from None
    if not isinstance(data, dict):
        raise PipelineError(f"shark-build:{block.env} must be a YAML mapping (python/requirements "
                            "or image)", doc, block.line)
    unknown = set(map(str, data)) - _KEYS
    if unknown:
        raise PipelineError(f"shark-build:{block.env}: unknown key(s) {', '.join(sorted(unknown))}",
                            doc, block.line)
    if block.env == "host":
        raise PipelineError("'host' is the current machine and cannot be redefined", doc, block.line)
    if "image" in data:
        if set(data) != {"image"} or not isinstance(data["image"], str) or not data["image"].strip():
            raise PipelineError(f"shark-build:{block.env}: a container environment takes only "
                                "'image: REFERENCE'", doc, block.line)
        definition: dict[str, Any] = {"image": data["image"].strip()}
        kind: EnvKind = "container"
    else:
        reqs = data.get("requirements") or []
        if not isinstance(reqs, list) or not all(isinstance(r, str) for r in reqs):
            raise PipelineError(f"shark-build:{block.env}: requirements must be a list of strings",
                                doc, block.line)
        links = data.get("find_links") or []
        if not isinstance(links, list) or not all(isinstance(x, str) for x in links):
            raise PipelineError(f"shark-build:{block.env}: find_links must be a list of paths",
                                doc, block.line)
        python = str(data.get("python") or f"{sys.version_info[0]}.{sys.version_info[1]}")
        definition = {"python": python, "requirements": list(reqs), "find_links": list(links),
                      "no_index": bool(data.get("no_index", False))}
        kind = "venv"
    digest = hashlib.sha256(canonical_json({"kind": kind, **definition})).hexdigest()
    return EnvSpec(name=block.env, kind=kind, digest=digest, line=block.line, definition=definition)


def _interpreter(version: str, spec: EnvSpec, doc: Path) -> str:
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if version in (here, f"{sys.version_info[0]}.{sys.version_info[1]}.{sys.version_info[2]}"):
        return sys.executable
    import shutil  # here and below: only when an environment is prepared, not on a re-check

    found = shutil.which(f"python{version}")
    if found is None:
        raise PipelineError(f"environment '{spec.name}' needs Python {version}, and no "
                            f"python{version} is on PATH", doc, spec.line)
    return found


def container_engine() -> str | None:
    """The first usable container engine (podman, then docker), or None."""
    import shutil
    import subprocess  # only when an environment is prepared: not on a re-check's path

    for name in ("podman", "docker"):
        exe = shutil.which(name)
        if exe is None:
            continue
        try:
            ok = subprocess.run([exe, "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                timeout=20, check=False).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return exe
    return None


def prepare(spec: EnvSpec, doc: Path, log: Any = None) -> PreparedEnv:
    """Make the environment usable (create the venv once; find a container engine)."""
    if spec.kind == "host":
        return PreparedEnv(tag="host")
    if spec.kind == "container":
        engine = container_engine()
        if engine is None:
            raise PipelineError(f"environment '{spec.name}' is a container image, and no usable "
                                "container engine (podman or docker) is available here", doc, spec.line)
        docdir = str(doc.parent)
        return PreparedEnv(tag=spec.tag, engine=[engine, "run", "--rm", "-v", f"{docdir}:{docdir}"],
                           image=spec.definition["image"])
    venv = _ensure_venv(spec, doc, log)
    return PreparedEnv(tag=spec.tag, overrides={"PATH": stage_path(spec) or "",
                                                "VIRTUAL_ENV": str(venv)})


def venv_dir(spec: EnvSpec) -> Path:
    return cache_dir() / "envs" / spec.digest[:32]


def stage_path(spec: EnvSpec) -> str | None:
    """The ``PATH`` stages of ``spec`` run with (None: this process's own).

    Known before the venv exists, so the plan resolves a stage's programs (part
    of its run key) exactly as the runner will.
    """
    if spec.kind != "venv":
        return None
    return f"{venv_dir(spec) / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"


def _ensure_venv(spec: EnvSpec, doc: Path, log: Any) -> Path:
    from filelock import FileLock

    venv = venv_dir(spec)
    make_dirs(venv.parent)
    done = venv / ".sharklib-complete"
    if done.exists():
        return venv
    with FileLock(str(venv) + ".lock"):
        if done.exists():
            return venv
        if venv.exists():
            import shutil

            shutil.rmtree(venv)
        d = spec.definition
        python = _interpreter(d["python"], spec, doc)
        reqs: list[str] = d["requirements"]
        if log is not None:
            log(f"creating environment '{spec.name}' ({len(reqs)} requirement(s)) in {venv}")
        args = [python, "-m", "venv", str(venv)]
        if not reqs:
            args.insert(3, "--without-pip")
        _call(args, spec, doc)
        if reqs:
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-input",
                   "--disable-pip-version-check", "-q"]
            if d["no_index"]:
                pip.append("--no-index")
            for link in d["find_links"]:
                pip += ["--find-links", str((doc.parent / link).absolute())]
            _call([*pip, *reqs], spec, doc)
        (venv / "sharklib-definition.json").write_bytes(canonical_json(d))
        done.write_text(spec.digest + "\n")
    return venv


def _call(args: list[str], spec: EnvSpec, doc: Path) -> None:
    import subprocess

    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = proc.stdout.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise PipelineError(f"could not create environment '{spec.name}': {tail[0]}", doc, spec.line)
