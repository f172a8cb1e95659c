"""qt-bench's progress bar (``common.progress``): off when stderr is not a terminal (a log file or a pipe gets no
redraws), and where the timed code runs in this thread (the features' kernels), no refresh thread at all."""

from __future__ import annotations

import io
import sys

import pytest

from quantumtrader.bench.common import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_is_off_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = progress(3, "steps")
    try:
        assert bar.disable
        bar.advance_to(2, "step 3")
    finally:
        bar.stop()
    assert sys.stderr.getvalue() == ""


def test_the_bar_is_on_for_a_terminal_and_tells_the_step_under_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", _Terminal())
    bar = progress(4, "startup: cold start", refresh_per_second=1.0)
    try:
        assert not bar.disable
        bar.advance_to(1, "startup: cold start, symbols fed")
        (task,) = bar.tasks
        assert task.completed == 1 and task.description == "startup: cold start, symbols fed"
        bar.advance_to(2)  # no description: the last one stays
        assert bar.tasks[0].completed == 2 and bar.tasks[0].description == "startup: cold start, symbols fed"
    finally:
        bar.stop()


def test_without_a_refresh_rate_no_thread_redraws_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The features time their kernels in this thread: a redraw thread would take the GIL inside a timing."""
    monkeypatch.setattr(sys, "stderr", _Terminal())
    bar = progress(12, "features: warm-up", refresh_per_second=None)
    try:
        assert not bar.live.auto_refresh and bar.live._refresh_thread is None
        bar.advance_to(1, "features: ours_batch")
        assert bar.tasks[0].completed == 1
    finally:
        bar.stop()


def test_the_bar_is_drawn_on_stderr_not_into_a_redirected_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    """``qt-bench ... > out.txt`` on a terminal: rich's default console (stdout's) drew the bar into the file's
    console, which is no terminal, so none was seen; the figures' lines go to the file, not through the bar."""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    bar = progress(2, "ws: clients", refresh_per_second=None)
    try:
        assert bar.console.file is terminal and not bar.live._redirect_stdout
        bar.advance_to(1)
        print("a figure")
    finally:
        bar.stop()
    assert sys.stdout.getvalue() == "a figure\n"
    assert "ws: clients" in terminal.getvalue()
