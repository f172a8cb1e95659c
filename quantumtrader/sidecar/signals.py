"""Where ``GET /api/signals`` and the WebSocket's ``get_signals`` read signals from.

History lives in the daemon's SQLite store (only the daemon writes; the
sidecar opens it read-only, off the event loop). Until the store has a file,
or when it cannot be opened, the signals seen on the feed since the sidecar
started (a bounded in-memory list) answer instead, so the endpoint works in
every state and says which source it used.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from quantumtrader.protocol import iso_from_msc


class SignalReader(Protocol):
    """The store's read side, as the sidecar uses it (newest first)."""

    def signals(self, *, symbol: str | None, min_confidence: float, limit: int, since_msc: int | None) -> tuple[list[dict[str, Any]], bool]:
        """(signals, complete): complete is False when the query's time budget ran out first or unreadable rows were
        left out; the store's signals are a ``SignalPage``, which says which (``timed_out``, ``unreadable``)."""


def app_signal(sig: dict[str, Any]) -> dict[str, Any]:
    """A signal as the apps read it: ``id`` a string, ``timestamp`` ISO-8601 (TradeSignal.fromJson)."""
    out = dict(sig)
    out["id"] = str(sig.get("id", ""))
    if not isinstance(out.get("timestamp"), str) and isinstance(sig.get("time_msc"), int):
        out["timestamp"] = iso_from_msc(sig["time_msc"])
    return out


def filter_recent(
    recent: Iterable[dict[str, Any]], *, symbol: str | None, min_confidence: float, limit: int, since_msc: int | None
) -> list[dict[str, Any]]:
    """The in-memory fallback: ``recent`` is newest first already."""
    out: list[dict[str, Any]] = []
    for sig in recent:
        if symbol is not None and sig.get("symbol") != symbol:
            continue
        confidence = sig.get("confidence")
        if not isinstance(confidence, (int, float)) or confidence < min_confidence:
            continue
        if since_msc is not None and not (isinstance(sig.get("time_msc"), int) and sig["time_msc"] >= since_msc):
            continue
        out.append(sig)
        if len(out) >= limit:
            break
    return out
