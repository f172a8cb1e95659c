"""The sidecar's control client with a request in flight: another request under its id is refused, a repeat shares
its reply. Over a real ZeroMQ socket to a daemon stand-in that answers a trade slowly, as a slow terminal makes it."""

from __future__ import annotations

import asyncio

import orjson
import zmq
import zmq.asyncio

from quantumtrader.protocol import control_reply
from quantumtrader.sidecar.control import AsyncControl
from support import free_port


def test_another_request_under_an_id_in_flight_is_refused_and_a_repeat_shares_the_reply() -> None:
    """The review of the change (2026-12-06): an app's Idempotency-Key used for a close while its trade waited at a
    slow terminal shared the trade's reply, "Position closed successfully" of a close the daemon never saw, so the
    daemon's own check of a reused id never ran. Refused now; the same request again still shares the one reply."""

    async def scenario() -> tuple[list[dict], dict, dict, dict]:
        ctx = zmq.asyncio.Context()
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        router = ctx.socket(zmq.ROUTER)
        router.bind(endpoint)
        seen: list[dict] = []

        async def daemon() -> None:
            while True:
                frames = await router.recv_multipart()
                request = orjson.loads(frames[-1])
                seen.append(request)
                await asyncio.sleep(0.5)  # a slow terminal
                reply = control_reply(request["id"], order={"kind": "open", "status": "filled"})
                await router.send_multipart([*frames[:-1], orjson.dumps(reply)])

        serving = asyncio.create_task(daemon())
        control = AsyncControl(endpoint, ctx, timeout_ms=5000, retries=0)
        key = "samekey000000000000a"
        try:
            trade = asyncio.create_task(control.request("trade", req_id=key, symbol="EURUSD", side="buy", lots=0.1, expires_msc=1))
            await asyncio.sleep(0.1)
            close = await control.request("close", req_id=key, ticket=123, expires_msc=2)
            repeat = await control.request("trade", req_id=key, symbol="EURUSD", side="buy", lots=0.1, expires_msc=3)  # another try
            return seen, close, repeat, await trade
        finally:
            serving.cancel()
            await control.close()
            router.close(linger=0)
            ctx.term()

    seen, close, repeat, trade = asyncio.run(scenario())
    assert close["ok"] is False and close["status"] == 422 and "was used for another request" in close["error"], close
    assert [r["type"] for r in seen] == ["trade"]  # the close never reached the daemon, the repeat shared the trade's
    assert trade["ok"] is True and repeat == trade
