"""The same pipeline on the local pool and on real Dask clusters gives the same bytes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipekit import Cli, sha256, write

METHOD = """# m

```shark-run:host
python step.py raw/* > up/%{stem}.txt
python -c 'import os; print(os.getpid() > 0)' > flag.txt
python gather.py up > total.txt
```
"""


def _project(root: Path) -> Path:
    for i in range(8):
        write(root / "raw" / f"r{i}.txt", f"value {i}\n")
    write(root / "step.py", "import sys\nprint(open(sys.argv[1]).read().strip().upper())\n")
    write(root / "gather.py", "import os, sys\nfor n in sorted(os.listdir(sys.argv[1])):\n"
          "    if n.endswith('.txt'):\n        print(n, open(os.path.join(sys.argv[1], n)).read().strip())\n")
    write(root / "m.md", METHOD)
    return root


def _digests(root: Path) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*.txt") if "raw" not in p.parts)
    return {str(p.relative_to(root)): sha256(p) for p in files}


def _cluster_state(address: str) -> str:
    """The scheduler's tasks and every worker's Python stacks, for a hang's report."""
    try:
        import faulthandler
        import tempfile

        import distributed

        def stacks() -> str:
            with tempfile.TemporaryFile("w+") as fh:  # faulthandler writes to a descriptor
                faulthandler.dump_traceback(fh, all_threads=True)
                fh.seek(0)
                return fh.read()

        with distributed.Client(address, timeout="10s") as client:
            processing = client.processing()
            workers = client.run(stacks)
        return f"processing: {processing}\n" + "\n".join(f"--- {w}\n{s}" for w, s in workers.items())
    except Exception as exc:
        return f"(cluster state unavailable: {exc})"


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        yield c.scheduler_address


@pytest.mark.timeout(300)
def test_local_pool_and_dask_agree(tmp_path: Path, cluster: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    results = {}
    for name, args in {"local": ["-j", "2"], "local-processes": ["-j", "2"],
                       "dask-local": ["--executor", "dask-local", "-j", "2"],
                       "dask": ["--executor", "dask", "--scheduler", cluster]}.items():
        # the local pool is threads for small runs, worker processes for large ones: force each
        monkeypatch.setenv("SHARKLIB_LOCAL_POOL", "processes" if name == "local-processes"
                           else "threads")
        root = _project(tmp_path / name)
        try:
            proc = Cli(root)("run", *args, "m.md", check=True)
        except AssertionError as exc:
            if name == "dask":  # what the cluster was doing, too
                raise AssertionError(f"{exc}\n{_cluster_state(cluster)}") from None
            raise
        assert "0 failed" in proc.stdout
        results[name] = _digests(root)
    assert len(results["local"]) == 10
    assert results["local"] == results["local-processes"] == results["dask-local"] == results["dask"]
    assert (tmp_path / "dask" / "total.txt").read_text().count("VALUE") == 8


def test_dask_without_scheduler_is_an_error(project: Path, cli: Cli) -> None:
    write(project / "m.md", "```shark-run:host\necho a > a.txt\n```\n")
    proc = cli("run", "--executor", "dask", "m.md")
    assert proc.returncode == 2 and "--scheduler" in proc.stderr


def test_unreachable_scheduler_is_one_line(project: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARKLIB_DASK_TIMEOUT", "2s")
    write(project / "m.md", "```shark-run:host\necho a > a.txt\n```\n")
    proc = cli("run", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9", "m.md")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("sharklib: error:") and "Dask scheduler" in proc.stderr
    assert not os.path.exists(project / "a.txt")


@pytest.mark.timeout(240)
def test_worker_processes_record_every_stage_for_reuse(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Stages run in long-lived worker processes (one tracer and cache each) are all recorded."""
    monkeypatch.setenv("SHARKLIB_LOCAL_POOL", "processes")
    root = tmp_path / "p"
    for i in range(30):
        write(root / "in" / f"f{i:02d}.txt", f"{i}\n")
    write(root / "m.md", "```shark-run:host\ncp in/* out/%{basename}\nls out > list.txt\n```\n")
    first = Cli(root)("run", "-j", "2", "m.md", check=True)
    assert "31 ran, 0 reused, 0 failed" in first.stdout.replace("\n", " "), first.stdout
    for i in range(30):
        out = root / "out" / f"f{i:02d}.txt"
        assert out.read_text() == f"{i}\n"
        assert (root / "out" / f"f{i:02d}.txt.intoto.jsonl").is_file()
    again = Cli(root)("run", "-j", "2", "m.md", check=True)
    assert "0 ran, 31 reused" in again.stdout.replace("\n", " "), again.stdout
    write(root / "in" / "f07.txt", "changed\n")
    third = Cli(root)("run", "-j", "2", "m.md", check=True)
    # the listing stage was planned to run after f07's copy, then found its input (the names in
    # out/) unchanged when its turn came: reused
    assert "2 to run, 29 to reuse" in third.stdout, third.stdout
    assert "1 ran, 30 reused" in third.stdout.replace("\n", " "), third.stdout
    assert (root / "out" / "f07.txt").read_text() == "changed\n"


def test_stage_commands_in_worker_processes_still_take_ctrl_c(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers shrug off the terminal's SIGINT; the commands they start must not inherit that."""
    monkeypatch.setenv("SHARKLIB_LOCAL_POOL", "processes")
    root = tmp_path / "p"
    write(root / "m.md", "```shark-run:host\ngrep SigIgn /proc/self/status > sig.txt\n```\n")
    Cli(root)("run", "-j", "2", "m.md", check=True)
    ignored = int((root / "sig.txt").read_text().split()[1], 16)
    assert not ignored & (1 << (2 - 1)), "SIGINT is ignored in the stage command"


@pytest.mark.timeout(240)
def test_dask_workers_run_stages_in_the_clients_key_environment(project: Path, cli: Cli,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Dask nannies set OMP_NUM_THREADS=1 and more: a stage still runs (and is keyed) as planned."""
    pytest.importorskip("distributed")
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PYTHONHASHSEED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TZ", "UTC")  # one the client has: shipped with its value
    write(project / "m.md", "```shark-run:host\npython -c 'import os; print(os.environ.get("
          "\"OMP_NUM_THREADS\"), os.environ.get(\"TZ\"))' > out/env.txt\n```\n")
    cli("run", "m.md", check=True)
    assert (project / "out" / "env.txt").read_text() == "None UTC\n"
    (project / "out" / "env.txt").unlink()  # handed to an executor, which restores it
    proc = cli("run", "--executor", "dask-local", "-j", "1", "m.md", check=True)
    assert "0 ran, 1 reused" in proc.stdout, proc.stdout
    assert (project / "out" / "env.txt").read_text() == "None UTC\n"
    proc = cli("run", "--rerun", "--executor", "dask-local", "-j", "1", "m.md", check=True)
    assert "1 ran, 0 reused" in proc.stdout, proc.stdout
    assert (project / "out" / "env.txt").read_text() == "None UTC\n", "run as planned, not as the worker"
