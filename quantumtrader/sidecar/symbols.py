"""Symbol names as the apps know them: the broker's suffix (``sidecar.symbol_suffix``) taken off.

Why: the published app subscribes to a fixed list (EURUSD, GBPUSD, XAUUSD,
BTCUSD, USDJPY) and keeps only what carries one of those names, in its
WebSocket stream and in ``GET /api/signals`` alike. Many brokers name every
symbol with a suffix (``EURUSDm``, ``EURUSD.r``): there the app showed no
price and no signal. With the suffix set, everything the sidecar sends
names the symbol without it and keeps the broker's name in
``broker_symbol`` (an added field), and a name an app sends (a subscription,
a query, a path) is mapped back to the broker's before the daemon or the
store sees it. Trades need nothing here: the daemon maps ``EURUSD`` to a
terminal's unique ``EURUSD``+suffix itself (docs/execution.md).

One suffix for the sidecar: it is a broker's naming, so terminals of two
brokers that name the same symbol differently (``EURUSD`` and ``EURUSDm``)
would both become ``EURUSD``; leave it empty then (docs/sidecar.md).
"""

from __future__ import annotations

from typing import Any

#: Names remembered at most (a symbol's entry is one dict slot; the daemon keeps at most daemon.max_symbols).
_KNOWN_MAX = 100_000


class AppSymbols:
    """Broker name <-> app name, learned from the names the feed uses."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self._broker: dict[str, str] = {}  # app name -> the broker's, as the feed said it

    @property
    def active(self) -> bool:
        return bool(self.suffix)

    def to_app(self, name: str) -> str:
        """``EURUSDm`` -> ``EURUSD`` (suffix ``m``); a name without the suffix (or only the suffix) as it is."""
        suffix = self.suffix
        app = name[: -len(suffix)] if suffix and len(name) > len(suffix) and name.endswith(suffix) else name
        if suffix and self._broker.get(app) != name and len(self._broker) < _KNOWN_MAX:  # bounded whatever names come
            self._broker[app] = name  # unsuffixed names too: to_broker must not add the suffix to those
        return app

    def to_broker(self, name: str) -> str:
        """An app's name -> the broker's: the one the feed used for it; for a name not seen on the feed yet,
        ``name`` + suffix (a name that carries the suffix already is taken as it is)."""
        suffix = self.suffix
        if not suffix:
            return name
        known = self._broker.get(name)
        if known is not None:
            return known
        return name if name.endswith(suffix) else name + suffix

    def data(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` with its ``symbol`` as the app knows it, the broker's in ``broker_symbol`` (a copy; ``data`` as it is when nothing changes)."""
        name = data.get("symbol")
        if not self.suffix or type(name) is not str:
            return data
        app = self.to_app(name)
        if app == name:
            return data
        return {**data, "symbol": app, "broker_symbol": name}
