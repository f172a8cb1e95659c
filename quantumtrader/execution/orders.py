"""The order record and its lifecycle.

``pending`` (intent journaled, command queued or in flight) ->
``filled`` | ``rejected`` (the terminal answered) | ``unknown`` (every Lazy
Pirate try timed out, or the daemon restarted mid-command) -> an unknown
order is settled later from the terminal's positions by its ``QT-<id>``
comment: ``filled`` (with ``reconciled`` set) or ``rejected`` (not executed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from quantumtrader.protocol import iso_from_msc

PENDING = "pending"
FILLED = "filled"
REJECTED = "rejected"
UNKNOWN = "unknown"
FINAL = (FILLED, REJECTED)



@dataclass(slots=True)
class Order:
    id: str  # the command id: the idempotency key on the wire and QT-<id> in the terminal
    kind: str  # open | close | modify
    terminal: str
    symbol: str  # as the request named it
    broker_symbol: str  # as the terminal names it
    side: str  # buy | sell ("" for close/modify)
    lots: float
    sl: float
    tp: float
    ticket: int = 0
    status: str = PENDING
    price: float = 0.0
    error_code: int = 0
    error: str = ""
    source: str = ""
    request_id: str = ""  # the control request's id, so a retried request finds its order
    comment: str = ""
    created_msc: int = 0
    updated_msc: int = 0
    attempts: int = 0
    reconciled: bool = False
    # What the request asked, hashed (engine.request_fingerprint): a repeat of its id must ask the same to be answered
    # with this order. "" for orders of a journal before schema 3, which are answered as before.
    fingerprint: str = ""
    snapshots_without: int = field(default=0, compare=False)  # settling progress, not persisted
    # A close: the position's lots when it was asked for, so a partial close whose reply was
    # lost can be told from one that did not happen (MT5 keeps the ticket). Not persisted: after
    # a restart an unknown partial close settles as the snapshots say, as before.
    position_lots: float = field(default=0.0, compare=False)
    # The reply's event_seq (a protocol addition): the terminal's positions events numbered above it were built
    # after the command ran, so only those can tell that it did not (engine: _shows_outcome). None: every one
    # counts, as before (an EA that sends none, no reply, after a restart; without runs: a hello between dispatch
    # and reply).
    after_seq: int | None = field(default=None, compare=False)
    after_run: int | None = field(default=None, compare=False)  # the EA run that numbered after_seq (its reply's run)
    runs_read: int = field(default=0, compare=False)  # its terminal's runs read when the reply came (TerminalSession.runs_read)
    epoch: int = field(default=-1, compare=False)  # its terminal's hello count when the order was dispatched

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        for name in TRANSIENT:
            row.pop(name)
        row["reconciled"] = int(self.reconciled)
        return row

    def to_app(self) -> dict[str, Any]:
        """``trade_update`` data and the order object of control replies (PROTOCOL.md feed table)."""
        return {
            "id": self.id,
            "symbol": self.symbol,
            "type": self.side.upper() if self.kind == "open" else self.kind.upper(),
            "kind": self.kind,
            "lots": self.lots,
            "sl": self.sl,
            "tp": self.tp,
            "status": self.status,
            "ticket": str(self.ticket) if self.ticket else None,
            "price": self.price or None,
            "error": self.error or None,
            "error_code": self.error_code or None,
            "terminal": self.terminal,
            "source": self.source,
            "reconciled": self.reconciled,
            # added: the trade request that made it (a 504 names it; GET /api/orders?request_id= finds the order)
            "request_id": self.request_id or None,
            "created": iso_from_msc(self.created_msc) if self.created_msc else None,
            "updated": iso_from_msc(self.updated_msc) if self.updated_msc else None,
        }


#: Order fields kept in memory only (settling progress), not in the journal's columns: those left out of comparing
#: orders (``compare=False``), declared once there.
TRANSIENT = tuple(f.name for f in fields(Order) if not f.compare)
