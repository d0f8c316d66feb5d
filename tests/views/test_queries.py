"""``log``, ``uses``, ``impact``, ``report`` over a really recorded project.

The project is recorded once per module with the real CLI (``python -m sharklib
run`` and ``pipeline run``): a download from a loopback HTTP server, a raw
input, a step importing a local helper module, a step joining both, a map of
five stages and a gather, then reuses (one replay in place, one restore, a
pipeline re-run). Every query runs as a subprocess and its JSON is compared
with the graph we know we built.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = {
    "helper.py": "def double(x):\n    return 2 * x\n",
    "clean.py": ("import sys\nimport helper\n"
                 "rows = [helper.double(int(line)) for line in open(sys.argv[1])]\n"
                 "open(sys.argv[2], 'w').write('\\n'.join(map(str, rows)))\n"),
    "fetch.py": ("import sys, urllib.request\n"
                 "open(sys.argv[2], 'wb').write(urllib.request.urlopen(sys.argv[1]).read())\n"),
    "join.py": ("import os, sys\nos.makedirs('results', exist_ok=True)\n"
                "a = open(sys.argv[1]).read()\nb = open(sys.argv[2]).read()\n"
                "open(sys.argv[3], 'w').write(a + '\\n' + b)\n"),
    "fail.py": "import sys\nopen('failed.txt', 'w').write('half')\nsys.exit(3)\n",
    "part.py": "import sys\nprint(int(open(sys.argv[1]).read()) ** 2)\n",
    "gather.py": ("import os, sys\nd = sys.argv[1]\n"
                  "print(sum(int(open(os.path.join(d, f)).read()) for f in sorted(os.listdir(d))"
                  " if f.endswith('.txt')))\n"),
}
PIPELINE = """# map and gather

```shark-run:host
python part.py parts/*.txt > out/%{stem}.txt
```

```shark-run:host
python gather.py out > total.txt
```
"""
MAP = [f"python part.py parts/p{i}.txt > out/p{i}.txt" for i in range(5)]
GATHER = "python gather.py out > total.txt"
CLEAN = "python clean.py data/raw.csv data/clean.csv"
JOIN = "python join.py data/clean.csv data/ref.txt results/joined.csv"


class Project:
    def __init__(self, root: Path, env: dict[str, str], url: str, remote: str) -> None:
        self.root, self.env, self.url, self.remote = root, env, url, remote

    def sharklib(self, *args: str, env: dict[str, str] | None = None,
                 check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "sharklib", *args], cwd=self.root,
                              env={**self.env, **(env or {})}, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=300)
        if check:
            assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return json.loads(self.sharklib(*args, "--format", "json", env=env).stdout)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    base = tmp_path_factory.mktemp("queries")
    root, www, home = base / "proj", base / "www", base / "home"
    for d in (root / "data", root / "parts", www):
        d.mkdir(parents=True)
    (www / "ref.txt").write_text("ref-7\n")
    (root / "data" / "raw.csv").write_text("1\n2\n3\n")
    for i in range(5):
        (root / "parts" / f"p{i}.txt").write_text(f"{i}\n")
    for name, text in SCRIPTS.items():
        (root / name).write_text(text)
    (root / "pipeline.md").write_text(PIPELINE)
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 partial(SimpleHTTPRequestHandler, directory=str(www)))
    server.RequestHandlerClass.log_message = lambda *a: None  # type: ignore[method-assign]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/ref.txt"
    remote = (base / "remote").as_uri()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
    env.update(SHARKLIB_HOME=str(home), SHARKLIB_CACHE_REMOTE=remote, COLUMNS="200")
    p = Project(root, env, url, remote)
    p.sharklib("run", "fetch.py", url, "data/ref.txt")
    p.sharklib("run", "clean.py", "data/raw.csv", "data/clean.csv")
    p.sharklib("run", "join.py", "data/clean.csv", "data/ref.txt", "results/joined.csv")
    p.sharklib("pipeline", "run", "pipeline.md")
    assert p.sharklib("run", "fail.py", check=False).returncode == 3
    # reuses: a replay with the output in place, a restore, a whole pipeline reused in place
    p.sharklib("run", "clean.py", "data/raw.csv", "data/clean.csv")
    (root / "results" / "joined.csv").unlink()
    p.sharklib("run", "join.py", "data/clean.csv", "data/ref.txt", "results/joined.csv")
    p.sharklib("pipeline", "run", "pipeline.md")
    yield p
    server.shutdown()
    server.server_close()


def commands(items: list[dict[str, Any]]) -> list[str]:
    return sorted(i["command"] for i in items)


def test_uses_raw_input_finds_reader_and_everything_downstream(project: Project) -> None:
    doc = project.json("uses", "data/raw.csv")
    assert doc["kind"] == "file" and doc["target"] == "data/raw.csv"
    assert commands(doc["readers"]) == [CLEAN]
    assert doc["readers"][0]["read"] == [{"kind": "input", "path": "data/raw.csv",
                                          "sha256": doc["versions"][0]["sha256"]}]
    assert [(d["command"], d["depth"], d["via"]) for d in doc["downstream"]] == \
        [(JOIN, 1, ["data/clean.csv"])]
    assert sorted(r["path"] for r in doc["results"]) == ["data/clean.csv", "results/joined.csv"]
    signer = doc["readers"][0]["signed_by"]
    assert signer["state"] == "trusted" and signer["name"] == "own"
    # a captured script's CPU time is recorded (for the report's CPU and energy figures)
    assert doc["readers"][0]["cpu"] > 0


def test_uses_module_download_and_directory(project: Project) -> None:
    mod = project.json("uses", "helper.py")
    assert commands(mod["readers"]) == [CLEAN]
    assert mod["readers"][0]["read"][0]["kind"] == "module"

    dl = project.json("uses", project.url)
    assert dl["kind"] == "url"
    assert commands(dl["readers"]) == ["python fetch.py " + project.url + " data/ref.txt"]
    assert commands(dl["downstream"]) == [JOIN]

    parts = project.json("uses", "parts")
    assert parts["kind"] == "directory" and parts["target"] == "parts/"
    assert commands(parts["readers"]) == sorted(MAP)
    assert [(d["command"], d["depth"]) for d in parts["downstream"]] == [(GATHER, 1)]
    assert sorted(d["via"] for d in parts["downstream"])[0] == [f"out/p{i}.txt" for i in range(5)]

    one = project.json("uses", "parts/p3.txt")
    assert commands(one["readers"]) == [MAP[3]]
    assert commands(one["downstream"]) == [GATHER]


def test_uses_digest_selects_one_version_and_depth_stops(project: Project) -> None:
    sha = project.json("uses", "data/raw.csv")["versions"][0]["sha256"]
    assert commands(project.json("uses", "data/raw.csv", "--digest", sha[:12])["readers"]) == [CLEAN]
    assert project.json("uses", "data/raw.csv", "--digest", "0" * 12)["readers"] == []
    assert project.json("uses", "data/raw.csv", "--depth", "0")["downstream"] == []
    # the table form says the same in words
    out = project.sharklib("uses", "data/raw.csv").stdout
    assert "1 step(s) read data/raw.csv" in out and "join.py" in out


def test_impact_groups_outputs_by_step_with_redo_cost(project: Project) -> None:
    doc = project.json("impact", "data/raw.csv")
    steps = {s["command"]: s for s in doc["steps"]}
    assert sorted(steps) == sorted([CLEAN, JOIN])
    assert [o["path"] for o in steps[CLEAN]["outputs"]] == ["data/clean.csv"]
    assert [o["path"] for o in steps[JOIN]["outputs"]] == ["results/joined.csv"]
    assert all(o["state"] == "current" for s in doc["steps"] for o in s["outputs"])
    assert doc["outputs"] == 2
    assert doc["redo_seconds"] == pytest.approx(sum(s["duration"] for s in doc["steps"]), abs=1e-5)
    assert all(s["duration"] > 0 for s in doc["steps"])
    ref = project.json("impact", "data/ref.txt")
    assert commands(ref["steps"]) == [JOIN]


def test_impact_changed_names_stale_steps(project: Project) -> None:
    assert project.json("impact", "--changed")["changed"] == []
    p3 = project.root / "parts" / "p3.txt"
    before = p3.read_text()
    try:
        p3.write_text("30\n")
        doc = project.json("impact", "--changed")
        assert [c["path"] for c in doc["changed"]] == ["parts/p3.txt"]
        assert sorted((s["command"], s["depth"]) for s in doc["steps"]) == \
            sorted([(MAP[3], 0), (GATHER, 1)])
    finally:
        p3.write_text(before)


def test_log_lists_runs_and_reuses_newest_first_with_filters(project: Project) -> None:
    doc = project.json("log")
    events = doc["events"]
    ran = [e for e in events if e["event"] == "ran"]
    reused = [e for e in events if e["event"] == "reused"]
    assert len(ran) == 3 + 6  # fetch, clean, join; five map stages and the gather
    assert sorted(e["command"] for e in reused) == sorted([CLEAN, JOIN, *MAP, GATHER])
    assert [e["at"] for e in events] == sorted((e["at"] for e in events), reverse=True)
    assert all(e["saved"] >= 0 for e in reused)
    assert next(e for e in reused if e["command"] == JOIN)["outputs"] == ["results/joined.csv"]
    assert project.json("log", "--status", "reused")["total"] == len(reused)
    failed = project.json("log", "--status", "failed")["events"]
    assert [(e["command"], e["exit_status"], e["outputs"]) for e in failed] == \
        [("python fail.py", 3, ["failed.txt"])]
    assert failed[0]["signed_by"]["state"] == "not-stored"  # failed runs are never cached
    assert commands(project.json("log", "--command", "python join.py*")["events"]) == [JOIN, JOIN]
    assert commands(project.json("log", "data/ref.txt", "--status", "ran")["events"]) == \
        sorted([JOIN, "python fetch.py " + project.url + " data/ref.txt"])
    assert project.json("log", "--until", "2000-01-01")["events"] == []
    assert project.json("log", "--since", "1h")["total"] == len(events)
    assert len(project.json("log", "-n", "2")["events"]) == 2


def test_report_counts_runs_reuses_and_states_the_model(project: Project) -> None:
    doc = project.json("report")
    t = doc["totals"]
    assert t["runs_recorded"] == 10 and t["runs_failed"] == 1
    assert 0 < t["cpu_estimated"] < 10  # pipeline stages have no recorded CPU time
    assert t["runs_reused"] == 8
    assert t["saved_wall_seconds"] > 0 and t["spent_wall_seconds"] > 0
    m = doc["model"]
    assert (m["core_watts"], m["pue"], m["grid_intensity"]) == (12.0, 1.67, 475.0)
    kwh = t["saved_cpu_seconds"] / 3600 * 12.0 * 1.67 / 1000
    assert t["saved_kwh"] == pytest.approx(kwh, rel=1e-3, abs=1e-9)
    assert t["saved_gco2e"] == pytest.approx(kwh * 475.0, rel=1e-3, abs=1e-6)
    assert [p["project"] for p in doc["by_project"]] == ["proj"]
    assert sum(u["runs_reused"] for u in doc["by_user"]) == 8
    assert doc["top_reused"][0]["reuses"] == 1
    other = project.json("report", "--grid-intensity", "100",
                         env={"SHARKLIB_CORE_WATTS": "24"})["totals"]
    assert other["saved_gco2e"] == pytest.approx(t["saved_kwh"] * 2 * 100, rel=1e-3, abs=1e-6)
    bad = project.sharklib("report", "--pue", "-1", check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--pue" in bad.stderr


def test_remote_queries_mark_who_signed(project: Project, tmp_path: Path) -> None:
    # a teammate with an empty cache of their own, who has not imported our key yet
    mate = {"SHARKLIB_HOME": str(tmp_path / "mate")}
    doc = project.json("uses", "data/raw.csv", "--remote", env=mate)
    assert doc["remote"] is True and commands(doc["readers"]) == [CLEAN]
    assert commands(doc["downstream"]) == [JOIN]
    signer = doc["readers"][0]["signed_by"]
    assert signer["state"] == "untrusted" and signer["trusted"] is False
    assert "UNTRUSTED" in project.sharklib("uses", "data/raw.csv", "--remote", env=mate).stdout
    pem = tmp_path / "ours.pem"
    project.sharklib("keys", "export", "-o", str(pem))
    project.sharklib("keys", "import", str(pem), "--name", "ana", env=mate)
    signer = project.json("uses", "data/raw.csv", "--remote", env=mate)["readers"][0]["signed_by"]
    assert signer["state"] == "trusted" and signer["name"] == "ana"
    log = project.json("log", "--remote", env=mate)
    assert len(log["events"]) == 9 and {e["event"] for e in log["events"]} == {"ran"}
    imp = project.json("impact", "parts/p0.txt", "--remote", env=mate)
    assert commands(imp["steps"]) == sorted([MAP[0], GATHER])



@pytest.mark.parametrize("command", [("log",), ("uses", "data/raw.csv")])
def test_a_remote_that_is_not_there_is_one_line_and_nothing_is_made(
        project: Project, tmp_path: Path, command: tuple[str, ...]) -> None:
    # a mistyped folder read as a remote where nobody had run anything (exit 0), and was created
    typo = tmp_path / "no-such-share"
    done = project.sharklib(*command, "--remote", typo.as_uri(), check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "nothing is there" in done.stderr, done.stderr
    assert typo.as_uri() in done.stderr and "Traceback" not in done.stderr
    assert not typo.exists()

def test_html_report_renders_in_chromium(project: Project, tmp_path: Path) -> None:
    from sharklib.views.headless import find_chromium

    page = tmp_path / "report.html"
    project.sharklib("report", "--html", str(page))
    text = page.read_text()
    # self-contained: nothing to run, nothing to fetch
    assert "<script" not in text and " src=" not in text and "<link" not in text
    if find_chromium() is None:
        pytest.skip("no chromium on this machine: the page was written but not rendered")
    from sharklib.views.headless import Browser

    with Browser() as browser:
        browser.navigate(page.as_uri())
        got = browser.evaluate(
            "JSON.stringify({recorded: document.getElementById('runs-recorded').textContent,"
            " reused: document.getElementById('runs-reused').textContent,"
            " bars: document.querySelectorAll('#top-reused rect.bar').length,"
            " periods: document.querySelectorAll('#saved-over-time rect.bar').length,"
            " width: document.getElementById('top-reused').getBoundingClientRect().width})")
        browser.screenshot(str(tmp_path / "shot.png"))
        errors = browser.console_errors()
    got = json.loads(got)
    shot = (tmp_path / "shot.png").read_bytes()
    assert errors == []
    assert got["recorded"] == "10" and got["reused"] == "8"
    assert got["bars"] == 8 and got["periods"] == 1 and got["width"] > 100
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 5000


def test_report_flag_states_the_saving_on_the_reuse_and_summary_lines(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "step.py").write_text("open('out.txt', 'w').write('x')\n")
    (root / "p.md").write_text("```shark-run:host\npython step.py\n```\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
    env["SHARKLIB_HOME"] = str(tmp_path / "home")
    p = Project(root, env, "", "")
    p.sharklib("run", "step.py")
    plain = p.sharklib("run", "step.py").stderr
    assert "reused run" in plain and "gCO2e" not in plain
    line = p.sharklib("run", "--report", "step.py").stderr
    assert "reused run" in line and re.search(r"saved [\d.]+ s ≈ [\d.]+ [mk]?Wh, [\d.]+ [mk]?gCO2e\)",
                                              line), line
    p.sharklib("pipeline", "run", "p.md")
    summary = p.sharklib("pipeline", "run", "--report", "p.md").stdout
    assert "1 reused" in summary and "gCO2e" in summary


def test_html_page_shows_hostile_names_as_text() -> None:
    from sharklib.views.ledger_html import render

    evil = "<script>alert(1)</script> & \"quoted\""
    tally = {"runs_recorded": 1, "runs_failed": 0, "runs_reused": 1, "spent_wall_seconds": 2.0,
             "spent_cpu_seconds": 2.0, "saved_wall_seconds": 2.0, "saved_cpu_seconds": 2.0,
             "spent_kwh": 1e-5, "saved_kwh": 1e-5, "spent_gco2e": 0.005, "saved_gco2e": 0.005,
             "cpu_estimated": 1}
    doc = {"totals": tally, "source": evil, "period": "month",
           "model": {"core_watts": 12.0, "pue": 1.67, "grid_intensity": 475.0, "source": evil},
           "saved_over_time": [{"period": evil, "saved_wall_seconds": 2.0,
                                "cumulative_saved_wall_seconds": 2.0}],
           "top_reused": [{"command": evil, "reuses": 1, "saved_wall_seconds": 2.0}],
           "by_project": [{"project": evil, **tally}], "by_user": [{"user": evil, **tally}],
           "by_period": [{"period": evil, **tally}]}
    page = render(doc)
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_impact_since_rev_starts_from_what_git_says_changed(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "in.txt").write_text("1\n")
    (root / "other.txt").write_text("2\n")
    (root / "step.py").write_text("open('out.txt', 'w').write(open('in.txt').read())\n")
    (root / "step2.py").write_text("open('out2.txt', 'w').write(open('other.txt').read())\n")
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "in.txt", "other.txt", "step.py", "step2.py"], cwd=root,
                   check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=root, check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
    env["SHARKLIB_HOME"] = str(tmp_path / "home")
    p = Project(root, env, "", "")
    p.sharklib("run", "step.py")
    p.sharklib("run", "step2.py")
    assert p.json("impact", "--since", "HEAD")["steps"] == []  # outputs are untracked: no change
    (root / "in.txt").write_text("3\n")
    doc = p.json("impact", "--since", "HEAD")
    assert doc["targets"] == ["in.txt"] and commands(doc["steps"]) == ["python step.py"]
    bad = p.sharklib("impact", "--since", "no-such-rev", check=False)
    assert bad.returncode == 2 and "no-such-rev" in bad.stderr and "Traceback" not in bad.stderr


def test_an_index_from_before_the_ledger_is_back_filled(tmp_path: Path) -> None:
    import sqlite3

    root = tmp_path / "p"
    root.mkdir()
    (root / "in.txt").write_text("1\n")
    (root / "step.py").write_text("open('out.txt', 'w').write(open('in.txt').read())\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
    env["SHARKLIB_HOME"] = str(tmp_path / "home")
    p = Project(root, env, "", "")
    p.sharklib("run", "step.py")
    p.sharklib("run", "step.py")  # reused
    from sharklib.cache.index import RunIndex

    index = RunIndex(tmp_path / "home" / "cache" / "index.sqlite")
    index.fold_uses()  # a sharklib without the ledger counted its reuses in the index itself
    index.close()
    db = sqlite3.connect(tmp_path / "home" / "cache" / "index.sqlite")
    # what an index written by a sharklib without the ledger looks like
    db.execute("DROP TRIGGER runs_need_ledger")
    for table in ("ledger_runs", "ledger_reads", "ledger_writes", "ledger_reuses",
                  "ledger_missing"):
        db.execute(f"DROP TABLE {table}")
    db.commit()
    db.close()
    events = p.json("log")["events"]
    assert [e["event"] for e in events] == ["reused", "ran"]
    assert events[0]["user"] == ""  # a reuse from before the ledger: who is not known
    assert commands(p.json("uses", "in.txt")["readers"]) == ["python step.py"]
    # a run indexed later by an older sharklib (no ledger hook) is marked by the trigger
    db = sqlite3.connect(tmp_path / "home" / "cache" / "index.sqlite")
    rid, stored = db.execute("SELECT run_id, entry FROM runs").fetchone()
    from sharklib.cache.compact import entry_json

    text = entry_json(stored)  # an older sharklib kept the entry as JSON text
    entry = (text.decode() if isinstance(text, bytes) else text).replace(rid, "f" * 32)
    db.execute("INSERT INTO runs (run_id, key, created, duration, exit_status, entry, bytes, "
               "indexed, last_used) SELECT ?, key, created + 1, duration, exit_status, ?, "
               "bytes, indexed, last_used FROM runs WHERE run_id = ?", ("f" * 32, entry, rid))
    db.commit()
    db.close()
    assert len(p.json("uses", "in.txt")["readers"]) == 2
