"""Golden wire tests: the EAs' JSON against the daemon's protocol.py, both ways.

Events and replies: the exact strings the builders of
mql/Include/QuantumTrader/QtEvents.mqh produce for sample inputs, written out
here by reading that code (field order, digits per symbol, 2 decimals for
money, lot-step digits for lots), must pass the daemon's validation and
decode to the intended values. (The g++ harness, tests/mql_harness, runs the
compiled builders against the daemon itself.)

Commands: ``mirror_parse`` is QtCommand.mqh's grammar and checks, transcribed
rule by rule (keep the two in step). Everything the daemon can send (its own
builders in protocol.py, encoded by orjson) must be accepted by it with the
same values, and what it accepts must be what the daemon would accept.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantumtrader import protocol

NOW = 1705314650000  # the daemon's clock for these samples (2024-01-15T10:30:50Z)
TERMINAL = "5012345@ICMarkets-Demo"

# -- events: QtEvents.mqh output for sample inputs ------------------------------

HELLO_FIELDS = '"platform":"MT5","command_endpoint":"tcp://127.0.0.1:5560","symbols":["EURUSD","XAUUSD","US30.cash"],"heartbeat_s":5'
GOLDEN_EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    # QtHelloEvent(TERMINAL, 0, QtHelloFields("MT5", "tcp://127.0.0.1:5560", {...}, 3, 5), NOW - 5000)
    "hello": (
        '{"v":1,"type":"hello","terminal":"5012345@ICMarkets-Demo","seq":0,' + HELLO_FIELDS + ',"time_msc":1705314645000}',
        {"seq": 0, "platform": "MT5", "symbols": ["EURUSD", "XAUUSD", "US30.cash"], "heartbeat_s": 5},
    ),
    # QtHelloEvent(TERMINAL, 0, hello_fields + QtSpecsField()): QtSymbolSpec("XAUUSD", 100, 0.01, 1, 0.01, 0.01, 50) and
    # QtSymbolSpec("US30.cash", 1, 0.1, -2, 0.1, 0.1, 1e6): a negative value is sent as 0, "not known" (QtNotBelowZero)
    "hello_specs": (
        '{"v":1,"type":"hello","terminal":"5012345@ICMarkets-Demo","seq":0,' + HELLO_FIELDS + ',"specs":{'
        '"XAUUSD":{"contract_size":100.00000000,"tick_size":0.01000000,"tick_value":1.00000000,"volume_min":0.01000000,"volume_step":0.01000000,"volume_max":50.00000000},'
        '"US30.cash":{"contract_size":1.00000000,"tick_size":0.10000000,"tick_value":0.00000000,"volume_min":0.10000000,"volume_step":0.10000000,"volume_max":1000000.00000000}'
        '},"time_msc":1705314645000}',
        {"specs": {"XAUUSD": {"contract_size": 100.0, "tick_size": 0.01, "tick_value": 1.0, "volume_min": 0.01, "volume_step": 0.01, "volume_max": 50.0},
                   "US30.cash": {"contract_size": 1.0, "tick_size": 0.1, "tick_value": 0.0, "volume_min": 0.1, "volume_step": 0.1, "volume_max": 1e6}}},
    ),
    # QtTickEvent(TERMINAL, 41, "EURUSD", 1.0855, 1.0856, 5, 1705314645123, 125): prices with the symbol's 5 digits
    "tick": (
        '{"v":1,"type":"tick","terminal":"5012345@ICMarkets-Demo","seq":41,"symbol":"EURUSD","bid":1.08550,"ask":1.08560,"time_msc":1705314645123,"volume":125}',
        {"seq": 41, "symbol": "EURUSD", "bid": 1.0855, "ask": 1.0856, "time_msc": 1705314645123, "volume": 125},
    ),
    # a 2-digit symbol: QtTickEvent(TERMINAL, 42, "XAUUSD", 2034.5, 2034.85, 2, 1705314645200, 0)
    "tick_gold": (
        '{"v":1,"type":"tick","terminal":"5012345@ICMarkets-Demo","seq":42,"symbol":"XAUUSD","bid":2034.50,"ask":2034.85,"time_msc":1705314645200,"volume":0}',
        {"bid": 2034.5, "ask": 2034.85, "volume": 0},
    ),
    # QtAccountEvent(TERMINAL, 7, QtAccountFields(5012345, "USD", 10000, 10012.5, 108.6, 9903.9, 100, "Jane \"JT\" Trader", "ICMarkets-Demo", 2), NOW)
    "account": (
        '{"v":1,"type":"account","terminal":"5012345@ICMarkets-Demo","seq":7,"login":5012345,"currency":"USD","balance":10000.00,"equity":10012.50,"margin":108.60,"free_margin":9903.90,"leverage":100,"name":"Jane \\"JT\\" Trader","server":"ICMarkets-Demo","time_msc":1705314650000}',
        {"login": 5012345, "balance": 10000.0, "equity": 10012.5, "free_margin": 9903.9, "name": 'Jane "JT" Trader'},
    ),
    # QtPositionsEvent(TERMINAL, 8, "[" + QtPositionObject(123456, "EURUSD", true, 0.1, 2, 1.08561, 1.083, 1.09, 5, 12.5, 0, -0.7, 20240115, "QT-7K2M9Q4X1B", 1705314600000, 2) + "]", NOW)
    "positions": (
        '{"v":1,"type":"positions","terminal":"5012345@ICMarkets-Demo","seq":8,"positions":[{"ticket":123456,"symbol":"EURUSD","side":"buy","lots":0.10,"open_price":1.08561,"sl":1.08300,"tp":1.09000,"profit":12.50,"swap":0.00,"commission":-0.70,"magic":20240115,"comment":"QT-7K2M9Q4X1B","open_time_msc":1705314600000}],"time_msc":1705314650000}',
        {"positions": [{"ticket": 123456, "symbol": "EURUSD", "side": "buy", "lots": 0.1, "open_price": 1.08561, "sl": 1.083, "tp": 1.09,
                        "profit": 12.5, "swap": 0.0, "commission": -0.7, "magic": 20240115, "comment": "QT-7K2M9Q4X1B", "open_time_msc": 1705314600000}]},
    ),
    "positions_empty": ('{"v":1,"type":"positions","terminal":"5012345@ICMarkets-Demo","seq":9,"positions":[],"time_msc":1705314650000}', {"positions": []}),
    # QtHeartbeatEvent(TERMINAL, 10, 3, hello_fields, NOW): repeats the hello fields (docs/protocol.md)
    "heartbeat": (
        '{"v":1,"type":"heartbeat","terminal":"5012345@ICMarkets-Demo","seq":10,"dropped":3,' + HELLO_FIELDS + ',"time_msc":1705314650000}',
        {"dropped": 3, "command_endpoint": "tcp://127.0.0.1:5560"},
    ),
    # QtByeEvent(TERMINAL, 11, QtReasonText(REASON_CHARTCLOSE), NOW)
    "bye": ('{"v":1,"type":"bye","terminal":"5012345@ICMarkets-Demo","seq":11,"reason":"chart closed","time_msc":1705314650000}', {"reason": "chart closed"}),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_EVENTS))
def test_golden_events_pass_the_daemons_validation(name: str) -> None:
    raw, expected = GOLDEN_EVENTS[name]
    msg = protocol.decode_event(raw.encode(), NOW)
    assert msg["terminal"] == TERMINAL and msg["v"] == 1
    for key, value in expected.items():
        assert msg[key] == value, key
    # the text is exactly what a JSON encoder would read back (no stray characters)
    assert orjson.loads(raw) == msg


def test_json_string_escaping_matches_qtjsonstring() -> None:
    """QtJsonString escapes \" \\ \\n \\r \\t and other control characters as \\u00XX."""
    cases = {'a"b': '"a\\"b"', "a\\b": '"a\\\\b"', "l1\nl2\r\t": '"l1\\nl2\\r\\t"', "\x01x\x1f": '"\\u0001x\\u001f"', "Zürich €": '"Zürich €"'}
    for text, literal in cases.items():
        assert orjson.loads(literal.encode()) == text


GOLDEN_REPLIES: dict[str, tuple[str, dict[str, Any]]] = {
    # QtReplyTrade("7K2M9Q4X1B", 123456, 1.08561, 5, 0.1, 2, NOW)
    "trade": ('{"v":1,"type":"reply","id":"7K2M9Q4X1B","ok":true,"ticket":123456,"price":1.08561,"lots":0.10,"time_msc":1705314650000}',
              {"ok": True, "ticket": 123456, "price": 1.08561, "lots": 0.1}),
    # QtReplyTradeStopsFailed(..., 130, QtMt4ErrorText(130)): MT4 StopsAfterFill, the position exists
    "stops_failed": ('{"v":1,"type":"reply","id":"7K2M9Q4X1B","ok":true,"ticket":123456,"price":1.08561,"lots":0.10,"stops_error":{"code":130,"message":"invalid stops"},"time_msc":1705314650000}',
                     {"ok": True, "ticket": 123456, "stops_error": {"code": 130, "message": "invalid stops"}}),
    "modified": ('{"v":1,"type":"reply","id":"AB12","ok":true,"ticket":123456,"time_msc":1705314650000}', {"ok": True, "ticket": 123456}),
    "ping": ('{"v":1,"type":"reply","id":"P1","ok":true,"time_msc":1705314650000}', {"ok": True}),
    # QtReplySnapshot("S1", account_fields, "[]", NOW)
    "snapshot": ('{"v":1,"type":"reply","id":"S1","ok":true,"account":{"login":5012345,"currency":"USD","balance":10000.00,"equity":10012.50,"margin":108.60,"free_margin":9903.90,"leverage":100,"name":"J","server":"ICMarkets-Demo"},"positions":[],"time_msc":1705314650000}',
                 {"ok": True, "positions": []}),
    # QtReplyError("7K2M9Q4X1B", 134, QtMt4ErrorText(134) + ": EURUSD") -- MT4's own code
    "error_mt4": ('{"v":1,"type":"reply","id":"7K2M9Q4X1B","ok":false,"error":{"code":134,"message":"not enough money: EURUSD"}}',
                  {"ok": False, "error": {"code": 134, "message": "not enough money: EURUSD"}}),
    # QtTradeFailure with retcode 10016 and the server's comment
    "error_mt5": ('{"v":1,"type":"reply","id":"7K2M9Q4X1B","ok":false,"error":{"code":10016,"message":"invalid stops in the request (Invalid stops)"}}',
                  {"ok": False, "error": {"code": 10016, "message": "invalid stops in the request (Invalid stops)"}}),
    # an unreadable command: QtReplyHead("") answers with id "0" and a parser code < 0
    "error_parser": ('{"v":1,"type":"reply","id":"0","ok":false,"error":{"code":-1,"message":"invalid command: a command must be one JSON object"}}',
                     {"ok": False, "id": "0"}),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_REPLIES))
def test_golden_replies_pass_the_daemons_validation(name: str) -> None:
    raw, expected = GOLDEN_REPLIES[name]
    msg = protocol.decode_reply(raw.encode(), NOW)
    for key, value in expected.items():
        assert msg[key] == value, key


# -- commands: QtCommand.mqh, transcribed --------------------------------------

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_STRINGS = ("type", "id", "symbol", "side")
_NUMBERS = ("lots", "sl", "tp")
_INTEGERS = ("deviation_points", "magic", "ticket")


class Refused(Exception):
    def __init__(self, code: int, why: str) -> None:
        super().__init__(why)
        self.code = code


def _ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _string(text: str, pos: int) -> tuple[str, int]:
    if pos >= len(text) or text[pos] != '"':
        raise Refused(-1, "expected a string")
    pos += 1
    out = []
    while pos < len(text):
        c = text[pos]
        if c == '"':
            return "".join(out), pos + 1
        if ord(c) < 0x20:
            raise Refused(-1, "control character inside a string")
        if c == "\\":
            if pos + 1 >= len(text):
                break
            if text[pos + 1] not in _ESCAPES:
                raise Refused(-1, "unsupported escape")  # \u too
            out.append(_ESCAPES[text[pos + 1]])
            pos += 2
        else:
            out.append(c)
            pos += 1
        if len("".join(out)) > 256:
            raise Refused(-1, "string longer than 256 characters")
    raise Refused(-1, "unterminated string")


def _value(text: str, pos: int) -> tuple[str, Any, int]:
    if pos >= len(text):
        raise Refused(-1, "expected a value")
    c = text[pos]
    if c == '"':
        s, pos = _string(text, pos)
        return "string", s, pos
    if c == "-" or c.isdigit():
        m = _NUMBER.match(text, pos)
        if m is None:
            raise Refused(-1, "bad number")
        token = m.group(0)
        is_int = m.group(1) is None and m.group(2) is None
        magnitude = token.lstrip("-")
        if is_int and (len(magnitude) > 19 or (len(magnitude) == 19 and magnitude > "9223372036854775807")):
            raise Refused(-1, "integer out of range")
        return ("int" if is_int else "float"), token, m.end()
    for literal, kind in (("true", "bool"), ("false", "bool"), ("null", "null")):
        if text.startswith(literal, pos):
            return kind, literal, pos + len(literal)
    raise Refused(-1, "nested or unexpected value")


def mirror_parse(text: str) -> dict[str, Any]:
    """QtParseCommand: the command's fields, or Refused(code) with the EA's code."""
    pos = _ws(text, 0)
    if pos >= len(text) or text[pos] != "{":
        raise Refused(-1, "a command must be one JSON object")
    pos = _ws(text, pos + 1)
    cmd: dict[str, Any] = {}
    if pos < len(text) and text[pos] == "}":
        pos += 1
    else:
        while True:
            key, pos = _string(text, pos)
            pos = _ws(text, pos)
            if pos >= len(text) or text[pos] != ":":
                raise Refused(-1, "expected ':'")
            kind, value, pos = _value(text, _ws(text, pos + 1))
            if key in cmd:
                raise Refused(-4, f"field {key} given twice")
            if key == "v":
                if kind != "int":
                    raise Refused(-2, "v must be the integer 1")
                cmd[key] = int(value)
            elif key in _STRINGS:
                if kind != "string":
                    raise Refused({"id": -3, "type": -2}.get(key, -4), f"{key} must be a string")
                cmd[key] = value
            elif key in _NUMBERS:
                if kind not in ("int", "float"):
                    raise Refused(-4, f"{key} must be a number")
                cmd[key] = float(value)
            elif key in _INTEGERS:
                if kind != "int":
                    raise Refused(-4, f"{key} must be an integer")
                cmd[key] = int(value)
            pos = _ws(text, pos)
            if pos < len(text) and text[pos] == ",":
                pos = _ws(text, pos + 1)
                continue
            if pos < len(text) and text[pos] == "}":
                pos += 1
                break
            raise Refused(-1, "expected ',' or '}'")
    if _ws(text, pos) != len(text):
        raise Refused(-1, "unexpected text after the object")
    _validate(cmd)
    return cmd


def _validate(cmd: dict[str, Any]) -> None:
    """QtValidateCommand."""
    if cmd.get("v") != 1:
        raise Refused(-2, "v must be the integer 1")
    if not re.fullmatch(r"[A-Za-z0-9]{1,20}", cmd.get("id", "")):
        raise Refused(-3, "bad id")
    kind = cmd.get("type")
    if kind is None:
        raise Refused(-2, "missing field type")
    need = {
        "open": ("symbol", "side", "lots", "sl", "tp", "deviation_points", "magic"),
        "close": ("ticket", "lots"),
        "modify": ("ticket", "sl", "tp"),
        "snapshot": (),
        "ping": (),
    }
    if kind not in need:
        raise Refused(-2, "unknown command type")
    missing = [f for f in need[kind] if f not in cmd]
    if missing:
        raise Refused(-4, f"missing {missing}")
    if kind == "open":
        ok = (re.fullmatch(r"[A-Za-z0-9._#+-]{1,32}", cmd["symbol"]) and cmd["side"] in ("buy", "sell") and cmd["lots"] > 0
              and cmd["sl"] >= 0 and cmd["tp"] >= 0 and cmd["deviation_points"] >= 0 and cmd["magic"] >= 0)
    elif kind == "close":
        ok = cmd["ticket"] >= 1 and cmd["lots"] >= 0
    elif kind == "modify":
        ok = cmd["ticket"] >= 1 and cmd["sl"] >= 0 and cmd["tp"] >= 0
    else:
        ok = True
    if not ok:
        raise Refused(-4, "invalid field")


ids = st.text(alphabet="ABCDEFGHJKMNPQRSTVWXYZ0123456789abcxyz", min_size=1, max_size=20)
symbols = st.from_regex(r"[A-Za-z0-9._#+-]{1,32}", fullmatch=True)
prices = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
lots = st.floats(min_value=1e-6, max_value=1e4, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(ids, symbols, st.sampled_from(["buy", "sell"]), lots, prices, prices, st.integers(0, 10_000), st.integers(0, 2**31 - 1))
def test_every_open_the_daemon_builds_parses_to_the_same_values(cid, symbol, side, size, sl, tp, dev, magic) -> None:
    raw = protocol.encode(protocol.open_command(cid, symbol, side, size, sl=sl, tp=tp, deviation_points=dev, magic=magic))
    cmd = mirror_parse(raw.decode())
    assert cmd == {"v": 1, "type": "open", "id": cid, "symbol": symbol, "side": side, "lots": size, "sl": sl, "tp": tp,
                   "deviation_points": dev, "magic": magic}


@settings(max_examples=200, deadline=None)
@given(ids, st.integers(1, 2**63 - 1), st.floats(min_value=0.0, max_value=1e4, allow_nan=False), prices, prices)
def test_every_close_modify_snapshot_ping_parses(cid, ticket, size, sl, tp) -> None:
    for built, expected in (
        (protocol.close_command(cid, ticket, size), {"ticket": ticket, "lots": size}),
        (protocol.modify_command(cid, ticket, sl, tp), {"ticket": ticket, "sl": sl, "tp": tp}),
        (protocol.snapshot_command(cid), {}),
        (protocol.ping_command(cid), {}),
    ):
        cmd = mirror_parse(protocol.encode(built).decode())
        assert cmd["id"] == cid and cmd["type"] == built["type"]
        for key, value in expected.items():
            assert cmd[key] == value


REFUSED = [
    ("[]", -1), ("", -1), ('{"v":1,"type":"ping","id":"A"} x', -1), ('{"v":1,"type":"ping","id":"A",}', -1),
    ('{"v":1,"type":"ping","id":"A","x":{"a":1}}', -1), ('{"v":1,"type":"ping","id":"A","x":[1]}', -1),
    ('{"v":1,"type":"ping","id":"\\u0041"}', -1), ('{"v":1,"type":"ping","id":"A","x":01}', -1),
    ('{"v":2,"type":"ping","id":"A"}', -2), ('{"v":"1","type":"ping","id":"A"}', -2), ('{"v":1,"type":"pong","id":"A"}', -2),
    ('{"v":1,"id":"A"}', -2), ('{"v":1,"type":"ping","id":"A-1"}', -3), ('{"v":1,"type":"ping","id":""}', -3),
    ('{"v":1,"type":"ping","id":"ABCDEFGHIJKLMNOPQRSTU"}', -3), ('{"v":1,"type":"ping","id":7}', -3),
    ('{"v":1,"type":"ping","id":"A","id":"B"}', -4), ('{"v":1,"type":"close","id":"A","ticket":1.5,"lots":0}', -4),
    ('{"v":1,"type":"close","id":"A","ticket":0,"lots":0}', -4), ('{"v":1,"type":"close","id":"A","ticket":1}', -4),
    ('{"v":1,"type":"open","id":"A","symbol":"EURUSD","side":"long","lots":0.1,"sl":0,"tp":0,"deviation_points":10,"magic":0}', -4),
    ('{"v":1,"type":"open","id":"A","symbol":"EURUSD","side":"buy","lots":0,"sl":0,"tp":0,"deviation_points":10,"magic":0}', -4),
    ('{"v":1,"type":"open","id":"A","symbol":"EUR USD","side":"buy","lots":0.1,"sl":0,"tp":0,"deviation_points":10,"magic":0}', -4),
    ('{"v":1,"type":"modify","id":"A","ticket":5,"sl":-1,"tp":0}', -4),
    ('{"v":1,"type":"close","id":"A","ticket":9223372036854775808,"lots":0}', -1),
]


@pytest.mark.parametrize(("text", "code"), REFUSED)
def test_malformed_commands_are_refused_with_the_eas_code(text: str, code: int) -> None:
    with pytest.raises(Refused) as refused:
        mirror_parse(text)
    assert refused.value.code == code


@pytest.mark.parametrize(("text", "code"), REFUSED)
def test_what_the_ea_refuses_the_daemon_never_sends(text: str, code: int) -> None:
    """The EA is at least as strict as the daemon's own decode_command, except
    where it is deliberately stricter (\\u escapes, integers beyond a long)."""
    try:
        protocol.decode_command(text.encode())
    except protocol.ProtocolError:
        return
    assert "\\u" in text or "9223372036854775808" in text or '"id":"A","id"' in text or ',"x":' in text


def test_unknown_members_are_ignored_and_order_is_free() -> None:
    cmd = mirror_parse(' { "id" : "Z9", "extra": null, "flag": true, "type":"close", "lots":0.5e0, "ticket":42, "v":1 } ')
    assert cmd == {"id": "Z9", "type": "close", "lots": 0.5, "ticket": 42, "v": 1}
