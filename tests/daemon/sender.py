"""An EA stand-in process for tests: PUSHes a hello, then N valid ticks round-robin over
S symbols as fast as it can, optionally interleaved with malformed messages of every kind.

Usage: python sender.py ENDPOINT N_TICKS N_SYMBOLS [--garbage-every K]
Prints one JSON line at the end: {"ticks": N, "rejects": {reason: count}} — what it sent,
so the test can compare with what the daemon counted.
"""

from __future__ import annotations

import sys
import time
from collections import Counter

import orjson
import zmq

TERMINAL = "sender-1@Test"


def garbage(now_msc: int) -> list[tuple[bytes, str]]:
    """(frame, the reject reason the contract requires) for every malformed kind we send."""

    def tick(**over: object) -> bytes:
        msg = {"v": 1, "type": "tick", "terminal": TERMINAL, "seq": 0, "symbol": "EURUSD", "bid": 1.1, "ask": 1.1002, "volume": 1, "time_msc": now_msc}
        msg.update(over)
        return orjson.dumps({k: v for k, v in msg.items() if v is not ...})

    megabyte = b'{"v":1,"type":"tick","pad":"' + b"x" * (1024 * 1024) + b'"}'
    huge = b'{"v":1,"type":"tick","pad":"' + b"x" * (5 * 1024 * 1024) + b'"}'  # over the 4 MiB frame limit
    return [
        (b"not json at all", "bad_json"),
        (b"", "bad_json"),
        (b"\xff\xfe\x00\x01garbage\x80", "bad_json"),
        (b'{"v":1,"type":"tick","bid":NaN}', "bad_json"),
        (b'{"v":1,"type":"tick","bid":Infinity}', "bad_json"),
        (b'{"v":1,"type":"tick","bid":1e400}', "bad_json"),
        (b'{"v":1,"type":"tick"', "bad_json"),
        (b"[1,2,3]", "not_object"),
        (b"42", "not_object"),
        (b'"tick"', "not_object"),
        (b"null", "not_object"),
        (tick(v=2), "bad_version"),
        (tick(v=...), "bad_version"),
        (tick(v="1"), "bad_version"),
        (tick(type="teleport"), "unknown_type"),
        (tick(type=...), "unknown_type"),
        (tick(type=7), "unknown_type"),
        (tick(bid=...), "missing_field"),
        (tick(symbol=...), "missing_field"),
        (tick(time_msc=...), "missing_field"),
        (tick(terminal=...), "missing_field"),
        (tick(bid="1.1"), "bad_price"),
        (tick(bid=True), "bad_price"),
        (tick(bid=-1.1), "bad_price"),
        (tick(bid=0), "bad_price"),
        (tick(ask=0.0), "bad_price"),
        (tick(ask=None), "bad_price"),
        (tick(bid=1.2, ask=1.1), "crossed_quote"),
        (tick(symbol="EUR/USD"), "bad_symbol"),
        (tick(symbol=""), "bad_symbol"),
        (tick(symbol="X" * 33), "bad_symbol"),
        (tick(symbol=12), "bad_symbol"),
        (tick(terminal="T" * 1000), "bad_terminal"),
        (tick(terminal=""), "bad_terminal"),
        (tick(volume=-5), "bad_volume"),
        (tick(volume="lots"), "bad_volume"),
        (tick(time_msc=0), "bad_time"),
        (tick(time_msc=now_msc + 3 * 86_400_000), "bad_time"),
        (tick(time_msc=float(now_msc)), "bad_time"),
        (tick(seq=-1), "bad_seq"),
        (tick(seq="3"), "bad_seq"),
        (tick(sent_ns="x"), "bad_type"),
        (megabyte, "missing_field"),  # 1 MB is within the limit (positions can be large): parsed, then refused
        (huge, "too_large"),
        (b'{"s":"' + b"y" * 70_000 + b'"}', "bad_version"),
        (orjson.dumps({"v": 1, "type": "account", "terminal": TERMINAL, "seq": 0, "time_msc": now_msc, "login": 1, "currency": "USD", "balance": "lots", "equity": 1.0, "margin": 0.0, "free_margin": 1.0, "leverage": 100}), "bad_type"),
        (orjson.dumps({"v": 1, "type": "positions", "terminal": TERMINAL, "seq": 0, "time_msc": now_msc, "positions": {"a": 1}}), "bad_type"),
        (orjson.dumps({"v": 1, "type": "hello", "terminal": TERMINAL, "seq": 0, "time_msc": now_msc, "platform": "MT5", "command_endpoint": "ipc:///tmp/x", "symbols": []}), "bad_value"),
        (orjson.dumps({"v": 1, "type": "heartbeat", "terminal": TERMINAL, "seq": 0, "time_msc": now_msc}), "missing_field"),
    ]


def main() -> None:
    endpoint, n_ticks, n_symbols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    garbage_every = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--garbage-every" else 0
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 0)
    push.setsockopt(zmq.LINGER, 30_000)
    push.connect(endpoint)
    symbols = [f"SYM{i:02d}" for i in range(n_symbols)]
    now = int(time.time() * 1000)
    seq = 0
    push.send(orjson.dumps({"v": 1, "type": "hello", "terminal": TERMINAL, "seq": seq, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": symbols, "time_msc": now}))
    bad = garbage(now)
    sent_rejects: Counter[str] = Counter()
    per_symbol = [0] * n_symbols
    g = 0
    for i in range(n_ticks):
        s = i % n_symbols
        k = per_symbol[s]
        per_symbol[s] += 1
        seq += 1
        bid = round(1.0 + (k % 1000) * 1e-5, 5)
        push.send(orjson.dumps({"v": 1, "type": "tick", "terminal": TERMINAL, "seq": seq, "symbol": symbols[s], "bid": bid, "ask": round(bid + 0.0002, 5), "volume": k, "time_msc": now}))
        if garbage_every and i % garbage_every == 0:
            frame, reason = bad[g % len(bad)]
            g += 1
            push.send(frame)
            sent_rejects[reason] += 1
    push.close()  # linger: blocks until everything is handed to the daemon
    ctx.term()
    sys.stdout.write(orjson.dumps({"ticks": n_ticks, "rejects": sent_rejects}).decode() + "\n")


if __name__ == "__main__":
    main()
