"""What the QuantumTrader-Pro app's Dart code does with each field, as checks.

Each helper mirrors one cast in lib/services/*.dart and lib/models/app_state.dart
(``(json['x'] ?? 0.0).toDouble()`` needs a JSON number, ``String ticket =
json['ticket']`` needs a JSON string, ``DateTime.parse`` needs ISO-8601), so a
failure here is a crash or a wrong value in the app.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")


def to_double(value: Any) -> float:
    """``value.toDouble()`` on a num: int or float, never bool, string or null."""
    assert type(value) in (int, float), f"expected a JSON number, got {value!r}"
    return float(value)


def to_double_or_null(value: Any) -> float | None:
    return None if value is None else to_double(value)


def string(value: Any) -> str:
    """Assigned to a Dart ``String``: a JSON string (an int would throw a TypeError)."""
    assert type(value) is str, f"expected a JSON string, got {value!r}"
    return value


def integer(value: Any) -> int:
    """Assigned to a Dart ``int``."""
    assert type(value) is int, f"expected a JSON integer, got {value!r}"
    return value


def date_parse(value: Any) -> datetime:
    """``DateTime.parse``: ISO-8601 with a zone."""
    assert type(value) is str and _ISO_RE.match(value), f"expected ISO-8601, got {value!r}"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def trade_signal_from_json(item: dict[str, Any]) -> None:
    """TradeSignal.fromJson (app_state.dart)."""
    string(item["id"])
    string(item["symbol"])
    assert item.get("trend") in ("bullish", "bearish", "neutral")
    to_double(item["probability"])
    assert item.get("action") in ("entry", "hold")
    date_parse(item["timestamp"])
    assert isinstance(item.get("ml_prediction"), dict)
    # WebSocketService._handleSignalUpdate reads these too:
    assert item["prediction"] in ("BUY", "SELL", "HOLD")
    to_double(item["confidence"])


def open_trade_from_json(item: dict[str, Any]) -> None:
    """OpenTrade.fromJson (app_state.dart) and WebSocketService._handlePositionUpdate."""
    string(item["ticket"])
    string(item["symbol"])
    assert item["type"] in ("BUY", "SELL")
    for name in ("entry_price", "current_price", "volume", "profit_loss", "open_price", "lots", "profit"):
        to_double(item[name])
    date_parse(item["open_time"])
    assert item.get("predicted_window") is None or type(item["predicted_window"]) is int


def account_info_from_json(item: dict[str, Any]) -> None:
    """AccountInfo.fromJson (data_service.dart)."""
    integer(item["login"])
    string(item["name"])
    string(item["server"])
    string(item["currency"])
    for name in ("balance", "equity", "margin", "free_margin", "margin_level", "profit"):
        to_double(item[name])


def market_update(data: dict[str, Any]) -> None:
    """WebSocketService._handlePriceUpdate: ``volume`` goes into an ``int`` field."""
    string(data["symbol"])
    to_double(data["bid"])
    to_double(data["ask"])
    date_parse(data["timestamp"])
    to_double(data["spread"])
    integer(data["volume"])
