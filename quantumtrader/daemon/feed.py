"""The feed publisher: daemon PUB -> sidecar, apps, tools.

Every message gets the next feed ``seq``. PUB drops per subscriber when that
subscriber's queue is full (ZeroMQ's rule, so a slow subscriber never stalls
the loop); subscribers see such a loss as a gap in ``seq`` and heal from a
control ``snapshot`` (the guide's clone pattern).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import orjson
import zmq

from quantumtrader.protocol import feed_frames

_SNDMORE = int(zmq.SNDMORE)


class FeedPublisher:
    def __init__(self, socket: zmq.Socket[bytes]) -> None:
        # pyzmq's compiled send, without the pure-Python wrapper's keyword
        # handling (routing_id, group: unused on PUB): two calls per message.
        self._send = zmq.backend.Socket.send.__get__(socket)
        self.seq = 0
        self.sent: Counter[str] = Counter()

    def publish(self, kind: str, data: Mapping[str, Any] | orjson.Fragment, time_msc: int, symbol: str | None = None, timestamp: str | None = None) -> None:
        """``data`` may be already serialized (an ``orjson.Fragment``: a signal the journal has the bytes of)."""
        self.seq += 1
        topic, body = feed_frames(kind, data, time_msc, self.seq, symbol, timestamp)
        # Two plain sends with a pre-converted flag: send_multipart's per-call
        # enum arithmetic cost more than the send itself on the tick path.
        self._send(topic, _SNDMORE)
        self._send(body)
        self.sent[kind] += 1
