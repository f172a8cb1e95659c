"""protocol.py: validation exactly as PROTOCOL.md says, and the shapes the apps read."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantumtrader import protocol as p

NOW = 1_705_314_645_000


def tick(**over: object) -> dict:
    msg = {"v": 1, "type": "tick", "terminal": "5012345@ICMarkets-Demo", "seq": 41, "symbol": "EURUSD", "bid": 1.0855, "ask": 1.0856, "time_msc": NOW, "volume": 125}
    msg.update(over)
    return msg


def reason(msg: object) -> str:
    raw = msg if isinstance(msg, bytes) else orjson.dumps(msg)
    with pytest.raises(p.ProtocolError) as info:
        p.decode_event(raw, NOW)
    assert info.value.reason in p.REJECT_REASONS
    return info.value.reason


def test_protocol_md_examples_are_accepted() -> None:
    examples = [
        b'{"v":1,"type":"hello","terminal":"5012345@ICMarkets-Demo","seq":0,"platform":"MT5","command_endpoint":"tcp://127.0.0.1:5560","symbols":["EURUSD","GBPUSD"],"time_msc":1705314645000}',
        b'{"v":1,"type":"tick","terminal":"5012345@ICMarkets-Demo","seq":41,"symbol":"EURUSD","bid":1.0855,"ask":1.0856,"time_msc":1705314645123,"volume":125}',
        b'{"v":1,"type":"account","terminal":"5012345@ICMarkets-Demo","seq":7,"login":5012345,"currency":"USD","balance":10000.0,"equity":10012.5,"margin":108.6,"free_margin":9903.9,"leverage":100,"time_msc":1705314645000}',
        b'{"v":1,"type":"positions","terminal":"t","seq":8,"positions":[{"ticket":123456,"symbol":"EURUSD","side":"buy","lots":0.1,"open_price":1.08561,"sl":1.0830,"tp":1.0900,"profit":12.5,"swap":0.0,"commission":-0.7,"magic":20240115,"comment":"QT-7K2M9Q4X1B","open_time_msc":1705314645000}],"time_msc":1705314645000}',
        b'{"v":1,"type":"heartbeat","terminal":"t","seq":9,"dropped":0,"time_msc":1705314645000}',
        b'{"v":1,"type":"bye","terminal":"t","seq":10,"reason":"chart closed","time_msc":1705314645000}',
    ]
    kinds = [p.decode_event(raw, NOW)["type"] for raw in examples]
    assert kinds == ["hello", "tick", "account", "positions", "heartbeat", "bye"]


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (b"{nope", "bad_json"),
        (b"[]", "not_object"),
        (tick(v=2), "bad_version"),
        (tick(type="order"), "unknown_type"),
        ({k: v for k, v in tick().items() if k != "ask"}, "missing_field"),
        ({k: v for k, v in tick().items() if k != "volume"}, "missing_field"),
        (tick(bid=0.0), "bad_price"),
        (tick(bid=-1.0855), "bad_price"),
        (tick(bid=1e-300, ask=1e-300), "bad_price"),  # a return next to it would square to inf in the features
        (tick(bid=1.0855, ask=2e12), "bad_price"),
        (tick(volume=2e15), "bad_volume"),
        (tick(sent_ns=-1), "bad_value"),
        (tick(sent_ns=2**62), "bad_value"),
        (tick(ask="1.0856"), "bad_price"),
        (tick(ask=False), "bad_price"),
        (tick(ask=1.0854), "crossed_quote"),
        (tick(symbol="EURUSD!"), "bad_symbol"),
        (tick(symbol="A" * 33), "bad_symbol"),
        (tick(volume=-0.1), "bad_volume"),
        (tick(time_msc=946_684_799_999), "bad_time"),
        (tick(time_msc=NOW + 86_400_001), "bad_time"),
        (tick(time_msc=1.5e12), "bad_time"),
        (tick(seq=-1), "bad_seq"),
        (tick(seq=1.0), "bad_seq"),
        (tick(seq=2**63), "bad_seq"),  # past MQL's long (orjson reads up to 2^64 - 1)
        (tick(terminal="x" * 65), "bad_terminal"),
        (tick(high=-1), "bad_price"),
    ],
)
def test_each_tick_rule_rejects_with_its_reason(msg: object, expected: str) -> None:
    assert reason(msg) == expected


def test_tick_rules_accept_their_boundaries() -> None:
    for ok in (
        tick(ask=1.0855),  # locked quote: ask == bid is allowed
        tick(volume=0),
        tick(time_msc=946_684_800_000),
        tick(time_msc=NOW + 86_400_000),
        tick(symbol="A" * 32),
        tick(symbol="EURUSD.r#+-_"[:11].replace("_", "")),
        tick(open=1.08, high=1.09, low=1.07, sent_ns=123),
        tick(seq=2**63 - 1),  # MQL's long, the EA's counter
    ):
        assert p.decode_event(orjson.dumps(ok), NOW)["type"] == "tick"


def test_the_counts_and_ids_an_ea_sends_as_an_mql_long_stop_at_2_63_minus_1() -> None:
    """orjson reads integers up to 2^64 - 1; the EAs' seq, dropped, login and leverage are MQL longs."""
    account = {"v": 1, "type": "account", "terminal": "t", "seq": 1, "time_msc": NOW, "login": 1, "currency": "USD", "balance": 1.0, "equity": 1.0, "margin": 0.0, "free_margin": 1.0, "leverage": 100}
    heartbeat = {"v": 1, "type": "heartbeat", "terminal": "t", "seq": 1, "time_msc": NOW, "dropped": 0}
    for msg, name in ((account, "login"), (account, "leverage"), (heartbeat, "dropped")):
        assert p.decode_event(orjson.dumps({**msg, name: 2**63 - 1}), NOW)[name] == 2**63 - 1
        assert reason({**msg, name: 2**63}) == "bad_value", name


def test_too_large_frames_are_rejected_unparsed() -> None:
    with pytest.raises(p.ProtocolError) as info:
        p.decode_event(b" " * 101, NOW, max_bytes=100)
    assert info.value.reason == "too_large"
    p.check_symbol("EURUSD")  # known: the everyday tick's fast path would take it, were it not too large
    padded = orjson.dumps(tick(bid=1.0855, ask=1.0856, volume=1.0, pad="x" * 200))
    assert p.decode_event(padded, NOW)["type"] == "tick"
    with pytest.raises(p.ProtocolError) as info:
        p.decode_event(padded, NOW, max_bytes=len(padded) - 1)
    assert info.value.reason == "too_large"


@settings(deadline=None)  # a GC pause or the host's steal is no finding
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_ever_raise_protocol_error(raw: bytes) -> None:
    try:
        p.decode_event(raw, NOW)
    except p.ProtocolError as exc:
        assert exc.reason in p.REJECT_REASONS


@settings(deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8), lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12))
def test_arbitrary_json_values_in_a_tick_never_escape_as_other_errors(value: object) -> None:
    for field in ("bid", "ask", "symbol", "volume", "time_msc", "seq", "terminal", "type", "v"):
        try:
            p.decode_event(orjson.dumps(tick(**{field: value})), NOW)
        except p.ProtocolError:
            pass


def test_commands_round_trip_through_the_ea_side_decoder() -> None:
    cid = p.new_command_id()
    assert 1 <= len(cid) <= 20 and cid.isalnum()
    built = [
        p.open_command(cid, "EURUSD", "buy", 0.1, sl=1.083, tp=1.09, deviation_points=10, magic=20240115),
        p.close_command(cid, 123456, 0),
        p.modify_command(cid, 123456, 1.084, 1.091),
        p.snapshot_command(cid),
        p.ping_command(cid),
    ]
    for cmd in built:
        assert p.decode_command(p.encode(cmd)) == cmd
    assert built[0] == {"v": 1, "type": "open", "id": cid, "symbol": "EURUSD", "side": "buy", "lots": 0.1, "sl": 1.083, "tp": 1.09, "deviation_points": 10, "magic": 20240115}


@pytest.mark.parametrize("bad_id", ["", "a" * 21, "QT-1", "id with space", "ÄÖÜ"])
def test_command_ids_outside_the_contract_are_refused(bad_id: str) -> None:
    with pytest.raises(p.ProtocolError) as info:
        p.ping_command(bad_id)
    assert info.value.reason == "bad_id"


def test_replies_decode_success_and_failure() -> None:
    ok = p.decode_reply(b'{"v":1,"type":"reply","id":"7K2M9Q4X1B","ok":true,"ticket":123456,"price":1.08561,"lots":0.1,"time_msc":1705314645000}')
    assert ok["ticket"] == 123456
    err = p.decode_reply(b'{"v":1,"type":"reply","id":"7K2M9Q4X1B","ok":false,"error":{"code":134,"message":"not enough money"}}')
    assert err["error"] == {"code": 134, "message": "not enough money"}
    with pytest.raises(p.ProtocolError):
        p.decode_reply(b'{"v":1,"type":"reply","id":"7K2M9Q4X1B","ok":"yes"}')
    with pytest.raises(p.ProtocolError):
        p.decode_reply(b'{"v":1,"type":"reply","id":"7K2M9Q4X1B","ok":false}')


def test_feed_envelope_is_what_the_websocket_sends() -> None:
    msg = p.decode_event(orjson.dumps(tick(time_msc=1705314645123)), NOW)
    topic, body = p.feed_frames("price", p.price_update(msg), msg["time_msc"], 9, "EURUSD")
    envelope = orjson.loads(body)
    assert topic == b"price.EURUSD"
    assert envelope["type"] == "price_update" and envelope["seq"] == 9
    assert envelope["v"] == 1  # PROTOCOL.md: every daemon message carries it (the feed went without, 2026-12-04)
    assert envelope["timestamp"] == "2024-01-15T10:30:45.123Z"
    data = envelope["data"]
    assert set(data) == {"symbol", "bid", "ask", "spread", "volume", "time_msc", "timestamp", "terminal", "owner"}  # owner: added (docs/protocol.md)
    assert isinstance(data["volume"], int)
    assert math.isclose(data["spread"], 0.0001)


def test_app_position_uses_string_ticket_upper_case_type_and_both_spellings() -> None:
    pos = {"ticket": 123456, "symbol": "EURUSD", "side": "sell", "lots": 0.1, "open_price": 1.08561, "sl": 0.0, "tp": 0.0, "profit": 4.1, "swap": 0.0, "commission": -0.7, "magic": 1, "comment": "QT-X", "open_time_msc": NOW}
    out = p.app_position(pos, "t", 1.0852, "opened")
    assert out["ticket"] == "123456" and out["type"] == "SELL"
    assert out["lots"] == out["volume"] == 0.1
    assert out["open_price"] == out["entry_price"] == 1.08561
    assert out["profit"] == out["profit_loss"] == 4.1
    assert out["open_time"] == "2024-01-15T10:30:45.000Z" and out["status"] == "opened"


_field_values = (
    st.none()
    | st.booleans()
    | st.floats()  # NaN and infinities included: orjson never yields them, the fast path must still refuse them
    | st.integers(-(2**63), 2**64 - 1)
    | st.integers(-3, 3)
    | st.sampled_from([0.0, -0.0, 1.0855, 1.0856, 1e-300, p.MIN_PRICE, p.MAX_PRICE, math.nextafter(p.MIN_PRICE, 0.0), math.nextafter(p.MAX_PRICE, math.inf), p.MAX_VOLUME, math.nextafter(p.MAX_VOLUME, math.inf), 2**62 - 1, 2**62, 2**63 - 1, 2**63, p.MIN_TIME_MSC - 1, p.MIN_TIME_MSC, NOW + p.DEFAULT_MAX_SKEW_MS, NOW + p.DEFAULT_MAX_SKEW_MS + 1, "t" * 64, "t" * 65, ""])
    | st.text(max_size=70)
    | st.lists(st.integers(), max_size=2)
)


_TICK_FIELDS = ["v", "type", "terminal", "seq", "time_msc", "symbol", "bid", "ask", "volume", "sent_ns", "open", "high", "low", "extra"]


@given(st.sampled_from(_TICK_FIELDS), _field_values, st.sampled_from(_TICK_FIELDS), _field_values, st.booleans())
@settings(max_examples=3000, deadline=None)
def test_the_tick_fast_path_accepts_nothing_the_full_checks_refuse(field: str, value: object, field2: str, value2: object, two: bool) -> None:
    """decode_event's hot path (_plain_tick) is a shortcut, never a loosening of the contract.

    A valid everyday tick with one (or two) fields replaced by anything:
    whenever the fast path says yes, the full checks must say yes too.
    """
    p.check_symbol("EURUSD")  # known, as on the hot path
    msg = tick(bid=1.0855, ask=1.0856, volume=1.0, sent_ns=5)
    msg[field] = value
    if two:
        msg[field2] = value2
    if p._plain_tick(msg, NOW, p.DEFAULT_MAX_SKEW_MS):
        assert type(msg["v"]) is int and msg["v"] == p.PROTOCOL_VERSION and msg["type"] == "tick"  # what parse_object and the dispatch check
        p._envelope(msg, NOW, p.DEFAULT_MAX_SKEW_MS)  # raises if the fast path was wrong
        p._check_tick(msg, NOW, p.DEFAULT_MAX_SKEW_MS)


def test_the_tick_fast_path_takes_the_everyday_tick() -> None:
    """Otherwise it would be dead code and the hot path would quietly be the slow one."""
    p.check_symbol("EURUSD")
    assert p._plain_tick(tick(bid=1.0855, ask=1.0856, volume=3.0, sent_ns=12), NOW, p.DEFAULT_MAX_SKEW_MS)
    assert p._plain_tick(tick(bid=1.0855, ask=1.0856, volume=125), NOW, p.DEFAULT_MAX_SKEW_MS)
    assert not p._plain_tick(tick(bid=1.0855, ask=1.0854), NOW, p.DEFAULT_MAX_SKEW_MS)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("terminal", "t" * 65), ("terminal", ""), ("terminal", 5), ("seq", -1), ("seq", True), ("seq", 1.0),
        ("time_msc", p.MIN_TIME_MSC - 1), ("time_msc", NOW + p.DEFAULT_MAX_SKEW_MS + 1), ("time_msc", float(NOW)),
        ("bid", 0.0), ("bid", -0.0), ("bid", math.nan), ("bid", math.inf), ("ask", 1.0854), ("ask", math.inf), ("ask", math.nan),
        ("volume", -1), ("volume", -1.0), ("volume", math.nan), ("volume", math.inf), ("volume", True),
        ("v", 2), ("v", True), ("v", 1.0), ("v", "1"), ("type", "heartbeat"), ("type", None),
        ("sent_ns", None), ("sent_ns", 1.5), ("open", 1.0), ("high", 1.0), ("low", 1.0), ("symbol", "EUR USD"), ("symbol", 7),
    ],
)
def test_the_tick_fast_path_refuses_each_boundary(field: str, value: object) -> None:
    """Each field just outside what the contract allows (or merely unusual) leaves the fast path."""
    p.check_symbol("EURUSD")
    msg = tick(bid=1.0855, ask=1.0856, volume=1.0, sent_ns=5)
    msg[field] = value
    assert not p._plain_tick(msg, NOW, p.DEFAULT_MAX_SKEW_MS)



def test_a_positions_list_holding_a_ticket_twice_is_refused() -> None:
    """Found by the daemon audit: the feed said "opened" twice and the second silently replaced the first."""
    pos = {"ticket": 7, "symbol": "EURUSD", "side": "buy", "lots": 0.1, "open_price": 1.1, "sl": 0.0, "tp": 0.0, "profit": 0.0,
           "swap": 0.0, "commission": 0.0, "magic": 0, "comment": "", "open_time_msc": NOW}  # fmt: skip
    msg = {"v": 1, "type": "positions", "terminal": "t", "seq": 1, "time_msc": NOW}
    assert len(p.decode_event(orjson.dumps({**msg, "positions": [pos, {**pos, "ticket": 8}]}), NOW)["positions"]) == 2
    assert reason({**msg, "positions": [pos, {**pos, "lots": 0.2}]}) == "bad_value"


def test_hello_specs_are_checked_field_by_field() -> None:
    hello = {"v": 1, "type": "hello", "terminal": "1@X", "seq": 0, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:5560", "symbols": ["XAUUSD"], "time_msc": NOW}
    spec = {"contract_size": 100.0, "tick_size": 0.01, "tick_value": 1.0, "volume_min": 0.01, "volume_step": 0.01, "volume_max": 50.0}
    assert p.decode_event(orjson.dumps({**hello, "specs": {"XAUUSD": spec}}), NOW)["specs"] == {"XAUUSD": spec}
    assert p.decode_event(orjson.dumps({**hello, "specs": {"XAUUSD": {**spec, "tick_value": 0}}}), NOW)  # 0: the terminal does not know
    beat = {**hello, "type": "heartbeat", "dropped": 0, "specs": {"XAUUSD": spec}}
    assert p.decode_event(orjson.dumps(beat), NOW)["specs"]["XAUUSD"] == spec
    for specs, reason in (
        ([], "bad_type"),
        ({"XAUUSD": 1}, "bad_type"),
        ({"XAU USD": spec}, "bad_symbol"),
        ({"XAUUSD": {k: v for k, v in spec.items() if k != "tick_size"}}, "missing_field"),
        ({"XAUUSD": {**spec, "tick_value": -1.0}}, "bad_value"),
        ({"XAUUSD": {**spec, "volume_step": True}}, "bad_value"),
        ({"XAUUSD": {**spec, "volume_max": "50"}}, "bad_value"),
        ({"XAUUSD": {**spec, "volume_step": 1e-320}}, "bad_value"),  # overflowed the lot rounding
        ({"XAUUSD": {**spec, "tick_size": 1e300}}, "bad_value"),  # overflowed the loss per lot
    ):
        with pytest.raises(p.ProtocolError) as refused:
            p.decode_event(orjson.dumps({**hello, "specs": specs}), NOW)
        assert refused.value.reason == reason, specs
        # a heartbeat with specs alone (no hello fields) refreshes a terminal's: checked the same
        bare = {"v": 1, "type": "heartbeat", "terminal": "1@X", "seq": 3, "dropped": 0, "time_msc": NOW, "specs": specs}
        with pytest.raises(p.ProtocolError):
            p.decode_event(orjson.dumps(bare), NOW)


def test_a_price_update_carries_the_ticks_sent_ns_when_it_has_one() -> None:
    tick = {"v": 1, "type": "tick", "terminal": "paper-1@X", "seq": 1, "symbol": "EURUSD", "bid": 1.1, "ask": 1.1002, "time_msc": NOW, "volume": 1.0}
    assert "sent_ns" not in p.price_update(p.decode_event(orjson.dumps(tick), NOW))  # a real EA's
    stamped = p.price_update(p.decode_event(orjson.dumps({**tick, "sent_ns": 123_456_789}), NOW))
    assert stamped["sent_ns"] == 123_456_789 and stamped["bid"] == 1.1


def test_a_replys_error_codes_are_an_mql_int_and_its_ticket_at_most_a_ulong() -> None:
    """Both go into the order journal's signed 64-bit columns; an MQL error code is an int."""
    base = {"v": 1, "type": "reply", "id": "ABC123", "ok": False, "error": {"code": 2**31 - 1, "message": "x"}}
    assert p.decode_reply(orjson.dumps(base))["error"]["code"] == 2**31 - 1
    assert p.decode_reply(orjson.dumps({**base, "error": {"code": -(2**31), "message": "x"}}))["error"]["code"] == -(2**31)
    for code in (2**31, -(2**31) - 1, 2**63):
        with pytest.raises(p.ProtocolError):
            p.decode_reply(orjson.dumps({**base, "error": {"code": code, "message": "x"}}))
    filled = {"v": 1, "type": "reply", "id": "ABC123", "ok": True, "ticket": 2**64 - 1, "stops_error": {"code": 2**40, "message": "x"}}
    with pytest.raises(p.ProtocolError):
        p.decode_reply(orjson.dumps(filled))
    assert p.decode_reply(orjson.dumps({**filled, "stops_error": {"code": 130, "message": "x"}}))["ticket"] == 2**64 - 1


def test_a_replys_event_seq_is_a_seq_on_success_and_failure_and_absent_from_an_eas_reply_without_events() -> None:
    base = {"v": 1, "type": "reply", "id": "ABC123", "ok": False, "error": {"code": 128, "message": "trade timeout"}}
    for reply in (base, p.reply_ok("ABC123", ticket=1)):
        assert p.decode_reply(orjson.dumps(p.with_event_seq(reply, 0)))["event_seq"] == 0
        assert "event_seq" not in p.with_event_seq(reply, -1)  # no event built yet: nothing to tell
        for bad in (-1, 2**63, 1.5, "7", None, True):
            with pytest.raises(p.ProtocolError) as refused:
                p.decode_reply(orjson.dumps({**reply, "event_seq": bad}))
            assert refused.value.reason in ("bad_seq", "bad_type"), (bad, refused.value.reason)


def test_a_run_names_the_numbering_of_hello_positions_and_a_replys_event_seq() -> None:
    """(run, seq) orders a terminal's events across re-initialisations (docs/protocol.md, "run")."""
    reply = p.with_event_seq(p.reply_ok("ABC123", ticket=1), 4, 1705314600000)
    assert p.decode_reply(orjson.dumps(reply))["run"] == 1705314600000 and reply["event_seq"] == 4
    assert "run" not in p.with_event_seq(p.reply_ok("ABC123"), 4) and p.with_event_seq(p.reply_ok("ABC123"), -1, 7) == p.reply_ok("ABC123")
    hello = p.event("hello", "T1", 0, NOW, platform="MT5", command_endpoint="tcp://127.0.0.1:5560", symbols=["EURUSD"], run=NOW)
    positions = p.event("positions", "T1", 1, NOW, positions=[], run=NOW)
    heartbeat = p.event("heartbeat", "T1", 2, NOW, dropped=0, platform="MT5", command_endpoint="tcp://127.0.0.1:5560", symbols=["EURUSD"], run=NOW)
    for msg in (hello, positions, heartbeat):
        assert p.decode_event(orjson.dumps(msg), NOW)["run"] == NOW
        for bad in (-1, 2**63, 1.5, "7", None, True):
            with pytest.raises(p.ProtocolError) as refused:
                p.decode_event(orjson.dumps({**msg, "run": bad}), NOW)
            assert refused.value.reason == "bad_seq", (msg["type"], bad, refused.value.reason)
    for bad in (-1, 2**63, "7", None):
        with pytest.raises(p.ProtocolError):
            p.decode_reply(orjson.dumps({**reply, "run": bad}))


def test_a_terminals_amounts_prices_and_lots_are_bounded_not_only_finite() -> None:
    """A fuzz (2026-12-05): a fill of 1e308 lots was recorded (every later trade of the symbol refused for the
    exposure), an equity of -1e308 over a margin of 5e-324 gave the app nulls."""
    fill = {"v": 1, "type": "reply", "id": "7K2M9Q4X1B", "ok": True, "ticket": 1, "price": 1.1, "lots": 0.1, "time_msc": NOW}
    assert p.decode_reply(orjson.dumps(fill))["lots"] == 0.1
    for name, value in (("lots", 1e308), ("lots", p.MAX_LOTS * 2), ("price", 1e308)):
        with pytest.raises(p.ProtocolError, match=name) as refused:
            p.decode_reply(orjson.dumps({**fill, name: value}))
        assert refused.value.reason == "bad_value"
    account = {"v": 1, "type": "account", "terminal": "t@b", "seq": 1, "time_msc": NOW, "login": 1, "currency": "USD", "balance": 1e4, "equity": 1e4, "margin": 100.0, "free_margin": 9900.0, "leverage": 100}
    assert p.decode_event(orjson.dumps(account), NOW)["equity"] == 1e4
    for name in ("balance", "equity", "margin", "free_margin"):
        for value in (1e308, -1e308, p.MAX_MONEY * 1.5):
            assert reason({**account, name: value}) == "bad_value", (name, value)
    position = {"ticket": 5, "symbol": "EURUSD", "side": "buy", "lots": 0.1, "open_price": 1.1, "sl": 0.0, "tp": 0.0, "profit": 1.0, "swap": 0.0, "commission": 0.0, "magic": 0, "comment": "", "open_time_msc": NOW}
    positions = {"v": 1, "type": "positions", "terminal": "t@b", "seq": 1, "time_msc": NOW}
    assert p.decode_event(orjson.dumps({**positions, "positions": [position]}), NOW)["positions"][0]["open_price"] == 1.1
    for name, value, why in (("open_price", -1.0, "bad_price"), ("open_price", 1e13, "bad_price"), ("lots", 1e308, "bad_value"), ("sl", 1e308, "bad_value"), ("profit", -1e308, "bad_value"), ("commission", 1e16, "bad_value")):
        assert reason({**positions, "positions": [{**position, name: value}]}) == why, (name, value)
    # the largest amounts taken still give the app numbers
    app = p.app_account({**account, "terminal": "t@b", "equity": -p.MAX_MONEY, "balance": p.MAX_MONEY, "margin": 5e-324})
    assert app["margin_level"] == 0.0 and app["profit"] == -2 * p.MAX_MONEY
    assert math.isfinite(p.app_account({**account, "terminal": "t@b", "margin": 1e-300})["margin_level"])
