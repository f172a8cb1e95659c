"""A broker whose symbols carry a suffix (EURUSDm), the app's fixed list (EURUSD, ...) and ``sidecar.symbol_suffix``.

Real processes: the daemon, a paper terminal streaming suffixed names, the
sidecar. The app keeps only what is named after its list, in its WebSocket
stream and in ``GET /api/signals`` (data_service.dart); these are its
requests, checked for the names it filters by.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

import dart
from sidecar_stack import APP_SYMBOLS, Stack, recv_until, running_stack
from support import wait_for

from quantumtrader.sidecar.symbols import AppSymbols

BROKER_SYMBOLS = [f"{s}m" for s in APP_SYMBOLS]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from running_stack(
        tmp_path_factory.mktemp("suffix"),
        QT_SIGNALS__INTERVAL_S="1",
        QT_PAPER__SYMBOLS=",".join(BROKER_SYMBOLS),
        QT_SIDECAR__SYMBOL_SUFFIX="m",
    )


def test_names_both_ways() -> None:
    names = AppSymbols(".r")
    assert names.to_app("EURUSD.r") == "EURUSD" and names.to_app("US30") == "US30" and names.to_app(".r") == ".r"
    assert names.to_broker("EURUSD") == "EURUSD.r"  # learned from the feed
    assert names.to_broker("US30") == "US30"  # seen without the suffix: not given one
    assert names.to_broker("GBPUSD") == "GBPUSD.r" and names.to_broker("GBPUSD.r") == "GBPUSD.r"  # not seen yet
    assert names.app_name("GBPUSD.r") == "GBPUSD" and names.app_name("GBPUSD") == "GBPUSD"  # what an app sends
    assert names.to_broker("XAUUSD") == "XAUUSD.r"  # app_name remembered nothing from it
    data = {"symbol": "EURUSD.r", "bid": 1.1}
    assert names.data(data) == {"symbol": "EURUSD", "bid": 1.1, "broker_symbol": "EURUSD.r"} and data["symbol"] == "EURUSD.r"
    plain = {"symbol": "US30"}
    assert names.data(plain) is plain and AppSymbols("").data(data) is data
    assert AppSymbols("").to_broker("EURUSD") == "EURUSD"
    names.data({"symbol": "USDJPY"})  # a store row's plain name teaches nothing:
    assert names.to_broker("USDJPY") == "USDJPY.r"
    # the plain name from another terminal: two symbols; the suffixed one keeps its name (was: each tick flipped the mapping)
    assert names.to_app("EURUSD") == "EURUSD" and names.to_app("EURUSD.r") == "EURUSD.r" and names.collided == {"EURUSD.r"}
    assert names.to_broker("EURUSD") == "EURUSD" and names.to_broker("EURUSD.r") == "EURUSD.r" and names.app_name("EURUSD.r") == "EURUSD.r"


def test_the_app_session_sees_its_own_names(stack: Stack) -> None:
    with connect(f"{stack.ws_url}?token={stack.tokens['bob']}", open_timeout=5) as ws:
        recv_until(ws, lambda m: m["type"] == "connection", 5, "connection")
        for symbol in APP_SYMBOLS:
            ws.send(json.dumps({"type": "subscribe", "symbol": symbol}))
        recv_until(ws, lambda m: m["type"] == "subscribed" and len(m["data"]["symbols"]) == 5, 5, "five subscriptions")
        ws.send(json.dumps({"type": "subscribe", "symbol": "EURUSDm"}))  # the broker's name: the same subscription
        again = recv_until(ws, lambda m: m["type"] == "subscribed" and m["data"]["symbol"] == "EURUSD", 5, "EURUSDm subscribed as EURUSD")
        assert sorted(again["data"]["symbols"]) == sorted(APP_SYMBOLS), again
        prices: set[str] = set()
        seen: list[dict[str, Any]] = []

        def every_symbol_priced(m: dict[str, Any]) -> bool:
            if m["type"] == "price_update":
                dart.market_update(m["data"])
                assert m["data"]["broker_symbol"] == m["data"]["symbol"] + "m", m
                prices.add(m["data"]["symbol"])
            return prices == set(APP_SYMBOLS)

        recv_until(ws, every_symbol_priced, 20, "prices of all five subscriptions", seen)
        signal = recv_until(ws, lambda m: m["type"] == "signal" and m.get("seq", 0) > 0, 20, "a live signal")
        dart.trade_signal_from_json(signal["data"])
        assert signal["data"]["symbol"] in APP_SYMBOLS and signal["data"]["broker_symbol"] == signal["data"]["symbol"] + "m"
        ws.send(json.dumps({"type": "handshake", "version": "2.0", "platform": "android"}))
        handshake = recv_until(ws, lambda m: m["type"] == "handshake", 5, "handshake")
        assert set(APP_SYMBOLS) <= set(handshake["data"]["symbols"]) and not set(BROKER_SYMBOLS) & set(handshake["data"]["symbols"])
        ws.send(json.dumps({"type": "get_signals", "symbol": signal["data"]["symbol"], "limit": 5, "min_confidence": 0}))
        answer = recv_until(ws, lambda m: m["type"] == "signal" and m.get("seq") is None, 5, "the history of the symbol")
        assert answer["data"]["symbol"] == signal["data"]["symbol"] and answer["data"]["broker_symbol"] == signal["data"]["broker_symbol"]


def test_rest_signals_quotes_and_features_under_the_apps_names(stack: Stack) -> None:
    def stored() -> list[dict[str, Any]] | None:
        body = httpx.get(f"{stack.url}/api/signals", params={"symbol": "EURUSD", "min_confidence": 0}, headers=stack.headers(), timeout=5).json()
        return body["signals"] or None

    eurusd = wait_for(stored, 30, "a stored EURUSDm signal asked for as EURUSD")
    assert all(s["symbol"] == "EURUSD" and s["broker_symbol"] == "EURUSDm" for s in eurusd)
    everything = httpx.get(f"{stack.url}/api/signals", params={"limit": 100, "min_confidence": 0}, headers=stack.headers(), timeout=5).json()["signals"]
    assert not {s["symbol"] for s in everything} & set(BROKER_SYMBOLS)  # what the app's fetchSignals filters by
    market = httpx.get(f"{stack.url}/api/market", headers=stack.headers(), timeout=5).json()
    assert {q["symbol"] for q in market["quotes"]} == set(APP_SYMBOLS)
    features = httpx.get(f"{stack.url}/api/features/GBPUSD", headers=stack.headers(), timeout=5)
    assert features.status_code == 200 and features.json()["symbol"] == "GBPUSD"


def test_a_trade_on_the_apps_name_opens_the_brokers_symbol(stack: Stack) -> None:
    with connect(f"{stack.ws_url}?token={stack.tokens['alice']}", open_timeout=5) as ws:
        recv_until(ws, lambda m: m["type"] == "connection", 5, "connection")
        trade = stack.trade("XAUUSD", "BUY", 0.01)
        assert trade["order"]["symbol"] == "XAUUSD" and trade["order"]["broker_symbol"] == "XAUUSDm"
        update = recv_until(ws, lambda m: m["type"] == "position_update" and m["data"]["ticket"] == trade["ticket"], 10, "position_update")
        dart.open_trade_from_json(update["data"])
        assert update["data"]["symbol"] == "XAUUSD" and update["data"]["broker_symbol"] == "XAUUSDm"
    positions = httpx.get(f"{stack.url}/api/positions", headers=stack.headers(), timeout=5).json()
    mine = [p for p in positions["positions"] if str(p["ticket"]) == trade["ticket"]]
    assert mine and mine[0]["symbol"] == "XAUUSD" and mine[0]["current_price"] > 0, mine  # priced by its terminal's XAUUSDm quote
    assert httpx.post(f"{stack.url}/api/trade/close/{trade['ticket']}", headers=stack.headers(), timeout=20).status_code == 200


def test_the_feed_fallback_finds_a_symbol_asked_for_by_the_brokers_name(tmp_path) -> None:
    """Without a store to read (none yet, or unreadable) the signals come from those seen on the feed, which
    the clone keeps under the apps' names: ``?symbol=EURUSDm`` found nothing there, while the store path
    (and the WebSocket's subscribe) took the broker's name as the app's."""
    import asyncio
    from collections import deque
    from types import SimpleNamespace

    from quantumtrader.config import load_config
    from quantumtrader.sidecar.runtime import Sidecar

    sidecar = Sidecar(load_config(environ={}, overrides={"data_dir": str(tmp_path), "sidecar.symbol_suffix": "m"}))
    signal = sidecar.names.data({"symbol": "EURUSDm", "confidence": 0.7, "time_msc": 1_700_000_000_000}, learn=True)
    sidecar.clone = SimpleNamespace(signals=deque([signal]))  # type: ignore[assignment]  # the store is what this test leaves out
    for asked in ("EURUSD", "EURUSDm"):
        found, source, complete = asyncio.run(sidecar.query_signals(symbol=asked, min_confidence=0.0, limit=10, since_msc=None))
        assert (found, source, complete) == ([signal], "feed", True), asked
    plain = Sidecar(load_config(environ={}, overrides={"data_dir": str(tmp_path)}))  # no suffix: names are taken as they come
    signal = {"symbol": "EURUSDm", "confidence": 0.7, "time_msc": 1_700_000_000_000}
    plain.clone = SimpleNamespace(signals=deque([signal]))  # type: ignore[assignment]
    assert asyncio.run(plain.query_signals(symbol="EURUSDm", min_confidence=0.0, limit=10, since_msc=None))[0] == [signal]
    assert asyncio.run(plain.query_signals(symbol="EURUSD", min_confidence=0.0, limit=10, since_msc=None))[0] == []


def test_signals_published_but_not_yet_stored_are_in_the_answer_once(tmp_path) -> None:
    """A hunt (2026-12-05): the daemon's writer stores a signal up to ~200 ms after publishing it; killed in that
    window, the signals an app had just received were missing from /api/signals (complete: true) until the daemon
    came back. Those seen on the feed that are newer than the store's newest are added, each once, newest first."""
    import asyncio
    from collections import deque
    from types import SimpleNamespace

    from quantumtrader.config import load_config
    from quantumtrader.sidecar.runtime import Sidecar
    from sidecar_stack import seed_signals

    stored = seed_signals(tmp_path, count=4)  # s-test0000..3, a second apart, all EURUSD/GBPUSD
    unstored = {**stored[-1], "id": "s-unstored", "time_msc": stored[-1]["time_msc"] + 500}
    old_feed = {**stored[0], "id": "s-older-than-store", "time_msc": stored[0]["time_msc"] - 60_000}
    sidecar = Sidecar(load_config(environ={}, overrides={"data_dir": str(tmp_path)}))
    sidecar.clone = SimpleNamespace(signals=deque([unstored, stored[-1], stored[-2], old_feed]))  # type: ignore[assignment]  # newest first, as kept
    found, source, complete = asyncio.run(sidecar.query_signals(symbol=None, min_confidence=0.0, limit=3, since_msc=None))
    assert source == "store" and complete is True
    assert [s["id"] for s in found] == ["s-unstored", "s-test0003", "s-test0002"]  # once each, the limit kept
    found, _, _ = asyncio.run(sidecar.query_signals(symbol=None, min_confidence=0.0, limit=10, since_msc=None))
    assert [s["id"] for s in found] == ["s-unstored", "s-test0003", "s-test0002", "s-test0001", "s-test0000"]  # not the feed's older one
