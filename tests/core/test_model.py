"""The data model's classes behave as plain data: equality, repr, JSON, pickle, copies.

They are hand-written slotted classes rather than dataclasses (a captured
script builds a Run at exit, where importing ``dataclasses`` costs ~12 ms), so
these are the guarantees ``@dataclass`` used to give.
"""

from __future__ import annotations

import copy
import pickle

from sharklib.model import (
    Artifact,
    CodeIdentity,
    Download,
    Environment,
    Exec,
    GitInfo,
    Output,
    Run,
)


def _run() -> Run:
    return Run("id", ["python", "s.py"], "/w", 1.0, ended=2.0, exit_status=0,
               inputs=[Artifact("/w/in", "a" * 64, 3, attestation="sha256:" + "b" * 64)],
               outputs=[Output("/w/out", "c" * 64, 1, inputs=["/w/in"], stream="stdout")],
               downloads=[Download("https://x/y", size=3, etag="e")],
               execs=[Exec(7, "/bin/true", ["true"], cwd="/w")],
               code=CodeIdentity(script=Artifact("/w/s.py", "d" * 64, 9),
                                 git=GitInfo("/w", "f" * 40, "main", dirty=True)),
               environment=Environment("/usr/bin/python", "3.11.7", distributions={"numpy": "2"}),
               children=["c1"], warnings=["w"])


def test_equality_repr_and_defaults() -> None:
    assert _run() == _run()
    changed = _run()
    changed.outputs[0].inputs = []
    assert changed != _run()
    assert Output("/o", "x") != Artifact("/o", "x")  # different classes never compare equal
    assert repr(Artifact("/p", "s")) == "Artifact(path='/p', sha256='s', size=0, attestation=None, mtime_ns=None)"
    a, b = Run("1", [], "/", 0.0), Run("2", [], "/", 0.0)
    a.inputs.append(Artifact("/x", "y"))
    assert b.inputs == [] and a.code is not b.code  # fresh defaults per instance


def test_json_pickle_and_copies_round_trip() -> None:
    run = _run()
    assert Run.from_dict(run.to_dict()) == run
    assert pickle.loads(pickle.dumps(run)) == run
    assert copy.deepcopy(run) == run
    assert copy.deepcopy(run).outputs[0] is not run.outputs[0]
    assert run.downloads[0].to_dict() == {"url": "https://x/y", "size": 3, "etag": "e",
                                          "method": "GET"}
    env = run.environment.to_dict()
    env["distributions"]["numpy"] = "3"
    assert run.environment.distributions == {"numpy": "2"}  # to_dict copies, as asdict did


def test_output_inputs_encode_like_each_path() -> None:
    """The one-pass encoding of an output's inputs gives what encoding each path gives."""
    from sharklib.model import Output
    from sharklib.model.run import decode_path, encode_path

    odd = ["/p/a.csv", "/p/\udcff.bin", "/p/x b64:y", "b64:z", "/p/é.txt", "/p/tab\t\n"]
    for inputs in (odd, odd[:1], [], [p for p in odd if p.isascii()]):
        out = Output(path="/p/o", sha256="0" * 64, inputs=list(inputs))
        d = out.to_dict()
        assert d["inputs"] == [encode_path(p) for p in inputs]
        assert Output.from_dict(d).inputs == inputs
        assert [decode_path(p) for p in d["inputs"]] == inputs
