"""WebSocket frames built once per message and shared by every client that receives it.

With permessage-deflate's default context takeover, each connection's
compressed bytes depend on everything sent on it before, so a quote fanned
out to 500 clients was compressed 500 times: profiled, that was ~40% of the
sidecar's time at 500 clients. RFC 7692 (section 7.1.1.1) lets a server
answer any offer with ``server_no_context_takeover``, which a client must
accept; then a message compresses to bytes that do not depend on the
connection (only on the window size agreed with it), so each message is
compressed once and the same frame goes to every client.

:class:`SharedFrameProtocol` is uvicorn's websockets-sansio protocol with that
one negotiation change. :func:`encoding_of` says which frame a negotiated
connection can take (plain, or deflate with a given window), or ``None``
when it cannot share (another extension, context takeover): that connection
keeps the per-connection path.
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.permessage_deflate import PerMessageDeflate, ServerPerMessageDeflateFactory

#: ``None`` (cannot share), ``0`` (no compression) or the server's deflate window bits (9-15).
Encoding = int | None

_PLAIN = 0
# Deflate memory level as uvicorn configures it for its own encoder (~tens of KiB per compressor).
_MEM_LEVEL = 5
_SYNC_TAIL = b"\x00\x00\xff\xff"
_CACHE_MAX = 4096


#: ASGI scope extension under which :class:`SharedFrameProtocol` hands itself to the endpoint.
SCOPE_KEY = "quantumtrader.ws_protocol"


class SharedFrameProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, negotiating ``server_no_context_takeover``.

    It also puts itself in the connection's ASGI scope (``extensions``), so the
    endpoint's writer reaches the transport and the negotiated extensions
    without guessing at what sits behind the ASGI ``send``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for factory in self.conn.available_extensions or ():
            if isinstance(factory, ServerPerMessageDeflateFactory):
                factory.server_no_context_takeover = True

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # absent when the handshake was refused
        if scope is not None:  # the app's task is created but has not run yet
            scope.setdefault("extensions", {})[SCOPE_KEY] = self


def encoding_of(extensions: list[Any]) -> Encoding:
    """The shareable encoding of a connection from its negotiated extensions, or None."""
    if not extensions:
        return _PLAIN
    if len(extensions) == 1 and isinstance(extensions[0], PerMessageDeflate) and extensions[0].local_no_context_takeover:
        return int(extensions[0].local_max_window_bits)
    return None


def _header(length: int, compressed: bool) -> bytes:
    """A final text frame's header, server to client (never masked, RFC 6455 section 5.2)."""
    first = 0x81 | (0x40 if compressed else 0)  # FIN, RSV1 marks a compressed message, opcode 1 = text
    if length < 126:
        return bytes((first, length))
    if length < 1 << 16:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def build_frame(text: str, encoding: int) -> bytes:
    """The whole frame carrying ``text`` for a connection of ``encoding`` (not 0: deflate window bits)."""
    payload = text.encode()
    if encoding == _PLAIN:
        return _header(len(payload), False) + payload
    compressor = zlib.compressobj(wbits=-encoding, memLevel=_MEM_LEVEL)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    data = data[:-4] if data.endswith(_SYNC_TAIL) else data
    return _header(len(data), True) + data


class FrameCache:
    """Frames by (message, encoding): the first client to need one builds it, the others reuse it.

    The hub hands every client of a fan-out the same message text, so a
    small cache that forgets everything when full is enough: a message lives
    for one fan-out, a few milliseconds. Counts go to ``counters`` (the hub's,
    so they reach /api/metrics with the others) as ``ws_frames_built`` and
    ``ws_frames_reused``.
    """

    def __init__(self, max_entries: int = _CACHE_MAX, counters: Counter[str] | None = None) -> None:
        self._frames: dict[tuple[str, int], bytes] = {}
        self._max = max_entries
        self.counters: Counter[str] = counters if counters is not None else Counter()
        for name in ("ws_frames_built", "ws_frames_reused"):  # exported from the start, at 0
            self.counters[name] += 0

    @property
    def built(self) -> int:
        return self.counters["ws_frames_built"]

    @property
    def reused(self) -> int:
        return self.counters["ws_frames_reused"]

    def frame(self, text: str, encoding: int) -> bytes:
        key = (text, encoding)
        frame = self._frames.get(key)
        if frame is None:
            if len(self._frames) >= self._max:
                self._frames.clear()
            frame = self._frames[key] = build_frame(text, encoding)
            self.counters["ws_frames_built"] += 1
        else:
            self.counters["ws_frames_reused"] += 1
        return frame
