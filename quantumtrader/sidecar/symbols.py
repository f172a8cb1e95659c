"""Symbol names as the apps know them: the broker's suffix (``sidecar.symbol_suffix``) taken off.

Why: the published app subscribes to a fixed list (EURUSD, GBPUSD, XAUUSD,
BTCUSD, USDJPY) and keeps only what carries one of those names, in its
WebSocket stream and in ``GET /api/signals`` alike. Many brokers name every
symbol with a suffix (``EURUSDm``, ``EURUSD.r``): there the app showed no
price and no signal. With the suffix set, everything the sidecar sends
names the symbol without it and keeps the broker's name in
``broker_symbol`` (an added field), and a name an app sends (a query, a
path, a trade) is mapped back to the broker's before the daemon or the
store sees it (the daemon's own suffix rule, docs/execution.md, knows
short suffixes only); a subscription to either name is to the app's.

One suffix for the sidecar: it is a broker's naming. Where the feed also
carries the plain name (``EURUSD`` from one terminal, ``EURUSDm`` from
another: two symbols), stripping would merge them, so the suffixed one keeps
its name from then on, and the collision is logged once and counted.
"""

from __future__ import annotations

from typing import Any

from quantumtrader.log import get_logger

log = get_logger("quantumtrader.sidecar.symbols")

#: Names remembered at most (a symbol's entry is one dict slot; the daemon keeps at most daemon.max_symbols).
_KNOWN_MAX = 100_000


class AppSymbols:
    """Broker name <-> app name, learned from the names the feed uses."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self._broker: dict[str, str] = {}  # app name -> the broker's, as the feed said it
        self._plain: set[str] = set()  # names the feed used without the suffix
        self.collided: set[str] = set()  # suffixed names kept as they are: the plain name is another symbol

    @property
    def active(self) -> bool:
        return bool(self.suffix)

    def app_name(self, name: str) -> str:
        """What apps call ``name`` (broker's or app's), remembering nothing: for names that come from apps."""
        suffix = self.suffix
        if not suffix or len(name) <= len(suffix) or not name.endswith(suffix):
            return name
        app = name[: -len(suffix)]
        return name if app in self._plain else app

    def to_app(self, name: str) -> str:
        """A name from the feed as the apps know it: ``EURUSDm`` -> ``EURUSD`` (suffix ``m``); remembered both ways."""
        suffix = self.suffix
        if not suffix:
            return name
        app = self.app_name(name)
        if app == name:
            if not name.endswith(suffix) and name not in self._plain and len(self._plain) < _KNOWN_MAX:
                self._plain.add(name)  # a plain name: to_broker must not add the suffix to it
            elif name.endswith(suffix) and len(name) > len(suffix) and name not in self.collided:
                self.collided.add(name)
                log.warning("a symbol comes both with and without sidecar.symbol_suffix; the suffixed one keeps its name", symbol=name)
            return name
        if self._broker.get(app) != name and len(self._broker) < _KNOWN_MAX:  # bounded whatever names come
            self._broker[app] = name
        return app

    def to_broker(self, name: str) -> str:
        """An app's name -> the broker's: the one the feed used for it; for a name not seen on the feed yet,
        ``name`` + suffix (a name that carries the suffix already is taken as it is)."""
        suffix = self.suffix
        if not suffix or name in self._plain:
            return name
        known = self._broker.get(name)
        if known is not None:
            return known
        return name if name.endswith(suffix) else name + suffix

    def data(self, data: dict[str, Any], *, learn: bool = False) -> dict[str, Any]:
        """``data`` with its ``symbol`` as the app knows it, the broker's in ``broker_symbol`` (a copy; ``data`` as it is when nothing changes).

        ``learn``: the data is the live feed's, whose names say what the broker has now (:meth:`to_app`);
        a store row or an order may be older than the broker's current naming and teaches nothing.
        """
        name = data.get("symbol")
        if not self.suffix or type(name) is not str:
            return data
        app = self.to_app(name) if learn else self.app_name(name)
        if app == name:
            return data
        return {**data, "symbol": app, "broker_symbol": name}
