"""What the user sees: the plan table, live progress, the final summary (rich)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from sharklib.pipeline.plan import StagePlan
    from sharklib.pipeline.stages import Stage

MAX_ROWS = 40


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _reason(p: StagePlan) -> str:
    if p.action == "reuse":
        saved = f", saves {p.saved_seconds:.1f}s" if p.saved_seconds else ""
        return f"run {p.run_id or '?'}{saved}"
    return p.reason


def plan_table(stages: list[Stage], plans: list[StagePlan], title: str) -> Table:
    """One row per stage; a map's stages fold into one row per (action, reason)."""
    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    table.add_column("line", justify="right", style="dim")
    table.add_column("stage")
    table.add_column("plan")
    table.add_column("reuses / reason")
    groups: dict[tuple[int, str, str], list[int]] = {}
    for s in stages:
        p = plans[s.index]
        key = (s.line, p.action, p.reason if p.action == "run" else "") if s.item else (s.line, str(s.index), "")
        groups.setdefault(key, []).append(s.index)
    shown = 0
    for rows, (_, members) in enumerate(sorted(groups.items(), key=lambda kv: (kv[0][0], kv[1][0]))):
        if rows >= MAX_ROWS:
            table.add_row("…", f"{len(stages) - shown} more stage(s)", "", "")
            break
        shown += len(members)
        first = stages[members[0]]
        p = plans[members[0]]
        colour = "green" if p.action == "reuse" else "yellow"
        if first.item:
            name = f"{_esc(_short(first.display))} [dim]({len(members)} map stage(s))[/]"
            saved = sum(plans[i].saved_seconds for i in members)
            why = (f"{len(members)} past run(s), saves {saved:.1f}s" if p.action == "reuse" else p.reason)
        else:
            name, why = _esc(_short(first.display)), _reason(p)
        table.add_row(str(first.line), name, f"[{colour}]{p.action}[/]", _esc(why))
    return table


@dataclass(slots=True)
class LiveProgress:
    """Counts for the live display; the rich Progress is only drawn on a terminal."""

    console: Console
    total: int
    done: int = 0
    running: int = 0
    reused: int = 0
    failed: int = 0
    saved: float = 0.0
    _progress: Any = None
    _task: Any = None
    _notes: list[str] = field(default_factory=list)

    def __enter__(self) -> LiveProgress:
        if self.console.is_terminal and self.total:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(TextColumn("[bold]stages"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.description}"), TimeElapsedColumn(),
                                      console=self.console, transient=True)
            self._progress.__enter__()
            self._task = self._progress.add_task(self._text(), total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)

    def _text(self) -> str:
        return (f"active {self.running}  reused {self.reused}  failed {self.failed}  "
                f"saved {self.saved:.1f}s")

    def started(self) -> None:
        self.running += 1
        self._refresh(0)

    def finished(self, reused: bool, failed: bool, saved: float) -> None:
        self.running = max(0, self.running - 1)
        self.done += 1
        self.reused += int(reused)
        self.failed += int(failed)
        self.saved += saved
        self._refresh(1)

    def _refresh(self, advance: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=advance, description=self._text())


def _esc(text: str) -> str:
    """A recorded name or command for Rich markup: markup escaped, control characters shown
    as escapes (a file name's ESC sequence must not reach the terminal)."""
    from rich.markup import escape

    from sharklib.errors import printable

    return escape(printable(text))
