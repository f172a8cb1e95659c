"""The daemon's view of the market and the accounts: latest quotes, positions, accounts.

Positions arrive as complete snapshots per terminal; :func:`diff_positions`
turns consecutive snapshots into ``opened``/``updated``/``closed`` changes, which
is what the feed publishes (apps want changes, terminals send state).
"""

from __future__ import annotations

from typing import Any

from quantumtrader.protocol import close_price

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
    """Latest tick per symbol, per (terminal, symbol), positions and account per terminal.

    Several terminals may stream the same symbol (two brokers on one VPS).
    Their prices differ, so interleaving them would make one series of
    nonsense for the indicators: the first terminal to stream a symbol *owns*
    it (its ticks drive ``quotes``, features and signals) until it goes stale
    or says bye; every terminal's latest quote is still kept in
    ``terminal_quotes`` for the risk checks of orders routed to it.
    """

    def __init__(self) -> None:
        self.quotes: dict[str, dict[str, Any]] = {}
        self.received_ns: dict[str, int] = {}  # monotonic receive time of each symbol's latest quote
        self.terminal_quotes: dict[tuple[str, str], dict[str, Any]] = {}
        self.terminal_received_ns: dict[tuple[str, str], int] = {}
        self.owner: dict[str, str] = {}  # symbol -> the terminal whose ticks drive it
        self.positions: dict[str, dict[int, dict[str, Any]]] = {}
        # terminal -> ticket -> position: what it listed before the daemon restarted, the baseline of its first list
        # (not in ``positions``: the book is not known until the terminal itself lists it)
        self.restored_positions: dict[str, dict[int, dict[str, Any]]] = {}
        self.accounts: dict[str, dict[str, Any]] = {}

    def quote(self, tick: dict[str, Any], received_ns: int) -> bool:
        """Record a validated tick as its terminal's latest quote, and as the symbol's if that terminal owns it.

        Returns whether it does (the first terminal to stream a symbol takes it).
        """
        symbol = tick["symbol"]
        terminal = tick["terminal"]
        key = (terminal, symbol)
        self.terminal_quotes[key] = tick
        self.terminal_received_ns[key] = received_ns
        if self.owner.setdefault(symbol, terminal) != terminal:
            return False
        self.quotes[symbol] = tick
        self.received_ns[symbol] = received_ns
        return True

    def hand_over_silent(self, now_ns: int, silent_ns: int, connected: set[str]) -> list[tuple[str, str, str]]:
        """Symbols whose owner sent no tick of them for ``silent_ns`` while another, ``connected``, terminal did: handed to it.

        An EA whose terminal lost its broker connection keeps sending heartbeats, so it never goes stale: it kept
        its symbols while another terminal streamed them, and features, signals and auto-trading stopped with
        health saying nothing (a hunt, 2026-12-05). Returns (symbol, silent owner, the terminal now ticking it)."""
        since = now_ns - silent_ns
        active: dict[str, str] = {}  # symbol -> a terminal other than its owner that ticked it lately
        for (terminal, symbol), received in self.terminal_received_ns.items():
            owner = self.owner.get(symbol)
            if owner is not None and terminal != owner and received > since and terminal in connected:
                active[symbol] = terminal
        handed = []
        for symbol, other in active.items():
            owner = self.owner[symbol]
            if self.terminal_received_ns.get((owner, symbol), 0) <= since:
                self.owner[symbol] = other
                handed.append((symbol, owner, other))
        return handed

    def release(self, terminal: str) -> list[str]:
        """A terminal went stale or left: its symbols go to whichever terminal ticks next."""
        freed = [symbol for symbol, owner in self.owner.items() if owner == terminal]
        for symbol in freed:
            del self.owner[symbol]
        return freed

    def forget(self, terminal: str) -> None:
        """Everything kept of ``terminal`` (its session is forgotten to make room): quotes, book and account."""
        self.release(terminal)
        for key in [key for key in self.terminal_quotes if key[0] == terminal]:
            del self.terminal_quotes[key]
            self.terminal_received_ns.pop(key, None)
        self.positions.pop(terminal, None)
        self.restored_positions.pop(terminal, None)
        self.accounts.pop(terminal, None)

    def restore_positions(self, books: dict[str, list[dict[str, Any]]]) -> None:
        """The positions each terminal listed before the daemon restarted (checked by the caller), the baseline of its
        first list after the start."""
        self.restored_positions = {terminal: {pos["ticket"]: pos for pos in book} for terminal, book in books.items()}

    def update_positions(self, terminal: str, positions: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        """The changes since the terminal's previous list; its first list after a restart is compared with the one it
        sent before (a restart re-announced every open position "opened" and never told of those closed meanwhile)."""
        old = self.positions.get(terminal)
        if old is None:
            old = self.restored_positions.pop(terminal, {})
        changes = diff_positions(old, positions)
        self.positions[terminal] = {pos["ticket"]: pos for pos in positions}
        return changes

    def current_price(self, terminal: str, symbol: str, side: str) -> float | None:
        """The price a position of ``terminal`` would close at: bid for a buy, ask for a sell."""
        return close_price(side == "buy", self.terminal_quotes.get((terminal, symbol)), self.quotes.get(symbol))

    def all_positions(self) -> list[tuple[str, dict[str, Any]]]:
        return [(terminal, pos) for terminal, book in self.positions.items() for pos in book.values()]
