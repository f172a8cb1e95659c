"""The benchmark sender's ticks: one series per symbol, not one series dealt round-robin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantumtrader.bench.sender import prices
from quantumtrader.paper.ticks import read_csv_ticks
from support import shared_ticks


def test_generated_symbols_walk_independently() -> None:
    n_symbols, n_ticks = 50, 50 * 400
    bid, ask, volume = prices(n_ticks, n_symbols, None)
    assert bid.shape == ask.shape == volume.shape == (n_ticks,) and (ask > bid).all()
    series = bid.reshape(-1, n_symbols).T  # [symbol, k]: tick i is symbol i % n
    steps = np.diff(series, axis=1)
    corr = np.corrcoef(steps[0], steps[1])[0, 1]
    assert abs(corr) < 0.2, corr  # one walk dealt round-robin gives neighbours the same moves a tick apart
    assert len({round(float(s[0]), 2) for s in series}) > 10  # and different price levels


def test_real_ticks_give_each_symbol_its_own_stretch_of_the_file() -> None:
    path = shared_ticks()
    n_symbols, n_ticks = 8, 8 * 100
    bid, ask, volume = prices(n_ticks, n_symbols, path)
    quotes = [(t.bid, t.ask, t.volume) for t in read_csv_ticks(path) if t.ask >= t.bid]
    for s in range(n_symbols):
        start = s * len(quotes) // n_symbols
        mine = list(zip(bid[s::n_symbols].tolist(), ask[s::n_symbols].tolist(), volume[s::n_symbols].tolist(), strict=True))
        assert mine == quotes[start : start + 100]


def test_the_receiver_maps_price_updates_back_to_ticks_and_counts_duplicates() -> None:
    from quantumtrader.bench.pipeline import _Receiver
    from quantumtrader.bench.procs import free_port

    receiver = _Receiver(f"tcp://127.0.0.1:{free_port()}", 5)
    try:
        base = 1_700_000_000_000
        arrivals = [(base + 3, 30), (base + 1, 10), (base + 3, 31), (base + 5, 50), (base + 99, 99)]  # tick 2 twice, one stray
        for k, (time_msc, now) in enumerate(arrivals):
            receiver.price_time_msc[k], receiver.price_recv_ns[k] = time_msc, now
        receiver.received = len(arrivals)
        receiver.index_prices(base)
        assert receiver.recv_ns.tolist() == [10, 0, 30, 0, 50]  # the first arrival of each tick counts
        assert receiver.received == 3 and receiver.duplicates == 2
    finally:
        receiver.close()


@pytest.mark.parametrize("pre_encoded", [True, False])
def test_a_paced_sender_sends_valid_ticks_stamped_as_it_saved_them(tmp_path, monkeypatch, capsys, pre_encoded: bool) -> None:
    """The sender at a rate, a PULL here: a real process, and in this process past ``PRE_ENCODED_MAX``
    (each tick encoded as it goes). Each frame is the tick's JSON with the ``sent_ns`` the sender saved
    for it spliced in last: exactly what serializing the dict with the stamp gives, and valid to the daemon."""
    import subprocess
    import sys
    import time

    import orjson
    import zmq

    from quantumtrader import protocol
    from quantumtrader.bench import sender
    from quantumtrader.bench.sender import TERMINAL, symbols

    ctx = zmq.Context.instance()
    pull = ctx.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    out = tmp_path / "sent.npy"
    n_ticks, n_symbols = 40, 3
    argv = [f"tcp://127.0.0.1:{port}", str(n_ticks), str(n_symbols), "2000", str(out)]
    try:
        if pre_encoded:
            proc = subprocess.run([sys.executable, "-m", "quantumtrader.bench.sender", *argv], capture_output=True, timeout=60)
            assert proc.returncode == 0, proc.stderr.decode()
            summary = proc.stdout.splitlines()[-1]
        else:
            monkeypatch.setattr(sender, "PRE_ENCODED_MAX", n_ticks - 1)
            sender.main(argv)
            summary = capsys.readouterr().out.splitlines()[-1].encode()
        frames = []
        deadline = time.monotonic() + 30  # every frame was sent before the sender returned; a starved machine is slow to pass them on
        while len(frames) < n_ticks + 1 and time.monotonic() < deadline:
            if pull.poll(500):
                frames.append(pull.recv())
    finally:
        pull.close(linger=0)
    base_msc = orjson.loads(summary)["base_msc"]
    stamps = np.load(out)
    bid, ask, volume = prices(n_ticks, n_symbols, None)
    names = symbols(n_symbols)
    assert orjson.loads(frames[0])["type"] == "hello" and len(frames) == n_ticks + 1
    for i, raw in enumerate(frames[1:]):
        expected = {"v": 1, "type": "tick", "terminal": TERMINAL, "seq": i + 1, "symbol": names[i % n_symbols], "bid": float(bid[i]), "ask": float(ask[i]),
                    "time_msc": base_msc + i + 1, "volume": float(volume[i]), "sent_ns": int(stamps[i])}
        assert raw == orjson.dumps(expected)
        protocol.check_symbol(names[i % n_symbols])
        assert protocol.decode_event(raw, protocol.now_msc())["sent_ns"] == stamps[i] > 0
    assert (np.diff(stamps) >= 0).all()


def test_a_series_parsed_once_gives_the_senders_the_same_prices_as_the_file(tmp_path: Path) -> None:
    """The bench parses --ticks once per run and hands its senders the rows (--series); each sender parsed
    the whole real file itself before (~2.5 s, eight or more senders a run)."""
    from quantumtrader.bench.sender import file_series

    path = tmp_path / "EURUSD.csv"
    path.write_text("time,bid,ask,volume\n" + "".join(f"2024-01-15T10:{i // 60:02d}:{i % 60:02d}.000Z,1.{1000 + i},1.{1002 + i},{i}\n" for i in range(500)))
    saved = tmp_path / "series.npy"
    np.save(saved, file_series(path))
    for got, want in zip(prices(1000, 7, np.load(saved)), prices(1000, 7, path), strict=True):
        assert np.array_equal(got, want)


def test_the_last_tick_of_the_longest_run_is_not_ahead_of_the_daemons_clock() -> None:
    """With the base an hour back, ticks beyond ~89 million of one run were refused as bad_time (a review, 2026-12-06)."""
    import time

    import orjson

    from quantumtrader.bench.sender import MAX_RUN_TICKS, TERMINAL, base_time_msc
    from quantumtrader.protocol import decode_event

    now = int(time.time() * 1000)
    base = base_time_msc(MAX_RUN_TICKS, now)
    for i in (0, MAX_RUN_TICKS - 1):
        raw = orjson.dumps({"v": 1, "type": "tick", "terminal": TERMINAL, "seq": i + 1, "symbol": "SYM000", "bid": 1.1, "ask": 1.1001, "time_msc": base + i + 1, "volume": 1.0})
        assert decode_event(raw, now)["time_msc"] == base + i + 1
    assert base + MAX_RUN_TICKS <= now - 3_600_000  # in the past by the hour it always was
