"""A saved model state that does not fit the settings is said at warning level, naming why, and kept: a start with
the settings it was saved with restores it.

Found by a review on 2026-12-05: ``QT_SIGNALS__HORIZON_TICKS=50`` logged only "models=False" at info level, the
stop saved the cold models over the learned ones, and going back to the old horizon could not bring them back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from support import Endpoints, control, daemon_process, start, stop, wait_for


def _saved_states(db: Path) -> dict[str, tuple[int, bytes]]:
    """The store's model_state rows: name -> (saved_msc, body)."""
    conn = sqlite3.connect(db)
    try:
        return {name: (saved_msc, body) for name, saved_msc, body in conn.execute("SELECT name, saved_msc, body FROM model_state")}
    finally:
        conn.close()


def _warnings(log: Path, event: str) -> list[dict]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line["level"] == "warning" and line["event"].startswith(event)]


def test_models_saved_with_another_horizon_are_kept_and_come_back_with_it(tmp_path: Path) -> None:
    eps = Endpoints()
    data = tmp_path / "data"
    db = data / "quantumtrader.db"
    log = tmp_path / "daemon.log"  # daemon_process's, appended to by every run
    with daemon_process(eps, tmp_path):
        paper = start(["paper", "--rate", "200"], eps.env(data), tmp_path / "paper.log")
        try:
            wait_for(lambda: control(eps.control, "signals")["counters"].get("signals", 0) > 3, 30, "signals flowing")
        finally:
            stop(paper)
    learned = _saved_states(db)["pipeline"]  # the clean stop's save, horizon_ticks 20 (the default)

    with daemon_process(eps, tmp_path, QT_SIGNALS__HORIZON_TICKS="50"):
        restored = control(eps.control, "signals")["restored"]
    assert restored["features"] and not restored["models"]
    assert restored["unfit"] == {"models": "signals.horizon_ticks 20, now 50"}
    (warning,) = _warnings(log, "saved model state does not fit these settings")
    assert warning["unfit"] == {"models": "signals.horizon_ticks 20, now 50"} and warning["kept_as"] == f"pipeline.kept.{learned[0]}"
    saved = _saved_states(db)
    assert saved[f"pipeline.kept.{learned[0]}"] == learned  # kept as it was: the stop's save went to "pipeline" only
    assert saved["pipeline"][0] > learned[0]
    other = saved["pipeline"]

    with daemon_process(eps, tmp_path):  # the old horizon again
        restored = control(eps.control, "signals")["restored"]
    assert restored["features"] and restored["models"] and restored["unfit"] == {}
    assert restored["saved_msc"] == learned[0] and restored["symbols"]
    assert _warnings(log, "saved model state does not fit these settings")[-1]["resumed_from"] == f"pipeline.kept.{learned[0]}"
    saved = _saved_states(db)
    # the learned state is the current one again; the one saved with horizon 50 is kept in its turn
    assert set(saved) == {"pipeline", f"pipeline.kept.{other[0]}"} and saved[f"pipeline.kept.{other[0]}"] == other
