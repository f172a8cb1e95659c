"""``since`` on /api/signals: ms or ISO-8601, a time without an offset read as UTC whatever the server's zone."""

from __future__ import annotations

import sys
import time
from collections import Counter
from types import SimpleNamespace

import pytest

from quantumtrader.sidecar.errors import ApiError
from quantumtrader.sidecar.routes import _since_msc


def _since(raw: str) -> int | None:
    request = SimpleNamespace(query_params={"since": raw})
    return _since_msc(request, SimpleNamespace(counters=Counter()))  # type: ignore[arg-type]


@pytest.mark.skipif(sys.platform == "win32", reason="time.tzset is Unix's")
def test_a_time_without_offset_is_utc_even_on_a_server_in_another_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        expected = 1_705_314_645_123  # 2024-01-15T10:30:45.123Z
        assert _since("2024-01-15T10:30:45.123") == expected
        assert _since("2024-01-15T10:30:45.123Z") == expected
        assert _since("2024-01-15T05:30:45.123-05:00") == expected
        assert _since(str(expected)) == expected
    finally:
        monkeypatch.undo()  # TZ as it was (set or not), then the C library told so
        time.tzset()


def test_out_of_range_or_unreadable_is_a_422() -> None:
    for raw in ("²", "-5", "--1", "99999999999999999999", "0001-01-01", "1969-12-31T23:59:59Z", "yesterday"):
        with pytest.raises(ApiError) as caught:
            _since(raw)
        assert caught.value.status == 422, raw
    assert _since("") is None
