"""Terminal error codes -> readable messages: the one table.

MT4 reports trade errors as ``GetLastError()`` codes (0-150, 4000+ for
runtime errors); MT5's trade server answers with ``TRADE_RETCODE_*`` numbers
(10004-10046). The ranges do not overlap, so one table serves both. The EA's
own text is kept next to ours: the terminal may know more than we do.
"""

from __future__ import annotations

from quantumtrader.protocol import CLOSE_ALREADY_RAN, WRONG_ACCOUNT

TERMINAL_ERRORS: dict[int, str] = {
    # MT4 trade errors
    0: "no error",
    1: "no error, but the result is unknown",
    2: "common error",
    3: "invalid trade parameters",
    4: "trade server is busy",
    5: "old version of the client terminal",
    6: "no connection with trade server",
    7: "not enough rights",
    8: "too frequent requests",
    9: "malfunctional trade operation",
    64: "account disabled",
    65: "invalid account",
    128: "trade timeout",
    129: "invalid price",
    130: "invalid stops",
    131: "invalid trade volume",
    132: "market is closed",
    133: "trade is disabled",
    134: "not enough money",
    135: "price changed",
    136: "off quotes",
    137: "broker is busy",
    138: "requote",
    139: "order is locked",
    140: "long positions only allowed",
    141: "too many requests",
    145: "modification denied because order is too close to market",
    146: "trade context is busy",
    147: "expirations are denied by broker",
    148: "the amount of open and pending orders has reached the limit set by the broker",
    149: "hedging is prohibited",
    150: "prohibited by FIFO rules",
    4051: "invalid function parameter value",
    4106: "unknown symbol",
    4107: "invalid price parameter for trade function",
    4108: "invalid ticket",
    4109: "trade is not allowed in the expert properties",
    4110: "longs are not allowed in the expert properties",
    4111: "shorts are not allowed in the expert properties",
    4753: "position not found",  # MT5's runtime error when a ticket selects no position
    # MT5 trade server return codes
    10004: "requote",
    10006: "request rejected",
    10007: "request canceled by trader",
    10008: "order placed",
    10009: "request completed",
    10010: "only part of the request was completed",
    10011: "request processing error",
    10012: "request canceled by timeout",
    10013: "invalid request",
    10014: "invalid volume in the request",
    10015: "invalid price in the request",
    10016: "invalid stops in the request",
    10017: "trade is disabled",
    10018: "market is closed",
    10019: "there is not enough money to complete the request",
    10020: "prices changed",
    10021: "there are no quotes to process the request",
    10022: "invalid order expiration date in the request",
    10023: "order state changed",
    10024: "too frequent requests",
    10025: "no changes in request",
    10026: "autotrading disabled by server",
    10027: "autotrading disabled by client terminal",
    10028: "request locked for processing",
    10029: "order or position frozen",
    10030: "invalid order filling type",
    10031: "no connection with the trade server",
    10032: "operation is allowed only for live accounts",
    10033: "the number of pending orders has reached the limit",
    10034: "the volume of orders and positions for the symbol has reached the limit",
    10035: "incorrect or prohibited order type",
    10036: "position with the specified identifier has already been closed",
    10038: "a close volume exceeds the current position volume",
    10039: "a close order already exists for the specified position",
    10040: "the number of open positions has reached the limit set by the broker",
    10041: "the pending order activation request is rejected, the order is canceled",
    10042: "only long positions are allowed for the symbol",
    10043: "only short positions are allowed for the symbol",
    10044: "only position closing is allowed for the symbol",
    10045: "position closing is allowed only by FIFO rule",
    10046: "opposite positions on a single account are disabled by the broker",
    CLOSE_ALREADY_RAN: "the position is smaller than when the close was asked: an earlier try of this close ran",
    WRONG_ACCOUNT: "the terminal is logged in to another account than the command was meant for: not executed",
}


#: Codes after which the order may still have been executed: MT4 trade timeout,
#: queued, accepted by the dealer; MT5 "order placed" (a market order that
#: waits, as on exchange execution). Such a reply settles the order as
#: unknown, to be reconciled from the terminal's positions, never as rejected.
OUTCOME_UNKNOWN: frozenset[int] = frozenset({128, 142, 143, 10008, CLOSE_ALREADY_RAN})

#: A close's position not found (MT4 invalid ticket, MT5 position not found / already closed): on a *retry*
#: that is most likely the first try's work (an EA that lost its reply cache to a restart), so unknown too.
CLOSE_TARGET_GONE: frozenset[int] = frozenset({4108, 4753, 10036})


def describe(code: int, terminal_text: str = "") -> str:
    """``"not enough money (134)"``, with the terminal's own text when it says something else."""
    ours = TERMINAL_ERRORS.get(code)
    if ours is None:
        return f"{terminal_text or 'terminal error'} ({code})"
    if terminal_text and terminal_text.strip().lower() != ours:
        return f"{ours} ({code}): {terminal_text}"
    return f"{ours} ({code})"
