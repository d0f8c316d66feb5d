"""Per-user tool caches and machine probes are environment, not data (issue 16, item 1).

A plot's first run on a fresh machine builds matplotlib's font cache (running ``fc-list``);
``import h5py`` runs ``uname``. Neither may make the step uncacheable, put a sidecar in the
tool's cache folder, or make that cache part of any lineage. Executions are counted through a
line each script appends to a file in sharklib's own home (never recorded as data).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PLOT = """
import os
with open(os.environ["COUNT_FILE"], "a") as c:
    c.write("ran\\n")
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
plt.plot([1, 2, 3], [3, 1, 2])
plt.savefig("fig.png")
"""

H5 = """
import os
with open(os.environ["COUNT_FILE"], "a") as c:
    c.write("ran\\n")
import platform, h5py
platform.uname()
with h5py.File("out.h5", "w") as f:
    f["x"] = [1, 2, 3]
"""


def shark(project: Path, tool_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")
           or k == "SHARKLIB_HOME"}
    env.pop("PYTHONPATH", None)
    env["COUNT_FILE"] = str(Path(os.environ["SHARKLIB_HOME"]) / "count")
    # a fresh machine: empty tool caches, so the first run builds them
    env["MPLCONFIGDIR"] = str(tool_home / "mpl")
    env["XDG_CACHE_HOME"] = str(tool_home / "cache")
    proc = subprocess.run([sys.executable, "-m", "sharklib", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def executions() -> int:
    count = Path(os.environ["SHARKLIB_HOME"]) / "count"
    return len(count.read_text().splitlines()) if count.exists() else 0


def project(root: Path, name: str, script: str) -> Path:
    proj = root / name
    proj.mkdir()
    (proj / ".git").mkdir()
    (proj / "step.py").write_text(script)
    return proj


def test_a_first_plot_on_a_fresh_machine_is_cached_and_verifies(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is in the test extra")
    tools = tmp_path / "tools"
    a = project(tmp_path, "a", PLOT)
    first = shark(a, tools, "run", "step.py")
    assert "not cached" not in first.stderr, first.stderr
    assert (tools / "mpl").is_dir(), "matplotlib built its font cache in this run"
    assert not list(tools.rglob("*.intoto.jsonl")), "no sidecar in a tool's cache"
    shark(a, tools, "run", "step.py")
    assert executions() == 1, "the plot step is reused"
    assert "verified" in shark(a, tools, "verify", "fig.png").stdout

    # another project on the same machine: its figure's lineage is its own
    b = project(tmp_path, "b", PLOT.replace("[3, 1, 2]", "[1, 1, 1]"))
    shark(b, tools, "run", "step.py")
    out = shark(b, tools, "verify", "fig.png")
    assert "verified" in out.stdout, out.stdout + out.stderr
    why = shark(b, tools, "why", "fig.png").stdout
    assert "fontlist" not in why and str(a) not in why, why


def test_a_library_probing_the_machine_does_not_stop_caching(tmp_path: Path) -> None:
    pytest.importorskip("h5py", reason="h5py is in the test extra")
    tools = tmp_path / "tools"
    p = project(tmp_path, "p", H5)
    first = shark(p, tools, "run", "step.py")
    assert "not cached" not in first.stderr, first.stderr
    shark(p, tools, "run", "step.py")
    assert executions() == 1


def test_a_program_reading_data_still_stops_caching(tmp_path: Path) -> None:
    # the probe list is no loophole: `cat` of a project file is an unseen read
    tools = tmp_path / "tools"
    p = project(tmp_path, "p", "import subprocess\nopen('o.txt', 'w').write("
                "subprocess.run(['cat', 'in.txt'], capture_output=True, text=True).stdout)\n")
    (p / "in.txt").write_text("1")
    first = shark(p, tools, "run", "step.py")
    assert "not cached: it ran cat" in first.stderr, first.stderr


def test_the_tracer_treats_tool_caches_as_environment(tmp_path: Path) -> None:
    try:
        from sharklib.trace.session import choose_backend

        choose_backend("auto")
    except Exception as exc:
        pytest.skip(f"no native tracer may run here ({exc})")
    tools = tmp_path / "tools"
    (tools / "cache").mkdir(parents=True)
    p = project(tmp_path, "p", "")
    (p / "in.txt").write_text("1\n")
    # a program that keeps a cache of its own in the user's cache folder, as fc-cache does
    line = f"cat in.txt > out.txt; date > {tools / 'cache' / 'stamp'}"
    shark(p, tools, "trace", "--", "sh", "-c", line)
    assert not list(tools.rglob("*.intoto.jsonl")), "no sidecar in a tool's cache"
    why = shark(p, tools, "why", "out.txt").stdout
    assert "stamp" not in why, why
    again = shark(p, tools, "trace", "--", "sh", "-c", line)
    assert "reused" in again.stderr, again.stderr
