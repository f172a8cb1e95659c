"""The paper terminal's events over a real PUSH socket, as the daemon receives them: the account follows equity,
and a position its stop closed is reported before the next burst of replayed ticks.

Found by a review (2026-12-04): with a position open, the account went out only after fills and with each
heartbeat (5 s), so the daily loss and sizing read equity up to 5 s old (the EAs send it on change, at most
every second); in a fast replay a stop-out reached the daemon up to 2,000 ticks later.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import orjson
import zmq

from quantumtrader.config import Config
from quantumtrader.paper.terminal import PaperOptions, PaperTerminal
from support import free_port

T0 = 1_700_000_000_000


def _events(data: Path, options: dict, held: tuple[float, float], sl: float = 0.0, **paper: object) -> tuple[PaperTerminal, list[dict]]:
    """A paper terminal holding a 1-lot EURUSD buy opened at quote ``held`` (stop ``sl``), run on its own thread until
    its source ends or ``max_ticks``; every event it sent, in order. ``data``: its data directory (it keeps its book
    there; the default is the user's)."""
    pull = zmq.Context.instance().socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    cfg = Config()
    cfg = dataclasses.replace(cfg, data_dir=str(data), paper=dataclasses.replace(cfg.paper, command_endpoint=f"tcp://127.0.0.1:{free_port()}", **paper))
    terminal = PaperTerminal(cfg, PaperOptions(events_endpoint=f"tcp://127.0.0.1:{port}", exit_at_end=True, **options))
    terminal.book.on_quote("EURUSD", *held, T0)
    terminal.book.open("EURUSD", "buy", 1.0, sl, 0, 1, "QT-HELD", T0)
    thread = threading.Thread(target=terminal.run, daemon=True)
    thread.start()
    events: list[dict] = []
    try:
        while thread.is_alive() or pull.poll(300):
            if pull.poll(200):
                events.append(orjson.loads(pull.recv()))
    finally:
        thread.join(10)
        pull.close()
    return terminal, events


def test_the_account_follows_equity_while_a_position_is_open(tmp_path: Path) -> None:
    terminal, events = _events(tmp_path, {"max_ticks": 700}, (1.08500, 1.08508), ticks_per_s=200.0, symbols=("EURUSD",), heartbeat_s=30.0)
    accounts = [e for e in events if e["type"] == "account"]
    assert sum(e["type"] == "tick" for e in events) == 700  # 3.5 s at 200/s, no heartbeat meanwhile (30 s)
    assert len(accounts) >= 3, [a["equity"] for a in accounts]  # the first, then about one a second as equity moved
    assert len({a["equity"] for a in accounts}) == len(accounts), accounts  # each sent because it changed


def test_a_position_its_stop_closed_is_reported_before_the_next_burst_of_replayed_ticks(tmp_path: Path) -> None:
    path = tmp_path / "EURUSD.csv"
    drop = [0.0020 if i >= 10 else 0.0 for i in range(3000)]  # tick 11 on: 20 pips down, through the stop
    path.write_text("time,bid,ask\n" + "".join(f"{T0 + 100 * i},{1.10000 - d:.5f},{1.10002 - d:.5f}\n" for i, d in enumerate(drop)))
    _, events = _events(tmp_path, {"tick_files": (path,), "keep_times": True}, (1.10000, 1.10002), sl=1.0990, speed=0.0)
    ticks = 0
    for event in events:
        ticks += event["type"] == "tick"
        if event["type"] == "positions" and not event["positions"]:
            break
    assert 11 <= ticks <= 20, f"the stop (tick 11) was reported after tick {ticks}"
