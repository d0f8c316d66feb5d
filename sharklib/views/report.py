"""``sharklib report``: the frugality ledger — what was computed, what reuse saved.

Counts come from the ledger (:mod:`sharklib.cache.ledger`): every recorded run
is compute spent (its recorded duration), every reuse is compute saved (the
recorded duration minus what the reuse itself took, as the reuse line says).

Energy and emissions are an estimate, and the model is printed with every
report. It is the Green Algorithms model (Lannelongue, Grealey & Inouye,
*Green Algorithms: Quantifying the Carbon Footprint of Computation*, Adv. Sci.
2021, doi:10.1002/advs.202100707) restricted to the cores:

    energy (kWh)     = CPU time (h) x power per core (W) x PUE / 1000
    emissions (gCO2e) = energy (kWh) x grid carbon intensity (gCO2e/kWh)

with that tool's defaults: 12 W per core (its "Any" CPU), PUE 1.67 (its
default data-centre efficiency) and 475 gCO2e/kWh (the world average it and
carbontracker use, IEA 2019). Memory power is left out: sharklib does not record
how much memory a step held. CPU time is the recorded CPU time where the run
has one, else its wall time (one busy core), and the report says how many runs
were estimated so. Each constant can be set by option, environment variable
(``SHARKLIB_CORE_WATTS``, ``SHARKLIB_PUE``, ``SHARKLIB_GRID_INTENSITY``) or the
project's ``.sharklib/report.toml`` (``core_watts``, ``pue``, ``grid_intensity``).
"""

from __future__ import annotations

import os
from typing import Any

from sharklib.cache.ledger import time_range
from sharklib.errors import SharkError
from sharklib.model.energy import ENV, EnergyModel, energy_text, grams_text
from sharklib.views.queries import JSON_SCHEMA, Source, iso, seconds

PERIODS = ("day", "week", "month", "year")


def energy_model(root: str | None = None, **given: float | None) -> EnergyModel:
    """Options win over the environment, which wins over ``.sharklib/report.toml``."""
    settings: dict[str, Any] = {}
    if root:
        path = os.path.join(root, ".sharklib", "report.toml")
        if os.path.exists(path):
            import tomllib

            try:
                with open(path, "rb") as fh:
                    data = tomllib.load(fh)
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise SharkError(f"{path}: unreadable report settings: {exc}") from None
            settings = data.get("report", data)
    model = EnergyModel()
    for name, var in ENV.items():
        value: Any = given.get(name)
        where = f"--{name.replace('_', '-')}"
        if value is None and os.environ.get(var):
            value, where = os.environ[var], var
        if value is None and name in settings:
            value, where = settings[name], ".sharklib/report.toml"
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SharkError(f"{where}: not a number: {value!r}") from None
        if not number >= 0 or number == float("inf"):
            raise SharkError(f"{where}: must be a finite number >= 0, not {value!r}")
        setattr(model, name, number)
    return model


#: strftime formats of a period (local time; weeks start on Monday, %W)
_PERIOD_SQL = {"day": "%Y-%m-%d", "week": "%Y-W%W", "month": "%Y-%m", "year": "%Y"}


def period_name(t: float, fmt: str) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(t).strftime(fmt)


class _Tally:
    __slots__ = ("cpu_estimated", "failed", "recorded", "reused", "saved_cpu", "saved_wall",
                 "spent_cpu", "spent_wall")

    def __init__(self) -> None:
        self.recorded = self.reused = self.failed = self.cpu_estimated = 0
        self.spent_wall = self.spent_cpu = self.saved_wall = self.saved_cpu = 0.0

    def json(self, model: EnergyModel) -> dict[str, Any]:
        return {
            "runs_recorded": self.recorded, "runs_failed": self.failed,
            "runs_reused": self.reused,
            "spent_wall_seconds": round(self.spent_wall, 3),
            "spent_cpu_seconds": round(self.spent_cpu, 3),
            "saved_wall_seconds": round(self.saved_wall, 3),
            "saved_cpu_seconds": round(self.saved_cpu, 3),
            "spent_kwh": round(model.kwh(self.spent_cpu), 9),
            "saved_kwh": round(model.kwh(self.saved_cpu), 9),
            "spent_gco2e": round(model.grams(self.spent_cpu), 6),
            "saved_gco2e": round(model.grams(self.saved_cpu), 6),
            "cpu_estimated": self.cpu_estimated,
        }


def report(source: Source, *, since: float | None = None, until: float | None = None,
           period: str = "month", model: EnergyModel | None = None,
           top: int = 10) -> dict[str, Any]:
    """Totals, then per project, per user and per period; the most-saving steps."""
    model = model or EnergyModel()
    led = source.ledger
    totals = _Tally()
    groups: dict[str, dict[str, _Tally]] = {"project": {}, "user": {}, "period": {}}
    fmt = _PERIOD_SQL[period]

    def into(project: Any, user: Any, when: Any) -> list[_Tally]:
        keys = {"project": project, "user": user, "period": when}
        return [totals, *(groups[g].setdefault(str(k or "(unknown)"), _Tally())
                          for g, k in keys.items())]

    # one scan, summed here per (project, user, 15-minute bucket): a GROUP BY on the strings
    # sorted 100,000 rows in a temporary B-tree (0.6 s); the buckets are then named by period
    # in local time (every time zone's offset is a multiple of 15 minutes)
    where, args = time_range("created", since, until)
    runs: dict[tuple[str, str, int], list[float]] = {}
    for project, user, bucket, duration, cpu, status in led.q(
            "SELECT project, user, CAST(created / 900 AS INTEGER), duration, cpu, exit_status "
            f"FROM ledger_runs {where}", args):
        acc = runs.get((project, user, bucket))
        if acc is None:
            acc = runs[(project, user, bucket)] = [0, 0, 0, 0.0, 0.0]
        acc[0] += 1
        acc[1] += status is None or status != 0
        acc[2] += cpu is None
        acc[3] += duration
        acc[4] += duration if cpu is None else cpu
    names: dict[int, str] = {}
    for (project, user, bucket), (n, failed, est, wall, cpu) in runs.items():
        when = names.get(bucket)
        if when is None:
            when = names[bucket] = period_name(bucket * 900.0, fmt)
        for tl in into(project, user, when):
            tl.recorded += int(n)
            tl.failed += int(failed)
            tl.cpu_estimated += int(est)
            tl.spent_wall += wall
            tl.spent_cpu += cpu
    where, args = time_range("u.at", since, until)
    saved_cpu = ("CASE WHEN l.cpu IS NULL OR l.duration <= 0 THEN u.saved_wall "
                 "ELSE l.cpu * MIN(1.0, u.saved_wall / l.duration) END")
    for project, user, when, n, wall, cpu in led.q(
            "SELECT l.project, u.user, strftime(?, u.at, 'unixepoch', 'localtime'), COUNT(*), "
            f"SUM(u.saved_wall), SUM({saved_cpu}) FROM ledger_reuses u "
            f"JOIN ledger_runs l ON l.run_id = u.run_id {where} GROUP BY 1, 2, 3", [fmt, *args]):
        for tl in into(project, user, when):
            tl.reused += int(n)
            tl.saved_wall += float(wall or 0.0)
            tl.saved_cpu += float(cpu or 0.0)
    steps: dict[str, list[Any]] = {}
    for step, project, n, wall in led.q(
            "SELECT l.step, l.project, SUM(r.n), SUM(r.s) AS saved FROM (SELECT u.run_id, "
            f"COUNT(*) AS n, SUM(u.saved_wall) AS s FROM ledger_reuses u {where} "
            "GROUP BY u.run_id) r JOIN ledger_runs l ON l.run_id = r.run_id GROUP BY l.step "
            f"ORDER BY saved DESC, l.step LIMIT {int(top)}", args):
        steps[step] = [int(n), float(wall or 0.0), project]
    by_period = sorted(groups["period"].items())
    cumulative = 0.0
    over_time = []
    for name, tl in by_period:
        cumulative += tl.saved_wall
        over_time.append({"period": name, "saved_wall_seconds": round(tl.saved_wall, 3),
                          "cumulative_saved_wall_seconds": round(cumulative, 3),
                          "runs_reused": tl.reused, "runs_recorded": tl.recorded})
    top_steps = list(steps.items())
    return {
        "schema": JSON_SCHEMA, "source": source.where, "remote": source.remote,
        "since": iso(since) if since is not None else None,
        "until": iso(until) if until is not None else None,
        "period": period,
        "model": {**model.to_dict(), "formula": "kWh = cpu_h * core_watts * pue / 1000; "
                                              "gCO2e = kWh * grid_intensity"},
        "totals": totals.json(model),
        "by_project": [{"project": k, **v.json(model)} for k, v in sorted(groups["project"].items())],
        "by_user": [{"user": k, **v.json(model)} for k, v in sorted(groups["user"].items())],
        "by_period": [{"period": k, **v.json(model)} for k, v in by_period],
        "saved_over_time": over_time,
        "top_reused": [{"command": step.partition("\0")[2], "cwd": step.partition("\0")[0],
                        "project": v[2], "reuses": v[0], "saved_wall_seconds": round(v[1], 3)}
                       for step, v in top_steps],
    }


def energy(kwh: float) -> str:
    return energy_text(kwh)


def grams(g: float) -> str:
    return grams_text(g, "g")


def print_report(doc: dict[str, Any], console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    t = doc["totals"]
    console.print(f"[b]{t['runs_recorded']} runs recorded[/] ({t['runs_failed']} failed), "
                  f"[b]{t['runs_reused']} reused[/] · {escape(doc['source'])}")
    console.print(f"spent {seconds(t['spent_wall_seconds'])} wall, "
                  f"{seconds(t['spent_cpu_seconds'])} CPU = {energy(t['spent_kwh'])}, "
                  f"{grams(t['spent_gco2e'])} CO2e")
    console.print(f"[green]saved {seconds(t['saved_wall_seconds'])} wall, "
                  f"{seconds(t['saved_cpu_seconds'])} CPU = {energy(t['saved_kwh'])}, "
                  f"{grams(t['saved_gco2e'])} CO2e[/]")
    for key, title in (("by_project", "project"), ("by_user", "user"), ("by_period", "period")):
        rows = doc[key]
        if len(rows) < 1:
            continue
        table = Table(title=f"by {title}", title_justify="left", show_edge=False, pad_edge=False)
        for c in (title, "recorded", "reused", "spent", "saved", "saved energy", "saved CO2e"):
            table.add_column(c, justify="left" if c == title else "right")
        for r in rows:
            table.add_row(escape(str(r[title])), str(r["runs_recorded"]), str(r["runs_reused"]),
                          seconds(r["spent_wall_seconds"]), seconds(r["saved_wall_seconds"]),
                          energy(r["saved_kwh"]), grams(r["saved_gco2e"]))
        console.print(table)
    if doc["top_reused"]:
        table = Table(title="most reused steps", title_justify="left", show_edge=False,
                      pad_edge=False)
        for c in ("command", "reuses", "saved"):
            table.add_column(c, justify="left" if c == "command" else "right")
        for r in doc["top_reused"]:
            from sharklib.views.text import safe_markup

            table.add_row(safe_markup(r["command"]), str(r["reuses"]),
                          seconds(r["saved_wall_seconds"]))
        console.print(table)
    m = doc["model"]
    est = t["cpu_estimated"]
    console.print(f"[dim]model: {m['core_watts']:g} W per core x PUE {m['pue']:g}, "
                  f"{m['grid_intensity']:g} gCO2e/kWh; CPU time = wall time for {est} run(s) "
                  f"without a recorded CPU time. {escape(m['source'])}[/]")
