"""graph: DOT, Mermaid and JSON outputs, and the HTML page for real in headless Chromium."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from viewkit import Pipeline, build_pipeline, record_step, shark

from sharklib.views.headless import Browser, find_chromium

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
XSS_DIR = "<script>alert(1)<"
XSS_NAME = "<script>alert(1)</script>.csv"
IMG_NAME = "<img src=x onerror=alert(2)>.csv"


def _hostile_pipeline(root: Path) -> tuple[Pipeline, Path]:
    """The 3-step pipeline plus a final step reading two files with hostile names."""
    p = build_pipeline(root)
    (root / XSS_DIR).mkdir()
    xss = root / XSS_NAME
    xss.write_text("1\n")
    img = root / IMG_NAME
    img.write_text("2\n")
    script = root / "final.py"
    script.write_text("import sys\nprint(open(sys.argv[1]).read())\n")
    final = root / "results" / "final.txt"
    final.write_text("final\n")
    record_step(["python", "final.py", str(xss), str(img), "results/report.txt"], root, script,
                [xss, img, p.report], [final], run=False)
    return p, final


def test_dot_mermaid_json(pipeline: Pipeline) -> None:
    g = json.loads(shark("graph", str(pipeline.report), "--format", "json").stdout)
    kinds = sorted(n["kind"] for n in g["nodes"])
    assert kinds == ["file"] * 4 + ["step"] * 3
    assert len(g["edges"]) == 7
    labels = {n["label"] for n in g["nodes"]}
    assert {"data/raw.csv", "results/report.txt", "python stats.py data/clean.csv results/stats.json"} <= labels
    dot = shark("graph", str(pipeline.report), "--format", "dot").stdout
    assert dot.startswith("digraph lineage {") and dot.count("->") == 7
    if _have("dot"):
        svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=True)
        assert "<svg" in svg.stdout
    mm = shark("graph", str(pipeline.report), "--format", "mermaid").stdout
    assert mm.startswith("flowchart LR") and mm.count("-->") == 7


def test_dot_and_mermaid_escape_hostile_names(tmp_path: Path) -> None:
    _, final = _hostile_pipeline(tmp_path / "p")
    dot = shark("graph", str(final), "--format", "dot").stdout
    assert 'label="<script>alert(1)</script>.csv"' in dot
    mm = shark("graph", str(final), "--format", "mermaid").stdout
    assert "<script>" not in mm and "#60;script#62;alert#40;1#41;" in mm


def _have(prog: str) -> bool:
    import shutil

    return shutil.which(prog) is not None


@pytest.fixture(scope="module")
def browser() -> Browser:
    if find_chromium() is None:
        pytest.skip("chromium is not installed (Debian package 'chromium', see scripts/apt-packages.txt)")
    with Browser(width=1400, height=900) as b:
        yield b


def test_html_page_in_headless_chromium(tmp_path: Path, browser: Browser) -> None:
    p, final = _hostile_pipeline(tmp_path / "p")
    p.clean.write_text("changed after the run\n")  # stale node
    out = tmp_path / "lineage.html"
    r = shark("graph", str(final), "--format", "html", "-o", str(out))
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    assert "<script>alert(1)" not in html and "http://" not in html.replace(
        "http://schema.org", "")  # no raw markup from manifests, no network resources
    assert "<script src" not in html and "<link" not in html

    mark = len(browser.events)
    browser.navigate(out.as_uri())
    assert browser.evaluate("window.sharkGraph && window.sharkGraph.rendered") is True
    assert browser.console_errors() == [], browser.console_errors()
    # 4 steps + raw, clean, stats, report, two hostile inputs, final = 11 nodes
    assert browser.evaluate("sharkGraph.nodeCount") == 11
    assert browser.evaluate("document.querySelectorAll('script').length") == 2
    data = json.loads(browser.evaluate("document.getElementById('shark-data').textContent"))
    stale = [n["label"] for n in data["nodes"] if n["state"] == "stale"]
    assert stale == ["data/clean.csv"]

    step_id = next(n["id"] for n in data["nodes"] if n["label"].startswith("python stats.py"))
    assert browser.evaluate(f"sharkGraph.focus({json.dumps(step_id)})")
    pos = browser.evaluate(f"sharkGraph.screenPosition({json.dumps(step_id)})")
    browser.click(pos["x"], pos["y"])
    details = browser.evaluate("document.getElementById('details').innerText")
    assert "python stats.py data/clean.csv results/stats.json" in details
    assert "signed by" in details and "own (" in details
    assert "verification\nverified" in details and "attestation\nsha256:" in details
    assert "started" in details and "git commit" in details

    for name in (XSS_NAME, IMG_NAME):
        nid = next(n["id"] for n in data["nodes"] if n["label"] == name)
        browser.evaluate(f"sharkGraph.focus({json.dumps(nid)})")
        pos = browser.evaluate(f"sharkGraph.screenPosition({json.dumps(nid)})")
        browser.click(pos["x"], pos["y"])
        assert browser.evaluate("document.querySelector('#details h2').textContent") == name
        assert browser.evaluate("document.querySelectorAll('#details img, #details script').length") == 0
    assert not any(e.get("method") == "Page.javascriptDialogOpening"
                   for e in browser.events[mark:])
    assert browser.console_errors() == []
    # the wheel zooms around the pointer, a drag pans
    before = browser.evaluate("sharkGraph.view()")
    browser.send("Input.dispatchMouseEvent", {"type": "mouseWheel", "x": 300, "y": 300,
                                              "deltaX": 0, "deltaY": -300})
    zoomed = browser.evaluate("sharkGraph.view()")
    assert zoomed["scale"] > before["scale"]
    for kind, x in (("mousePressed", 200), ("mouseMoved", 260), ("mouseMoved", 320),
                    ("mouseReleased", 320)):
        browser.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": 400,
                                                  "button": "left", "buttons": 1,
                                                  "clickCount": 1})
    panned = browser.evaluate("sharkGraph.view()")
    assert panned["x"] == pytest.approx(zoomed["x"] + 120, abs=2)
    browser.evaluate("document.getElementById('fit').click()")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "lineage-graph.png"
    browser.screenshot(str(shot))
    assert shot.stat().st_size > 5000
    assert browser.console_errors() == []


def _maps(root: Path, maps: int, *commands: tuple[str, ...]) -> Path:
    """A signed fan-in lineage: ``maps`` map steps (input_i -> part_i, their argv cycling through
    ``commands``) and one combine step reading every part (benchmarks/bench_views.py)."""
    code = f"""
import sys
sys.path.insert(0, {str(REPO / 'benchmarks')!r})
from bench_views import MAP, make_lineage
make_lineage({str(root)!r}, {maps + 1}, fan_in=True, commands={commands or None!r} or (MAP,))
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    return root / "result.txt"


def _page_data(text: str) -> dict:
    data_start = text.index('id="shark-data">') + len('id="shark-data">')
    return json.loads(text[data_start:text.index("</script>", data_start)])


CP = ("sh", "-c", "cp {src_rel} {dst_rel}")


def test_html_stays_self_contained_with_a_large_graph(tmp_path: Path) -> None:
    """A 150-step lineage renders to one file without external references (no browser needed)."""
    result = _maps(tmp_path, 149)
    out = tmp_path / "g.html"
    r = shark("graph", str(result), "--format", "html", "-o", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "<script src" not in text and "<link" not in text
    data = _page_data(text)
    # 149 inputs, 149 steps, 149 parts folded into three nodes; combine, result
    assert len(data["nodes"]) == 5
    assert sorted(n.get("count", 1) for n in data["nodes"]) == [1, 1, 149, 149, 149]


def test_map_stage_is_one_node_with_its_members(tmp_path: Path) -> None:
    """1,000 identical `cp` steps feeding one combine step: one step node listing 1,000 members
    (JSON keeps each member whole), one node for their inputs and one for their outputs; the
    HTML page stays small where the page drawing every step is megabytes."""
    n = 1000
    result = _maps(tmp_path, n, CP)
    g = json.loads(shark("graph", str(result), "--format", "json").stdout)
    assert len(g["nodes"]) == 5 and len(g["edges"]) == 4
    by_label = {nd["label"]: nd for nd in g["nodes"]}
    step = by_label["cp in/{…}.csv parts/{…}.csv ×1,000"]
    assert step["kind"] == "step" and step["count"] == n and step["state"] == "verified"
    assert len(step["members"]) == n
    assert {m["label"] for m in step["members"]} == {f"cp in/input{i}.csv parts/part{i}.csv"
                                                     for i in range(n)}
    assert all(m["details"]["attestation"].startswith("sha256:") for m in step["members"])
    assert step["details"]["steps"] == "1,000"
    assert "run id" not in step["details"]  # differs between members: only in the member list
    inputs, parts = by_label["in/{…}.csv ×1,000"], by_label["parts/{…}.csv ×1,000"]
    assert inputs["count"] == parts["count"] == n
    assert {m["label"] for m in parts["members"]} == {f"parts/part{i}.csv" for i in range(n)}
    combine = by_label["python combine.py parts/"]
    ids = {nd["label"]: nd["id"] for nd in g["nodes"]}
    assert sorted(g["edges"]) == sorted([
        [inputs["id"], step["id"]], [step["id"], parts["id"]], [parts["id"], combine["id"]],
        [combine["id"], ids["result.txt"]]])

    dot = shark("graph", str(result), "--format", "dot").stdout
    assert dot.count("->") == 4 and "×1,000" in dot and dot.count("peripheries=2") == 3
    mm = shark("graph", str(result), "--format", "mermaid").stdout
    assert mm.count("-->") == 4 and mm.count("class n") == 3

    out = tmp_path / "g.html"
    assert shark("graph", str(result), "--format", "html", "-o", str(out)).returncode == 0
    grouped = out.stat().st_size
    code = f"""
from sharklib.attest.lineage import load_lineage
from sharklib.views.graph import build_graph, to_html
g = build_graph(load_lineage({str(result)!r}), group=False)
print(len(g.nodes), len(to_html(g).encode()))
"""
    nodes, ungrouped = map(int, subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO,
                                               capture_output=True, text=True).stdout.split())
    assert nodes == 3 * n + 2
    assert grouped < 150_000 < ungrouped, (grouped, ungrouped)
    page = _page_data(out.read_text())
    step_page = next(nd for nd in page["nodes"] if nd["kind"] == "step" and nd.get("count"))
    assert "members" not in step_page and len(step_page["fills"]) == n
    assert step_page["parts"] == ["cp in/", ".csv parts/", ".csv"]


def test_different_commands_are_not_folded_together(tmp_path: Path) -> None:
    """Maps running two different scripts, or one script with a different option, are different
    stages: three step nodes, each with its own members, never one."""
    result = _maps(tmp_path, 30, ("python", "make_part.py", "{src}", "{dst}"),
                   ("python", "other.py", "{src}", "{dst}"),
                   ("python", "make_part.py", "--fast", "{src}", "{dst}"))
    g = json.loads(shark("graph", str(result), "--format", "json").stdout)
    steps = sorted((nd["label"].split(" ×")[0].replace(str(tmp_path), "T"), nd.get("count"))
                   for nd in g["nodes"] if nd["kind"] == "step")
    assert steps == [("python combine.py parts/", None),
                     ("python make_part.py --fast T/in/{…}.csv T/parts/{…}.csv", 10),
                     ("python make_part.py T/in/{…}.csv T/parts/{…}.csv", 10),
                     ("python other.py T/in/{…}.csv T/parts/{…}.csv", 10)]
    folded = [nd for nd in g["nodes"] if nd["kind"] == "step" and nd.get("count")]
    assert len({m["id"] for nd in folded for m in nd["members"]}) == 30


def test_folded_node_expands_in_headless_chromium(tmp_path: Path, browser: Browser) -> None:
    """Clicking the folded node shows its count; opening its list shows every member."""
    n = 300
    result = _maps(tmp_path, n, CP)
    out = tmp_path / "g.html"
    assert shark("graph", str(result), "--format", "html", "-o", str(out)).returncode == 0
    browser.navigate(out.as_uri())
    assert browser.evaluate("sharkGraph.nodeCount") == 5
    assert browser.console_errors() == []
    data = json.loads(browser.evaluate("document.getElementById('shark-data').textContent"))
    step_id = next(nd["id"] for nd in data["nodes"] if nd["kind"] == "step" and nd.get("count"))
    assert browser.evaluate(f"sharkGraph.focus({json.dumps(step_id)})")
    pos = browser.evaluate(f"sharkGraph.screenPosition({json.dumps(step_id)})")
    browser.click(pos["x"], pos["y"])
    assert browser.evaluate("document.querySelector('#details h2').textContent") == \
        "cp in/{…}.csv parts/{…}.csv ×300"
    assert browser.evaluate("document.querySelectorAll('#details li').length") == 0
    assert browser.evaluate("document.querySelector('#details details summary').textContent") == \
        "300 steps folded into this node"
    browser.evaluate("document.querySelector('#details details').open = true")
    browser.evaluate("new Promise(r => setTimeout(r, 50))")
    items = browser.evaluate("[...document.querySelectorAll('#details li')].map(e => e.textContent)")
    assert items == [f"cp in/input{i}.csv parts/part{i}.csv" for i in range(n)]
    browser.evaluate("document.getElementById('fit').click()")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "lineage-graph-folded.png"
    browser.screenshot(str(shot))
    assert shot.stat().st_size > 5000
    assert browser.console_errors() == []


def test_a_chain_of_maps_folds_stage_by_stage_and_a_bad_step_stays_apart() -> None:
    """raw_i -> clean_i -> count_i -> combine: each map stage is one node, though their outputs
    feed different steps one by one; the one step whose signature fails is drawn on its own,
    and so are the files only it touches."""
    from sharklib.views.graph import Graph, Node, fold

    g = Graph(target="total.txt")
    shapes: dict = {}

    def add(kind: str, label: str, state: str, words: list[str] | None = None) -> int:
        g.nodes.append(Node(f"{kind}:{label}", kind, label, state, {"path": label}))
        if words is not None:
            shapes[len(g.nodes) - 1] = ((tuple(words[:1]), None, (), None), words)
        return len(g.nodes) - 1

    combine = add("step", "combine counts/", "verified", ["combine", "counts/"])
    g.edges.append((combine, add("file", "total.txt", "ok")))
    for i in range(20):
        bad = "unverified" if i == 7 else "verified"
        raw, clean, count = (add("file", f"{d}/x{i}.csv", "ok") for d in ("raw", "clean", "counts"))
        s1 = add("step", f"clean raw/x{i}.csv clean/x{i}.csv", bad,
                 ["clean", f"raw/x{i}.csv", f"clean/x{i}.csv"])
        s2 = add("step", f"count clean/x{i}.csv counts/x{i}.csv", "verified",
                 ["count", f"clean/x{i}.csv", f"counts/x{i}.csv"])
        g.edges += [(raw, s1), (s1, clean), (clean, s2), (s2, count), (count, combine)]
    out = fold(g, shapes)
    labels = sorted(n.label for n in out.nodes)
    assert labels == sorted([
        "combine counts/", "total.txt",
        "clean raw/{…}.csv clean/{…}.csv ×19", "count clean/{…}.csv counts/{…}.csv ×20",
        "raw/{…}.csv ×19", "clean/{…}.csv ×19", "counts/{…}.csv ×20",
        "clean raw/x7.csv clean/x7.csv", "raw/x7.csv", "clean/x7.csv"])
    cleaned = next(n for n in out.nodes if n.label.startswith("clean raw/{"))
    assert [m.label for m in cleaned.members][:3] == [
        "clean raw/x0.csv clean/x0.csv", "clean raw/x1.csv clean/x1.csv",
        "clean raw/x2.csv clean/x2.csv"]
    assert cleaned.members[-1].label == "clean raw/x19.csv clean/x19.csv"
    # total<-combine<-counts<-count<-clean{…}/clean7; clean{…}<-clean<-raw{…}; clean7<-bad<-raw7
    assert len(out.edges) == 9
