"""Both EAs against the MQL reference (../shared/data/mql/mql-reference.json), where no MetaEditor runs.

Every built-in function an EA calls must exist for its platform (MQL4 for the
.mq4, MQL5 for the .mq5) and be called with an argument count its documented
signature allows; the mql-zmq methods must exist on the class they are
called on. The checker is itself checked: a broken copy of an EA must fail.
"""

from __future__ import annotations

import pytest

import mqlsource
from mqlsource import Call, Source

# mql-zmq (dingmaotu, Include/Zmq/Socket.mqh, SocketOptions.mqh, ZmqMsg.mqh): the
# methods the EAs may call, with (min, max) arguments as the headers declare them.
ZMQ_METHODS = {
    "Socket": {
        "bind": (1, 1), "unbind": (1, 1), "connect": (1, 1), "disconnect": (1, 1),
        "send": (1, 3), "recv": (1, 2),
        "setLinger": (1, 1), "setSendHighWaterMark": (1, 1), "setReceiveHighWaterMark": (1, 1), "setImmediate": (1, 1),
        "setMaxMessageSize": (1, 1), "getLastEndpoint": (1, 1),
    },
    "ZmqMsg": {"getData": (0, 1), "size": (0, 0), "more": (0, 0)},
    "Zmq": {"errorNumber": (0, 0)},  # Zmq.mqh's static utilities, called as Zmq::errorNumber()
}
# Receivers in our source and their mql-zmq class (declared as `Socket g_push(...)`,
# `Socket &socket`, `ZmqMsg message`).
RECEIVERS = {"g_push": "Socket", "g_rep": "Socket", "socket": "Socket", "message": "ZmqMsg", "part": "ZmqMsg", "Zmq": "Zmq"}


@pytest.fixture(scope="module")
def ref() -> dict:
    return mqlsource.reference()


def problems(src: Source, platform: str, ref: dict) -> list[str]:
    """Every call the reference or mql-zmq does not allow, as readable lines."""
    out = []
    other = "mql5" if platform == "mql4" else "mql4"
    for call in mqlsource.builtin_calls(src):
        sigs = ref.get((call.name, platform))
        where = f"{call.file}:{call.line}"
        if not sigs:
            only = f" (it is {other.upper()}-only)" if (call.name, other) in ref else ""
            out.append(f"{where}: {call.name}() is not an {platform.upper()} built-in{only}")
        elif not any(s.min_args <= call.args <= s.max_args for s in sigs):
            allowed = ", ".join(f"{s.min_args}..{s.max_args}" for s in sigs)
            out.append(f"{where}: {call.name}() called with {call.args} arguments; documented: {allowed} ({sigs[0].syntax[:120]})")
    for call in src.calls:
        if call.receiver is None:
            continue
        cls = RECEIVERS.get(call.receiver)
        methods = ZMQ_METHODS.get(cls or "", {})
        if call.name not in methods:
            out.append(f"{call.file}:{call.line}: {call.receiver}.{call.name}() is not a known mql-zmq {cls or '?'} method")
        elif not methods[call.name][0] <= call.args <= methods[call.name][1]:
            out.append(f"{call.file}:{call.line}: {call.receiver}.{call.name}() with {call.args} arguments")
    return out


@pytest.mark.parametrize("platform", ["mql4", "mql5"])
def test_every_builtin_call_exists_with_an_allowed_argument_count(platform: str, ref: dict) -> None:
    src = mqlsource.load(platform)
    calls = mqlsource.builtin_calls(src)
    assert len({c.name for c in calls}) > 40, "the scanner found too few calls: is it still reading the EA?"
    assert problems(src, platform, ref) == []


def test_platform_specific_calls_stay_on_their_platform(ref: dict) -> None:
    mt4 = {c.name for c in mqlsource.builtin_calls(mqlsource.load("mql4"))}
    mt5 = {c.name for c in mqlsource.builtin_calls(mqlsource.load("mql5"))}
    # the MT4 bridge trades with the MQL4 order API, the MT5 bridge with positions and CopyTicks
    assert {"OrderClose", "OrderModify", "MarketInfo", "RefreshRates"} <= mt4
    assert {"CopyTicks", "PositionGetTicket", "PositionSelectByTicket", "TimeTradeServer"} <= mt5
    assert not {n for n in mt4 if (n, "mql4") not in ref and (n, "mql5") in ref}
    assert not {n for n in mt5 if (n, "mql5") not in ref and (n, "mql4") in ref}


def test_only_the_zmq_binding_is_included_from_outside() -> None:
    for platform in ("mql4", "mql5"):
        assert mqlsource.load(platform).external_includes == {"Zmq/Zmq.mqh"}


def _mutated(platform: str, old: str, new: str) -> Source:
    """The EA's source with one edit, scanned like the real one."""
    src = mqlsource.load(platform)
    rel = f"Experts/{mqlsource.EXPERTS[platform].name}"
    text = mqlsource.EXPERTS[platform].read_text(encoding="utf-8")
    assert old in text, f"mutation anchor {old!r} is gone from {rel}: update this test"
    broken = Source(external_includes=src.external_includes)
    for name, body in src.files.items():
        if name != rel:
            mqlsource.scan(body, name, broken)
    mqlsource.scan(text.replace(old, new, 1), rel, broken)
    return broken


@pytest.mark.parametrize(
    ("platform", "old", "new", "expect"),
    [
        # an MQL5-only call in the MT4 EA
        ("mql4", "g_last_server_time = TimeCurrent();", "g_last_server_time = TimeTradeServer();", "MQL5-only"),
        # a wrong argument count
        ("mql5", "OrderSend(request, result)", "OrderSend(request)", "called with 1 arguments"),
        ("mql4", "OrderClose(ticket, lots, price, CloseDeviationPoints, clrNONE)", "OrderClose(ticket, lots)", "called with 2"),
        # a typo in a built-in's name
        ("mql5", "PositionsTotal()", "PositionTotal()", "not an MQL5 built-in"),
        # an mql-zmq method that does not exist
        ("mql5", "QtBridgeStop(reason);", "QtBridgeStop(reason); g_push.close();", "mql-zmq"),
    ],
)
def test_the_checker_catches_real_mistakes(platform: str, old: str, new: str, expect: str, ref: dict) -> None:
    found = problems(_mutated(platform, old, new), platform, ref)
    assert any(expect in line for line in found), found


def test_scanner_counts_arguments_through_nesting() -> None:
    src = Source()
    mqlsource.scan('void f() { x = A(B(1, 2), "a,(b)", C[1, 2], \',\'); D(); E((1), 2); }', "t", src)
    assert [(c.name, c.args) for c in src.calls] == [("A", 4), ("B", 2), ("D", 0), ("E", 2)]
    assert isinstance(src.calls[0], Call) and "f" in src.defined
