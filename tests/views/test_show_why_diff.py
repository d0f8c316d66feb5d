"""show, why and diff through the real CLI on a real signed 3-step lineage."""

from __future__ import annotations

import json
from pathlib import Path

from viewkit import Pipeline, build_pipeline, shark


def test_show_tree_names_every_step_and_input(pipeline: Pipeline) -> None:
    r = shark("show", str(pipeline.report))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "results/report.txt" in out.splitlines()[0]
    for cmd in ("python report.py data/clean.csv results/stats.json",
                "python clean.py data/raw.csv data/clean.csv",
                "python stats.py data/clean.csv results/stats.json"):
        assert cmd in out
    assert "data/raw.csv" in out and "(primary input)" in out
    assert "exit 0" in out and "signed by own" in out and "commit aaaaaaaaaa" in out
    # clean.py feeds two steps: drawn once, referred to afterwards
    assert out.count("python clean.py data/raw.csv data/clean.csv ·") == 1
    assert "(see above)" in out
    assert "STALE" not in out and "missing" not in out


def test_show_marks_stale_and_missing_files(pipeline: Pipeline) -> None:
    pipeline.clean.write_text("edited by hand\n")
    pipeline.raw.unlink()
    out = shark("show", str(pipeline.report)).stdout
    clean_lines = [ln for ln in out.splitlines() if "data/clean.csv sha256:" in ln]
    assert clean_lines and all("STALE" in ln for ln in clean_lines)
    raw_line = next(ln for ln in out.splitlines() if "data/raw.csv sha256:" in ln)
    assert "missing" in raw_line


def test_why_json_lists_transitive_inputs_code_and_environment(pipeline: Pipeline) -> None:
    r = shark("why", str(pipeline.report), "--json")
    assert r.returncode == 0, r.stderr
    deps = json.loads(r.stdout)
    assert deps["steps"] == 3 and not deps["truncated"]
    by_path = {Path(i["path"]).name: i for i in deps["inputs"]}
    assert set(by_path) == {"clean.csv", "stats.json", "raw.csv"}
    assert by_path["raw.csv"]["primary"] and by_path["raw.csv"]["depth"] == 2
    assert by_path["clean.csv"]["made_by"] == "python clean.py data/raw.csv data/clean.csv"
    assert {Path(c["path"]).name for c in deps["code"]} == {"clean.py", "stats.py", "report.py"}
    assert all(c["git_commit"] == "a" * 40 for c in deps["code"])
    assert deps["environment"]["distributions"]["numpy"] == {
        "1.26.4": ["python report.py data/clean.csv results/stats.json",
                   "python clean.py data/raw.csv data/clean.csv",
                   "python stats.py data/clean.csv results/stats.json"]}


def test_why_depth_one_stops_at_direct_inputs(pipeline: Pipeline) -> None:
    deps = json.loads(shark("why", str(pipeline.report), "--json", "--depth", "1").stdout)
    assert deps["truncated"] and deps["steps"] == 1
    assert {Path(i["path"]).name for i in deps["inputs"]} == {"clean.csv", "stats.json"}
    tree = shark("why", str(pipeline.report), "--depth", "1").stdout
    assert "cut at --depth" in tree and "read directly" in tree


def test_diff_names_root_causes_not_consequences(tmp_path: Path) -> None:
    a = build_pipeline(tmp_path / "a")
    b = build_pipeline(tmp_path / "b", raw_text="id,value\n1,2.5\n2,NA\n3,4.5\n4,1\n",
                       stats_argv_extra=["--precise"], distributions={"numpy": "2.0.0"})
    r = shark("diff", str(a.report), str(b.report), "--json")
    assert r.returncode == 1
    d = json.loads(r.stdout)
    assert not d["same_content"]
    kinds = {(p["kind"], p["what"]) for p in d["points"]}
    assert ("primary input", "data/raw.csv") in kinds
    assert ("package", "numpy") in kinds
    assert ("arguments", "command line") in kinds
    # clean.csv and stats.json differ only as consequences: not reported as causes
    assert not any(p["what"] in ("data/clean.csv", "results/stats.json") for p in d["points"])
    raw = next(p for p in d["points"] if p["what"] == "data/raw.csv")
    assert raw["via"][0] == "data/clean.csv"
    assert all(p["changes_result"] for p in d["points"])
    text = shark("diff", str(a.report), str(b.report)).stdout
    assert "diverge at 3 points" in text and "numpy" in text and "1.26.4 → 2.0.0" in text


def test_diff_names_what_one_side_lacks_in_words(tmp_path: Path) -> None:
    a = build_pipeline(tmp_path / "a")
    b = build_pipeline(tmp_path / "b", raw_text="id,value\n1,2.5\n2,NA\n3,4.5\n4,1\n",
                       distributions={"numpy": "1.26.4", "scipy": "1.13.0"})
    d = json.loads(shark("diff", str(a.report), str(b.report), "--json").stdout)
    assert {"kind": "package", "what": "scipy", "a": None, "b": "1.13.0"}.items() <= next(
        p for p in d["points"] if p["what"] == "scipy").items()
    text = shark("diff", str(a.report), str(b.report)).stdout
    assert "scipy: (not imported) → 1.13.0" in text
    assert "None" not in text


def test_diff_of_equal_results_still_names_how_their_lineages_differ(tmp_path: Path) -> None:
    a = build_pipeline(tmp_path / "a")
    b = build_pipeline(tmp_path / "b", distributions={"numpy": "2.0.0"})
    r = shark("diff", str(a.report), str(b.report), "--json")
    assert r.returncode == 1
    d = json.loads(r.stdout)
    assert d["same_content"]
    assert [(p["kind"], p["what"], p["a"], p["b"], p["changes_result"]) for p in d["points"]] == [
        ("package", "numpy", "1.26.4", "2.0.0", False)]
    text = shark("diff", str(a.report), str(b.report)).stdout
    assert "none of which changed the result" in text and "1.26.4 → 2.0.0" in text
    assert "no difference" not in text


def test_diff_of_identical_lineages_is_clean(tmp_path: Path) -> None:
    a = build_pipeline(tmp_path / "a")
    r = shark("diff", str(a.report), str(a.report))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no difference" in r.stdout


def test_downloads_appear_in_every_view(tmp_path: Path) -> None:
    from viewkit import record_download

    saved, dl = record_download(tmp_path / "dl", "records.csv",
                                "https://zenodo.org/records/123/files/records.csv?download=1",
                                etag='"abc"')
    show = shark("show", str(saved)).stdout
    assert "download https://zenodo.org/records/123/files/records.csv?download=1" in show
    deps = json.loads(shark("why", str(saved), "--json").stdout)
    assert deps["downloads"][0]["url"] == dl.url and deps["downloads"][0]["sha256"] == "c" * 64
    graph = json.loads(shark("graph", str(saved), "--format", "json").stdout)
    assert [n["label"] for n in graph["nodes"] if n["kind"] == "download"] == [dl.url]
    md = shark("pipeline", "from", str(saved)).stdout
    if md:
        assert f"{dl.url} records.csv sha256:{'c' * 64}" in md


def test_hostile_names_print_as_text(tmp_path: Path) -> None:
    """Markup in names was interpreted (verify's title), control characters printed raw (show/why)."""
    from viewkit import record_step

    root = tmp_path / "proj"
    root.mkdir()
    script = root / "make.py"
    script.write_text("pass\n")
    evil_in = root / "in\x1b[2J\x1b[31mput\nfake.csv"
    evil_in.write_text("1\n")
    out = root / "[b]report.txt"
    out.write_text("2\n")
    record_step(["python", "make.py", "\x1b]0;pwned\x07"], root, script, [evil_in], [out],
                run=False)
    for args in (["show"], ["why"], ["verify"], ["diff", str(out)]):
        r = shark(*args, str(out))
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        text = r.stdout + r.stderr
        assert "\x1b" not in text and "\x07" not in text, (args, text)
        if args[0] in ("show", "why"):
            assert "in\\x1b[2J\\x1b[31mput\\nfake.csv" in text, text
        if args[0] != "diff":
            assert "[b]report.txt" in text, (args, text)
    r = shark("verify", str(out))
    assert f"lineageof{out}" in "".join(r.stdout.split())  # the title, however it wraps
    assert "\\x1b]0;pwned\\x07" in shark("show", str(out)).stdout


def test_deleted_upstream_line_is_not_a_primary_input(pipeline: Pipeline) -> None:
    """An input whose recorded attestation is missing from the sidecar was '(primary input)'."""
    from sharklib.attest import sidecar_path

    side = Path(sidecar_path(str(pipeline.stats)))
    lines = side.read_bytes().splitlines(keepends=True)
    side.write_bytes(lines[0])  # drop clean.py's attestation
    r = shark("show", str(pipeline.stats))
    assert r.returncode == 0, r.stderr
    clean = next(x for x in r.stdout.splitlines() if "clean.csv sha256" in x)
    assert "(lineage not included)" in clean and "primary" not in clean
    r = shark("why", str(pipeline.stats))
    clean = next(x for x in r.stdout.splitlines() if "clean.csv sha256" in x)
    assert "lineage not included" in clean and "primary" not in clean
    raw = shark("show", str(pipeline.clean)).stdout
    assert "raw.csv" in raw and "(primary input)" in raw  # a real primary input stays one
