"""``sharklib.enable()`` in a notebook is ``%load_ext sharklib`` (issue 17.4), through a real kernel.

nbclient runs a notebook in an ipykernel started from this environment, with Jupyter's
``JPY_SESSION_NAME`` naming the notebook as Jupyter server does. With either way of turning
capture on: one attestation per cell that wrote something, no ``/proc/`` input, a file
read in one cell linked to the attestation of the cell that wrote it, steps labelled by
notebook and cell, and ``sharklib verify`` of the last file passes.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.capture.conftest import clean_env

FIRST = {"enable": "import sharklib\nsharklib.enable()", "load_ext": "%load_ext sharklib"}

RUNNER = """\
import sys, nbformat, nbclient
nb = nbformat.v4.new_notebook()
nb.cells = [nbformat.v4.new_code_cell(src) for src in sys.argv[2:]]
nbformat.write(nb, sys.argv[1])
nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                        resources={"metadata": {"path": "."}}).execute()
"""


@pytest.mark.parametrize("how", sorted(FIRST))
def test_a_notebook_is_captured_cell_by_cell(tmp_path: Path, how: str) -> None:
    for module in ("nbclient", "nbformat", "ipykernel"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (the test extra lists it)")
    (tmp_path / ".git").mkdir()
    (tmp_path / "raw.txt").write_text("raw\n")
    (tmp_path / "run_nb.py").write_text(RUNNER)
    cells = [FIRST[how],
             "data = open('raw.txt').read()\nopen('a.txt', 'w').write(data.upper())",
             "import os\nprint(len(os.listdir('/proc')) > 0)",
             "open('b.txt', 'w').write(open('a.txt').read() * 2)"]
    env = clean_env({"JPY_SESSION_NAME": str(tmp_path / "analysis.ipynb")})
    p = subprocess.run([sys.executable, "run_nb.py", "analysis.ipynb", *cells], cwd=tmp_path,
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr

    from sharklib.attest import read_bundle

    def statement(name: str) -> dict:
        return read_bundle(tmp_path / f"{name}.intoto.jsonl").head.statement

    a, b = statement("a.txt"), statement("b.txt")
    assert [s["name"].rsplit("/", 1)[-1] for s in a["subject"]] == ["a.txt"]
    assert [s["name"].rsplit("/", 1)[-1] for s in b["subject"]] == ["b.txt"]
    deps = b["predicate"]["buildDefinition"]["resolvedDependencies"]
    # what the kernel read before (its state may carry it) and the file cell 2 wrote
    inputs = {Path(d["uri"]).name: d for d in deps if d["annotations"]["role"] == "input"}
    assert sorted(inputs) == ["a.txt", "raw.txt"]
    assert all("/proc" not in d["uri"] for d in deps)
    assert inputs["a.txt"]["annotations"].get("attestation"), inputs  # linked to cell 2's record

    show = subprocess.run([sys.executable, "-m", "sharklib", "show", "b.txt"], cwd=tmp_path,
                          capture_output=True, text=True, env={**env, "COLUMNS": "200"},
                          timeout=120)
    assert show.returncode == 0, show.stderr
    assert "notebook analysis.ipynb cell:4" in show.stdout, show.stdout
    assert "notebook analysis.ipynb cell:2" in show.stdout, show.stdout
    assert "ipykernel_launcher" not in show.stdout and "exit None" not in show.stdout
    verify = subprocess.run([sys.executable, "-m", "sharklib", "verify", "b.txt"], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "2 attestations" in verify.stdout, verify.stdout
    assert os.path.exists(tmp_path / "a.txt.intoto.jsonl")
