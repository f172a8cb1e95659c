"""qt-bench on bad options and files: exit 2 with the option named, before anything starts; never a traceback.

Each case was found by a review: a missing --ticks file failed in the sender and the receiver waited a
minute; --symbols 0 divided by zero; a negative rate made numpy fail; too few ticks for the features'
baselines was an IndexError; ws --duration 0 failed after the whole run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("QT_")}, "COLUMNS": "500"}  # typer's error box: one line
    return subprocess.run([sys.executable, "-m", "quantumtrader.bench.cli", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["pipeline", "--ticks", "no-such-ticks.csv"], "no such file"),
        (["pipeline", "--symbols", "0"], "--symbols"),
        (["pipeline", "--rate", "-1"], "--rate"),
        (["pipeline", "--duration", "0"], "--duration"),
        (["pipeline", "--throughput-ticks", "10"], "--throughput-ticks"),
        (["startup", "--symbols", "0"], "--symbols"),
        (["features", "--n-ticks", "100"], "--n-ticks"),
        (["ws", "--duration", "0"], "--duration"),
        (["ws", "--symbols", "21"], "--symbols"),
        (["trade", "--orders", "0"], "--orders"),
    ],
)
def test_a_bad_option_is_refused_before_anything_starts(args: list[str], says: str) -> None:
    done = _bench(*args)
    assert done.returncode == 2, (done.returncode, done.stdout[-1000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr and says in done.stderr, done.stderr[-2000:]


def test_a_tick_file_too_short_for_the_baselines_is_named(tmp_path: Path) -> None:
    short = tmp_path / "short.csv"
    short.write_text("time,bid,ask\n" + "".join(f"2024-01-15T10:30:{i % 60:02d}.{i // 60:03d}Z,1.1,1.1002\n" for i in range(1000)))
    done = _bench("features", "--ticks", str(short), "--n-ticks", "20000")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "has 1,000 ticks" in done.stderr and "--ticks" in done.stderr, done.stderr[-2000:]


def test_ws_with_a_tick_file_too_short_for_its_symbols_is_refused_before_anything_starts(tmp_path: Path) -> None:
    short = tmp_path / "EURUSD.csv"
    short.write_text("time,bid,ask\n" + "".join(f"2024-01-15T10:30:{i:02d}.000Z,1.1,1.1002\n" for i in range(5)))
    done = _bench("ws", "--ticks", str(short), "--symbols", "20", "--clients", "1")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "5 good rows; 20 symbols" in done.stderr and "--ticks" in done.stderr, done.stderr[-2000:]


def test_a_tick_file_with_a_header_only_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("time,bid,ask\n")
    done = _bench("pipeline", "--ticks", str(empty))
    assert done.returncode == 2 and "Traceback" not in done.stderr and "no tick in it" in done.stderr, done.stderr[-2000:]


def test_trade_ticks_must_be_the_symbol_the_orders_trade(tmp_path: Path) -> None:
    gbp = tmp_path / "GBPUSD.csv"
    gbp.write_text("time,bid,ask\n2024-01-15T10:30:00.000Z,1.27,1.2702\n")
    done = _bench("trade", "--ticks", str(gbp))
    assert done.returncode == 2 and "Traceback" not in done.stderr and "the orders trade EURUSD" in done.stderr, done.stderr[-2000:]


def test_ws_symbols_bound_is_the_paper_terminals_list() -> None:
    from quantumtrader.bench.ws import SYMBOLS

    assert len(SYMBOLS) == 20  # the --symbols maximum in quantumtrader/bench/cli.py


def test_a_result_file_that_cannot_be_written_after_a_run_is_named_with_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A disk that fills during a run: the write fails after it (the figures are on the console by then), and
    was a traceback. The scenario is replaced by one whose write fails, so nothing is measured here."""
    import errno

    from quantumtrader.bench import cli, journal
    from quantumtrader.outputs import UnwrittenOutput

    target = tmp_path / "journal.json"

    def full_disk(**options: object) -> None:
        raise UnwrittenOutput(target, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(journal, "run_journal_bench", full_disk)
    monkeypatch.setattr(sys, "argv", ["qt-bench", "journal", "--json", str(target)])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 1
    assert f"error: cannot write {target}: No space left on device" in capsys.readouterr().err


def _bench_without(modules: tuple[str, ...], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """qt-bench in a Python where ``modules`` cannot be imported, as in an install without the bench extra."""
    hide = "".join(f"sys.modules[{name!r}] = None; " for name in modules)
    code = f"import sys; {hide}sys.argv[0] = 'qt-bench'; from quantumtrader.bench.cli import main; main()"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("QT_")}, "COLUMNS": "500"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=timeout)


def _refused(done: subprocess.CompletedProcess[str], *says: str) -> None:
    """Exit 2 naming the problem, no traceback, and nothing run (no scenario's first line on stdout)."""
    assert done.returncode == 2 and "Traceback" not in done.stderr, (done.returncode, done.stdout[-1000:], done.stderr[-2000:])
    assert all(s in done.stderr for s in says), done.stderr[-2000:]
    assert "floor (before)" not in done.stdout and "features:" not in done.stdout, done.stdout[-1000:]


def _truncated_gzip(path: Path, rows: int = 30_000) -> Path:
    import gzip

    body = "time,bid,ask\n" + "".join(f"{1_705_314_600_000 + i},1.1,1.1002\n" for i in range(rows))
    whole = gzip.compress(body.encode())
    path.write_bytes(whole[: len(whole) // 2])  # a download cut short: its first rows read, then EOFError
    return path


@pytest.mark.parametrize("scenario", [["features", "--n-ticks", "20000"], ["pipeline"]])
def test_a_truncated_gzip_tick_file_is_a_usage_error_before_anything_starts(tmp_path: Path, scenario: list[str]) -> None:
    """It was a traceback: features read it while loading, pipeline once the floor's relay ran (a review, 2026-12-06)."""
    cut = _truncated_gzip(tmp_path / "EURUSD.csv.gz")
    _refused(_bench(*scenario, "--ticks", str(cut)), "--ticks", "cannot read it (EOFError")


def test_a_tick_file_of_crossed_quotes_only_is_refused_by_the_pipeline(tmp_path: Path) -> None:
    """The senders leave crossed quotes out: such a file gave them nothing to send."""
    crossed = tmp_path / "EURUSD.csv"
    crossed.write_text("time,bid,ask\n" + "".join(f"{1_705_314_600_000 + i},1.1003,1.1001\n" for i in range(100)))
    _refused(_bench("pipeline", "--ticks", str(crossed)), "--ticks", "no row with ask >= bid")


def test_ws_refuses_a_json_name_its_markdown_report_would_overwrite_or_cannot_take(tmp_path: Path) -> None:
    """``--json NAME.md`` had the report replace the JSON; a report path that cannot be written failed after the run."""
    quick = ("--clients", "1", "--duration", "2", "--symbols", "1", "--tick-rate", "50")
    _refused(_bench("ws", *quick, "--json", str(tmp_path / "ws.md")), "--json", "markdown report")
    (tmp_path / "taken.md").mkdir()
    _refused(_bench("ws", *quick, "--json", str(tmp_path / "taken.json")), "--json", "taken.md is a directory")


def test_plot_without_matplotlib_is_refused_before_the_run() -> None:
    done = _bench_without(("matplotlib",), "pipeline", "--duration", "1", "--rate", "1000", "--symbols", "2", "--throughput-ticks", "1000", "--sustain", "0.5", "--plot", "out.png")
    _refused(done, "--plot", "needs matplotlib")


def test_features_without_a_baseline_library_names_it_before_timing() -> None:
    done = _bench_without(("talipp",), "features", "--n-ticks", "20000")
    _refused(done, "talipp")
    assert "talib," not in done.stderr and "pandas" not in done.stderr  # only what is missing


def test_a_run_too_long_to_hold_is_refused() -> None:
    """--rate 1000000 --duration 86400 asked numpy for 644 GiB after the floor's relay had started (a traceback)."""
    _refused(_bench("pipeline", "--rate", "1000000", "--duration", "86400"), "--rate x --duration", "86,402,000,000 ticks")


def test_daemon_settings_that_refuse_the_benchs_own_symbols_are_refused_up_front() -> None:
    """--set daemon.max_symbols=2 --symbols 5 waited out a minute per phase and reported the loss with no reason."""
    done = _bench("pipeline", "--set", "daemon.max_symbols=2", "--symbols", "5", "--duration", "1", "--rate", "1000", "--throughput-ticks", "1000", "--sustain", "0.5")
    _refused(done, "daemon.max_symbols=2 is below --symbols 5")
