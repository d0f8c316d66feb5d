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


def test_html_stays_self_contained_with_a_large_graph(tmp_path: Path) -> None:
    """A 300-node lineage renders to one file without external references (no browser needed)."""
    code = f"""
import sys
sys.path.insert(0, {str(REPO / 'benchmarks')!r})
from bench_views import make_lineage
make_lineage({str(tmp_path)!r}, 150, fan_in=True)
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    out = tmp_path / "g.html"
    r = shark("graph", str(tmp_path / "result.txt"), "--format", "html", "-o", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    data_start = text.index('id="shark-data">') + len('id="shark-data">')
    data = json.loads(text[data_start:text.index("</script>", data_start)])
    assert len(data["nodes"]) == 3 * 149 + 2  # 149 inputs, 149 steps, 149 parts, combine, result
