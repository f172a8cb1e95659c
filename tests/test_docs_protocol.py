"""Every tagged JSON example in docs/protocol.md is accepted by protocol.py."""

from __future__ import annotations

import re
from pathlib import Path

from quantumtrader import protocol as p

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
BLOCK = re.compile(r"```json (event|command|reply|control)\n(.*?)\n```", re.S)


def test_every_tagged_example_validates() -> None:
    blocks = BLOCK.findall(DOC.read_text(encoding="utf-8"))
    kinds = [kind for kind, _ in blocks]
    assert kinds.count("event") >= 7 and kinds.count("command") == 6 and kinds.count("reply") == 4
    now = 1_705_314_645_000
    for kind, body in blocks:
        raw = body.strip().encode()
        if kind == "event":
            p.decode_event(raw, now)
        elif kind == "command":
            p.decode_command(raw)
        elif kind == "reply":
            p.decode_reply(raw, now)
        else:
            p.decode_control(raw)
