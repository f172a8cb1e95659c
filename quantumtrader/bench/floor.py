"""The transport floor: a relay that does what the daemon does minus the daemon's work.

PULL -> PUB with nothing in between (no decoding, validation, features or
models). Tick -> receive latency through this relay is the floor set by
ZeroMQ, Python and two process hops; the pipeline's figures over the floor's
are the overhead we add.

Usage: python -m quantumtrader.bench.floor EVENTS FEED
"""

from __future__ import annotations

import sys

import zmq

from quantumtrader.shutdown import install_stop_handlers


def main(argv: list[str]) -> None:
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, 0)
    pull.bind(argv[0])
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 0)
    pub.bind(argv[1])
    stop = False

    def handler() -> None:
        nonlocal stop
        stop = True

    install_stop_handlers(handler)  # Ctrl-Break too: how the bench asks a child to stop on Windows
    while not stop:
        if pull.poll(100):
            while True:
                try:
                    frame = pull.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                pub.send_multipart([b"price.", frame])
    pull.close(0)
    pub.close(0)


if __name__ == "__main__":
    main(sys.argv[1:])
