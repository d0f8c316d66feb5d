"""``sharklib verify`` and ``sharklib.attest.verify_file`` give one answer for every sidecar.

They used to be two verifiers: a script that wrote ``out.txt`` and exited 3 failed
the CLI and passed the API, and a sidecar with a repeated line was an error for
one and accepted by the other. The corpus here is made by really running a
script under ``sharklib run`` and then damaging what it left, as a user or an
attacker would; each file is verified by the CLI (a subprocess) and by the API,
and both must say the same thing: ok, or not ok for the same kind of problem.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sharklib.attest import verify_file
from sharklib.errors import SidecarError

SCRIPT = """import sys
open("out.txt", "w").write("result\\n")
sys.exit({status})
"""


def _record(root: Path, status: int = 0) -> Path:
    """A real captured run of a script writing out.txt and exiting ``status``."""
    root.mkdir(parents=True)
    (root / "make.py").write_text(SCRIPT.format(status=status))
    proc = subprocess.run([sys.executable, "-m", "sharklib", "run", "--no-cache", "make.py"],
                          cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == status, proc.stderr
    out = root / "out.txt"
    assert Path(f"{out}.intoto.jsonl").is_file(), proc.stderr
    return out


def _sidecar(out: Path) -> Path:
    return Path(f"{out}.intoto.jsonl")


def _edit_output(out: Path) -> None:
    with open(out, "a") as fh:
        fh.write("edited\n")


def _edit_signature(out: Path) -> None:
    side = _sidecar(out)
    env = json.loads(side.read_bytes().splitlines()[0])
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[0] ^= 0xFF
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    side.write_text(json.dumps(env) + "\n")


def _repeat_line(out: Path) -> None:
    side = _sidecar(out)
    line = side.read_bytes().splitlines()[0]
    side.write_bytes(line + b"\n" + line + b"\n")


def _bad_json(out: Path) -> None:
    _sidecar(out).write_text('{"payloadType": "application/vnd.in-toto+json", \n')


def _truncate(out: Path) -> None:
    side = _sidecar(out)
    data = side.read_bytes()
    side.write_bytes(data[: len(data) // 2])


def _empty(out: Path) -> None:
    _sidecar(out).write_bytes(b"")


#: name → (exit status of the script, damage done afterwards, the kind of problem, in words)
CORPUS: dict[str, tuple[int, Callable[[Path], None] | None, str | None]] = {
    "good": (0, None, None),
    "failed": (3, None, "exited 3"),
    "output edited": (0, _edit_output, "content changed"),
    "signature edited": (0, _edit_signature, "not signed by a trusted key"),
    "line repeated": (0, _repeat_line, "duplicate attestation"),
    "bad json": (0, _bad_json, "malformed JSON"),
    "truncated": (0, _truncate, "malformed JSON"),
    "empty": (0, _empty, "empty sidecar"),
}


def _cli(out: Path) -> tuple[str, str]:
    """("ok" | "problems" | "error", all the CLI said)."""
    proc = subprocess.run([sys.executable, "-m", "sharklib", "verify", str(out)],
                          capture_output=True, text=True, timeout=120)
    said = proc.stdout + proc.stderr
    verdict = {0: "ok", 1: "problems", 2: "error"}.get(proc.returncode, f"rc {proc.returncode}")
    return verdict, said


def _api(out: Path) -> tuple[str, str]:
    try:
        report = verify_file(out)
    except SidecarError as exc:
        return "error", str(exc)
    return ("ok" if report.ok else "problems"), "\n".join(report.problems)


@pytest.mark.parametrize("case", list(CORPUS))
def test_cli_and_api_agree(tmp_path: Path, case: str) -> None:
    status, damage, kind = CORPUS[case]
    out = _record(tmp_path / "proj", status)
    if damage is not None:
        damage(out)
    cli, cli_said = _cli(out)
    api, api_said = _api(out)
    assert cli == api, f"{case}: CLI {cli} ({cli_said!r}) but API {api} ({api_said!r})"
    if kind is None:
        assert api == "ok", api_said
    else:
        assert api != "ok"
        assert kind in api_said, api_said
        assert kind in " ".join(cli_said.split()), cli_said
