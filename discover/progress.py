"""Progress of the long commands on a terminal (``rich.progress``): what is running, M/N,
a bar, elapsed time, the time left by the command's own estimate, the best score so far
and the current phase. Where the output is not a terminal (a file, a pipe, the tests) a
bar draws nothing and the commands' plain lines tell the same story."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Column
from rich.text import Text


def clock(seconds: float) -> str:
    """``seconds`` as H:MM:SS."""
    s = max(int(seconds), 0)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class _TimeLeft(ProgressColumn):
    """The time left until ``task.fields["ends"]`` (a ``time.time()``), counting down between
    updates: the commands estimate it themselves (a search's ETA includes its final
    re-scoring, which rich's rate of completed steps cannot know)."""

    def render(self, task: Task) -> Text:
        ends = task.fields.get("ends")
        left = "-:--:--" if ends is None else clock(ends - time.time())
        return Text(f"ETA {left}", style="progress.remaining")


class Bar:
    """One bar: ``what`` is running, ``count`` (M/N in the command's words), elapsed time,
    ETA, ``best`` so far and the ``phase`` within a step. ``total`` None: a pulsing bar (no
    known end). A no-op where ``console`` is not a terminal."""

    def __init__(self, console: Console, what: str, total: float | None, completed: float = 0, count: str = ""):
        self.shown = console.is_terminal
        self._progress = None
        if self.shown:
            # every column keeps its width; the phase takes what is left, cut with an ellipsis
            fixed = dict(table_column=Column(no_wrap=True))
            self._progress = Progress(
                SpinnerColumn(), TextColumn("[bold]{task.description}", **fixed), BarColumn(bar_width=20),
                TextColumn("{task.fields[count]}", **fixed), TimeElapsedColumn(), _TimeLeft(**fixed),
                TextColumn("{task.fields[best]}", style="green", **fixed),
                TextColumn("[dim]{task.fields[phase]}", table_column=Column(no_wrap=True, overflow="ellipsis",
                                                                             ratio=1)),
                console=console, transient=True, expand=True)
            self._task = self._progress.add_task(what, total=total, completed=completed, count=count, best="",
                                                 phase="", ends=None)

    def __enter__(self) -> "Bar":
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, completed: float | None = None, *, total: float | None = None, count: str | None = None,
               best: str | None = None, phase: str | None = None, seconds_left: float | None = None) -> None:
        """Moves the bar; fields not given keep their values (``seconds_left``: from now)."""
        if self._progress is None:
            return
        fields = {k: v for k, v in dict(count=count, best=best, phase=phase).items() if v is not None}
        if seconds_left is not None:
            fields["ends"] = time.time() + seconds_left
        self._progress.update(self._task, completed=completed, total=total, **fields)


class DataBar(Bar):
    """A bar over an evaluator's preparation of its datasets (an
    :data:`evaluators.interface.DataProgress`): datasets ready of all, the time left at the
    pace of the datasets built so far (cached ones, ready within a second, do not count), and
    the stage of the one being prepared."""

    def __init__(self, console: Console, what: str, total: int):
        super().__init__(console, what, total, count=f"0/{total}")
        self._began = self._started = time.time()
        self._current, self._cached, self._cached_seconds = 0, 0, 0.0

    def __call__(self, ready: float, total: int, what: str) -> None:
        now = time.time()
        if int(ready) > self._current:  # a dataset (or several) finished
            if now - self._started < 1.0:
                self._cached += int(ready) - self._current
                self._cached_seconds += now - self._started
            self._current, self._started = int(ready), now
        built = ready - self._cached
        left = None
        if built > 0.02 and ready < total:
            left = (now - self._began - self._cached_seconds) / built * (total - ready)
        self.update(ready, total=total, count=f"{int(ready)}/{total}", phase=what, seconds_left=left)
