"""The daemon's view of the market and the accounts: latest quotes, positions, accounts.

Positions arrive as complete snapshots per terminal; :func:`diff_positions`
turns consecutive snapshots into ``opened``/``updated``/``closed`` changes, which
is what the feed publishes (apps want changes, terminals send state).
"""

from __future__ import annotations

from typing import Any

#: Fields whose change makes a position "updated" on the feed.
_POSITION_FIELDS = ("lots", "sl", "tp", "profit", "swap", "commission", "open_price")


def diff_positions(old: dict[int, dict[str, Any]], new: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Changes from ``old`` (by ticket) to the ``new`` list, in a stable order."""
    changes: list[tuple[str, dict[str, Any]]] = []
    seen: set[int] = set()
    for pos in new:
        ticket = pos["ticket"]
        seen.add(ticket)
        before = old.get(ticket)
        if before is None:
            changes.append(("opened", pos))
        elif any(before[name] != pos[name] for name in _POSITION_FIELDS):
            changes.append(("updated", pos))
    for ticket, pos in old.items():
        if ticket not in seen:
            changes.append(("closed", pos))
    return changes


class MarketState:
    """Latest tick per symbol, positions and account per terminal."""

    def __init__(self) -> None:
        self.quotes: dict[str, dict[str, Any]] = {}
        self.received_ns: dict[str, int] = {}  # monotonic receive time of each symbol's latest quote
        self.positions: dict[str, dict[int, dict[str, Any]]] = {}
        self.accounts: dict[str, dict[str, Any]] = {}

    def update_positions(self, terminal: str, positions: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        old = self.positions.get(terminal, {})
        changes = diff_positions(old, positions)
        self.positions[terminal] = {pos["ticket"]: pos for pos in positions}
        return changes

    def current_price(self, symbol: str, side: str) -> float | None:
        """The price a position would close at: bid for a buy, ask for a sell."""
        quote = self.quotes.get(symbol)
        if quote is None:
            return None
        return quote["bid"] if side == "buy" else quote["ask"]

    def all_positions(self) -> list[tuple[str, dict[str, Any]]]:
        return [(terminal, pos) for terminal, book in self.positions.items() for pos in book.values()]
