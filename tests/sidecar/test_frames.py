"""Shared WebSocket frames (sidecar/frames.py): what one client's decoder makes of them.

A client keeps one inflate stream across messages (context takeover on its
side), so frames compressed once per message, with no history, must decode
in any order and interleaved with frames the websockets library compressed
itself for that connection.
"""

from __future__ import annotations

import random
import zlib

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from quantumtrader.sidecar.frames import FrameCache, build_frame, encoding_of


def parse(frame: bytes) -> tuple[int, bool, bytes]:
    """(opcode, rsv1, payload) of one unmasked server frame, the length read as RFC 6455 says."""
    first, second = frame[0], frame[1]
    assert first & 0x80, "FIN must be set"
    assert not second & 0x80, "server frames are never masked"
    length, at = second & 0x7F, 2
    if length == 126:
        length, at = int.from_bytes(frame[2:4], "big"), 4
    elif length == 127:
        length, at = int.from_bytes(frame[2:10], "big"), 10
    payload = frame[at:]
    assert len(payload) == length
    return first & 0x0F, bool(first & 0x40), payload


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_plain_frames_carry_the_text_with_the_right_length_encoding(size: int) -> None:
    text = ("é" if size % 2 else "x") * size
    opcode, rsv1, payload = parse(build_frame(text, 0))
    assert opcode == 1 and not rsv1 and payload == text.encode()


def test_compressed_frames_decode_on_one_client_stream_mixed_with_the_librarys_own() -> None:
    window = 12
    client = zlib.decompressobj(wbits=-window)  # the client's single inflate stream, kept across messages
    # the library's encoder for this connection, as negotiated: no server context takeover
    library = PerMessageDeflate(False, True, 15, window, {"memLevel": 5})
    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(8)) for _ in range(64)]
    # the library's messages repeat each other (so a context-keeping encoder would point back into
    # its previous message); ours, sent in between, hold other bytes at those distances
    theirs = " ".join(words[:20])
    texts = [theirs if i % 3 == 1 else " ".join(rng.sample(words, 20)) for i in range(15)]
    for i, text in enumerate(texts):
        if i % 3 == 1:
            payload = library.encode(Frame(Opcode.TEXT, text.encode())).data
        else:
            opcode, rsv1, payload = parse(build_frame(text, window))
            assert opcode == 1 and rsv1
        assert client.decompress(bytes(payload) + b"\x00\x00\xff\xff") == text.encode()


def test_only_shareable_negotiations_share() -> None:
    assert encoding_of([]) == 0
    assert encoding_of([PerMessageDeflate(False, True, 15, 12)]) == 12
    assert encoding_of([PerMessageDeflate(False, False, 15, 12)]) is None  # context takeover: per connection
    assert encoding_of([PerMessageDeflate(False, True, 15, 12), object()]) is None


def test_the_cache_builds_each_frame_once_and_stays_bounded() -> None:
    cache = FrameCache(max_entries=3)
    first = cache.frame("a", 12)
    assert cache.frame("a", 12) is first and (cache.built, cache.reused) == (1, 1)
    assert cache.frame("a", 0) != first  # another encoding, another frame
    for text in "bcdefg":
        cache.frame(text, 12)
    assert len(cache._frames) <= 3
