"""A graceful stop (SIGINT, as Ctrl-C and ``qt-daemon stop`` end a run) with orders in flight, over real
processes: what was sent may finish within ``execution.stop_wait_ms``, what was not sent is refused, every
requester gets an answer, and what stayed unanswered settles from the positions at the next start.

Before (an operations review, 2026-12-05) a stop closed the command sockets at once: the order stayed
"pending" in the journal, its requester waited out its own timeout for nothing, and the next start had to
guess from the positions.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import Endpoints, control, daemon_process, start, stop, wait_for
from test_orders_over_sockets import RISK_OFF, Dealer, settled_order, terminal_positions


def _pending(control_endpoint: str) -> list[dict]:
    return [o for o in control(control_endpoint, "orders")["orders"] if o["status"] == "pending"]


@contextlib.contextmanager
def _slow_terminal(eps: Endpoints, tmp_path: Path, env: dict[str, str], reply_delay_ms: int) -> Iterator[Endpoints]:
    """A paper terminal that holds every reply ``reply_delay_ms``, for the whole block: its positions are read
    after the daemon's stop, and a restarted daemon settles from them."""
    paper = start(
        ["paper", "--rate", "100", "--heartbeat-s", "0.3", "--delay-reply-every", "1", "--delay-reply-ms", str(reply_delay_ms)],
        eps.env(tmp_path / "data", **env),
        tmp_path / "paper.log",
    )
    try:
        yield eps
    finally:
        stop(paper)


@contextlib.contextmanager
def _trading(eps: Endpoints, tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], Dealer]]:
    """A daemon process and a DEALER on its control socket, once the terminal's EURUSD is quoted."""
    with daemon_process(eps, tmp_path, **env) as daemon:
        dealer = Dealer(eps.control)
        try:
            wait_for(lambda: any(q["symbol"] == "EURUSD" for q in control(eps.control, "snapshot")["quotes"]), 15, "a EURUSD quote")
            yield daemon, dealer
        finally:
            dealer.close()


def _stopped_with_orders(eps: Endpoints, tmp_path: Path, env: dict[str, str], trades: list[dict], ready: Callable[[list[dict]], object]) -> list[dict]:
    """Send ``trades`` to a daemon process, wait until ``ready(its pending orders)``, stop it with SIGINT (exit 0);
    each trade's reply, in order, all received before the daemon exited."""
    with _trading(eps, tmp_path, env) as (daemon, dealer):
        requests = [dealer.send("trade", symbol="EURUSD", source="test", **trade) for trade in trades]
        wait_for(lambda: ready(_pending(eps.control)), 5, "the orders journaled as pending (and the terminal ready)")
        assert stop(daemon, signal.SIGINT, timeout=15) == 0
        replies = dealer.collect(set(requests), timeout_s=5)  # answered before the daemon exited
    return [replies[request] for request in requests]


@pytest.mark.timeout(120)
def test_a_stop_lets_the_command_in_flight_finish_and_refuses_the_queued_one(tmp_path: Path) -> None:
    eps = Endpoints()
    env = {**RISK_OFF, "QT_EXECUTION__COMMAND_TIMEOUT_MS": "20000", "QT_EXECUTION__STOP_WAIT_MS": "10000"}
    # every reply held 1.5 s: the first order is in flight when the stop comes, the second waits its turn
    with _slow_terminal(eps, tmp_path, env, 1500):
        first, second = _stopped_with_orders(
            eps, tmp_path, env, [{"side": "buy", "lots": 0.02}, {"side": "sell", "lots": 0.03}], lambda pending: len(pending) == 2
        )
        log = (tmp_path / "daemon.log").read_text(encoding="utf-8")
        # the orders' wait comes first, not after the store's final save and drain (the review of the change)
        assert log.index("waiting for the terminal to answer") < log.index("signal store closed")
        filled, refused = first["order"], second["order"]
        assert first["ok"] is True and filled["status"] == "filled"
        assert second["ok"] is False and refused["status"] == "rejected" and "not sent" in refused["error"]
        comments = [p["comment"] for p in terminal_positions(eps.command)]
        assert comments.count("QT-" + filled["id"]) == 1 and "QT-" + refused["id"] not in comments
        with daemon_process(eps, tmp_path, **env):  # the journal says the same after the restart
            journal = {o["id"]: o["status"] for o in control(eps.control, "orders")["orders"]}
            assert journal[filled["id"]] == "filled" and journal[refused["id"]] == "rejected"


@pytest.mark.timeout(120)
def test_an_order_unanswered_by_the_end_of_the_stop_wait_is_left_unknown_then_settles(tmp_path: Path) -> None:
    eps = Endpoints()
    env = {**RISK_OFF, "QT_EXECUTION__COMMAND_TIMEOUT_MS": "20000", "QT_EXECUTION__STOP_WAIT_MS": "1000"}

    def executed(pending: list[dict]) -> bool:  # the terminal executes at once, its reply held
        return len(pending) == 1 and any(p["comment"] == "QT-" + pending[0]["id"] for p in terminal_positions(eps.command))

    # the terminal holds the reply 10 s, beyond the stop's 1 s wait
    with _slow_terminal(eps, tmp_path, env, 10_000):
        (reply,) = _stopped_with_orders(eps, tmp_path, env, [{"side": "buy", "lots": 0.05}], executed)
        order = reply["order"]
        assert reply["ok"] is False and order["status"] == "unknown" and reply["status"] == 504
        assert "stopping" in reply["error"] and "reconciled" in reply["error"]
        with daemon_process(eps, tmp_path, **env):
            settled = settled_order(eps.control, order["id"], 15, "the order to be reconciled from the terminal's positions")
            assert settled["status"] == "filled" and settled["reconciled"] is True
            held = [p for p in terminal_positions(eps.command) if p["comment"] == "QT-" + order["id"]]
            assert len(held) == 1, "the order was sent again after the restart"
