"""The control socket over a real ROUTER: status, snapshot (clone), errors for bad requests."""

from __future__ import annotations

from pathlib import Path

import zmq

from quantumtrader.protocol import encode, parse_object
from support import Endpoints, control, daemon_process, start, stop, wait_for


def test_snapshot_carries_quotes_positions_accounts_and_the_feed_seq(tmp_path: Path) -> None:
    eps = Endpoints()
    with daemon_process(eps, tmp_path):
        paper = start(["paper", "--rate", "100", "--heartbeat-s", "0.5"], eps.env(tmp_path / "data"), tmp_path / "paper.log")
        try:
            snap = wait_for(lambda: (s := control(eps.control, "snapshot")) and len(s["quotes"]) == 5 and s["accounts"] and s, 15, "quotes from all 5 symbols")
            assert snap["ok"] is True
            assert snap["feed_seq"] > 0
            quote = snap["quotes"][0]
            assert set(quote) >= {"symbol", "bid", "ask", "spread", "time_msc", "timestamp"}
            (account,) = snap["accounts"]
            assert account["balance"] == 10_000.0 and account["terminal"] == "paper-1@QuantumTrader-Paper"
            # the health the feed would say now (a starting sidecar answers /api/health from it)
            assert snap["health"]["status"] == "healthy" and [t["terminal"] for t in snap["health"]["terminals"]] == ["paper-1@QuantumTrader-Paper"]
            later = control(eps.control, "snapshot")
            assert later["feed_seq"] >= snap["feed_seq"]
            # a filter: only the named symbols; a list too long or not of names is refused, not searched per quote
            # (100,000 names searched as a list for each quote held the loop for seconds)
            first, second = sorted(q["symbol"] for q in snap["quotes"])[:2]
            many = [f"X{i:07d}" for i in range(100_000)] + [first]
            assert sorted(q["symbol"] for q in control(eps.control, "snapshot", symbols=[first, second, "NOSUCH"])["quotes"]) == [first, second]
            for bad in (many, [first, 3], first):
                refused = control(eps.control, "snapshot", symbols=bad)
                assert refused["ok"] is False and refused["status"] == 400 and "at most 4096 symbol names" in refused["error"], refused
            assert control(eps.control, "status")["ok"] is True
        finally:
            stop(paper)


def test_bad_control_requests_get_a_clear_error_and_the_daemon_keeps_serving(tmp_path: Path) -> None:
    eps = Endpoints()
    with daemon_process(eps, tmp_path):
        ctx = zmq.Context.instance()
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(eps.control)
        try:
            for raw, req_id in (
                (b"garbage", ""),
                (b"[1]", ""),
                (encode({"v": 1, "type": "launch_rockets", "id": "r1"}), "r1"),
                (encode({"v": 1, "id": "r2"}), "r2"),  # malformed, but its id is readable: a client matches the refusal
                (encode({"v": 2, "type": "status", "id": "r3"}), "r3"),
                (encode({"v": 1, "type": "trade", "id": "r4", "symbol": "EURUSD", "side": "buy", "lots": 1e308}), "r4"),
                (encode({"v": 1, "type": "close", "id": "r5", "ticket": "\u00b2"}), "r5"),
            ):
                dealer.send(raw)
                assert dealer.poll(3000), f"no reply to {raw[:30]!r}"
                reply = parse_object(dealer.recv())
                assert reply["ok"] is False and reply["error"] and reply["id"] == req_id, (raw, reply)
                assert reply["status"] != 500, (raw, reply)  # a clear refusal, not an internal error
            unknown = control(eps.control, "launch_rockets")
            assert "unknown request type" in unknown["error"] and "status" in unknown["error"]
            assert control(eps.control)["ok"] is True
            # a field refused (r4's lots, r5's ticket: 422) is a reject like any bad input, counted by reason
            # (they were answered but not counted); a refusal on the merits (no such position: 404) is not
            rejects = control(eps.control)["rejects"]
            before = rejects["bad_value"]
            assert before >= 2, rejects
            assert control(eps.control, "close", ticket=123456789)["status"] == 404
            assert control(eps.control, "orders", limit=0)["status"] == 422
            assert control(eps.control)["rejects"]["bad_value"] == before + 1
        finally:
            dealer.close()
