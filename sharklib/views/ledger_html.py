"""``sharklib report --html FILE``: the frugality ledger as one self-contained page.

Two plots drawn as inline SVG by this module (no script, no CDN, nothing
fetched: a Content-Security-Policy forbids it) — time saved per period with
its running total, and the steps whose reuse saved the most — above the
totals and the per-project, per-user and per-period tables. Every recorded
string (commands, user and project names) is HTML-escaped: the page shows a
command named ``<script>`` as text.
"""

from __future__ import annotations

import html
from typing import Any

from sharklib.views.queries import seconds
from sharklib.views.report import energy, grams

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;
text-align:right}td:first-child,th:first-child{text-align:left}
.big{font-size:1.2em}.saved{color:#17663a}.model{color:#666;font-size:.9em}
svg text{font:11px system-ui,sans-serif;fill:#333}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _line_chart(points: list[dict[str, Any]], width: int = 720, height: int = 260) -> str:
    """Bars for time saved per period, a line for the running total (both in hours or s)."""
    if not points:
        return '<p id="saved-over-time">no reuse recorded yet</p>'
    left, right, top, bottom = 70, 20, 20, 50
    w, h = width - left - right, height - top - bottom
    peak = max(p["cumulative_saved_wall_seconds"] for p in points) or 1.0
    unit, div = ("h", 3600.0) if peak >= 3 * 3600 else ("min", 60.0) if peak >= 180 else ("s", 1.0)
    n = len(points)
    step = w / n
    parts = [f'<svg id="saved-over-time" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" role="img" aria-label="time saved over time">',
             f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#999"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#999"/>']
    for i in range(5):
        v = peak * i / 4
        y = top + h - h * i / 4
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{v / div:.3g} {unit}</text>')
    line = []
    for i, p in enumerate(points):
        x = left + step * i + step * 0.15
        bh = h * p["saved_wall_seconds"] / peak
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{top + h - bh:.1f}" width="{step * 0.7:.1f}" '
                     f'height="{bh:.1f}" fill="#8fc9a3"><title>{_e(p["period"])}: '
                     f'{_e(seconds(p["saved_wall_seconds"]))} saved</title></rect>')
        cx = left + step * (i + 0.5)
        cy = top + h - h * p["cumulative_saved_wall_seconds"] / peak
        line.append(f"{cx:.1f},{cy:.1f}")
        parts.append(f'<text x="{cx:.1f}" y="{top + h + 16}" text-anchor="middle">'
                     f'{_e(p["period"])}</text>')
    parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="#17663a" '
                 'stroke-width="2"/>')
    parts.append(f'<text x="{left}" y="{height - 8}">bars: saved in the period; line: running '
                 'total</text></svg>')
    return "".join(parts)


def _bar_chart(rows: list[dict[str, Any]], width: int = 720) -> str:
    if not rows:
        return '<p id="top-reused">no reuse recorded yet</p>'
    label_w, bar_h = 300, 22
    height = bar_h * len(rows) + 10
    peak = max(r["saved_wall_seconds"] for r in rows) or 1.0
    w = width - label_w - 90
    parts = [f'<svg id="top-reused" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" role="img" aria-label="most reused steps">']
    for i, r in enumerate(rows):
        y = 5 + i * bar_h
        cmd = r["command"] if len(r["command"]) <= 45 else r["command"][:44] + "…"
        bw = max(1.0, w * r["saved_wall_seconds"] / peak)
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_e(cmd)}</text>'
                     f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{bw:.1f}" '
                     f'height="{bar_h - 6}" fill="#6aa3d8"><title>{_e(r["command"])}: '
                     f'{r["reuses"]} reuses</title></rect>'
                     f'<text x="{label_w + bw + 6:.1f}" y="{y + 15}">'
                     f'{_e(seconds(r["saved_wall_seconds"]))} ({r["reuses"]}x)</text>')
    parts.append("</svg>")
    return "".join(parts)


def _group_table(rows: list[dict[str, Any]], key: str) -> str:
    head = (f"<tr><th>{_e(key)}</th><th>recorded</th><th>reused</th><th>spent</th>"
            "<th>saved</th><th>saved energy</th><th>saved CO2e</th></tr>")
    body = "".join(
        f"<tr><td>{_e(r[key])}</td><td>{r['runs_recorded']}</td><td>{r['runs_reused']}</td>"
        f"<td>{_e(seconds(r['spent_wall_seconds']))}</td>"
        f"<td>{_e(seconds(r['saved_wall_seconds']))}</td><td>{_e(energy(r['saved_kwh']))}</td>"
        f"<td>{_e(grams(r['saved_gco2e']))}</td></tr>" for r in rows)
    return f'<table class="by-{_e(key)}">{head}{body}</table>'


def render(doc: dict[str, Any]) -> str:
    """The page for a :func:`sharklib.views.report.report` document."""
    t, m = doc["totals"], doc["model"]
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<title>sharklib report</title><style>{_CSS}</style></head><body>
<h1>What reuse saved</h1>
<p class="big" id="totals"><b id="runs-recorded">{t['runs_recorded']}</b> runs recorded
({t['runs_failed']} failed), <b id="runs-reused">{t['runs_reused']}</b> reused.</p>
<p>Spent {_e(seconds(t['spent_wall_seconds']))} wall, {_e(seconds(t['spent_cpu_seconds']))} CPU:
{_e(energy(t['spent_kwh']))}, {_e(grams(t['spent_gco2e']))} CO2e.</p>
<p class="saved big" id="saved">Saved {_e(seconds(t['saved_wall_seconds']))} wall,
{_e(seconds(t['saved_cpu_seconds']))} CPU: {_e(energy(t['saved_kwh']))},
{_e(grams(t['saved_gco2e']))} CO2e.</p>
<h2>Time saved, per {_e(doc['period'])}</h2>
{_line_chart(doc['saved_over_time'])}
<h2>Most reused steps</h2>
{_bar_chart(doc['top_reused'])}
<h2>By project</h2>{_group_table(doc['by_project'], 'project')}
<h2>By user</h2>{_group_table(doc['by_user'], 'user')}
<h2>By {_e(doc['period'])}</h2>{_group_table(doc['by_period'], 'period')}
<p class="model" id="model">Model: energy (kWh) = CPU hours x {m['core_watts']:g} W per core x
PUE {m['pue']:g} / 1000; emissions = energy x {m['grid_intensity']:g} gCO2e/kWh.
CPU time is the wall time for {t['cpu_estimated']} run(s) without a recorded CPU time.
Memory is not counted. Source: {_e(m['source'])}. Ledger: {_e(doc['source'])}.</p>
</body></html>
"""
