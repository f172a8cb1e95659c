"""Latest-value conflation: each key's update goes out at most once per interval, the last one always.

What the feed's ``features.<SYMBOL>`` subscribers keep is the latest vector
per symbol (the sidecar stores the raw bytes of the last one); publishing
every tick's vector at 10,000 ticks/s cost a quarter of the daemon's time per
batch for messages that replace each other within milliseconds. So an
update is published at once when its key's interval has passed (leading
edge), otherwise held as pending, and a pending key is flushed when its
interval ends (trailing edge), so the subscriber's latest is never more than
one interval behind, even after the key's updates stop. Publishing times
spread with the keys' own ticks rather than bunching into one burst.
"""

from __future__ import annotations

import math


class Conflator:
    """Per-key due times on a monotonic clock in seconds (the caller passes ``now``)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._due: dict[int, float] = {}  # key -> earliest time its next update may go out
        self._pending: set[int] = set()  # keys with an update held back
        self._next_pending = math.inf  # earliest due time among the pending keys

    def offer(self, key: int, now: float) -> bool:
        """An update of ``key`` at ``now``: True means publish it now; False means it is held."""
        due = self._due.get(key, 0.0)
        if now >= due:
            self._due[key] = now + self.interval_s
            self._pending.discard(key)
            return True
        self._pending.add(key)
        if due < self._next_pending:
            self._next_pending = due
        return False

    def next_deadline(self) -> float:
        """When the earliest held update falls due (inf when nothing is held).

        May be early (a held key published on its own tick meanwhile), never
        late: an early wake-up finds nothing due and costs one empty pass.
        """
        return self._next_pending

    def due(self, now: float) -> list[int]:
        """The held keys whose interval has ended, in key order; they count as published at ``now``."""
        if now < self._next_pending:
            return []
        ready = sorted(key for key in self._pending if self._due[key] <= now)
        for key in ready:
            self._pending.discard(key)
            self._due[key] = now + self.interval_s
        self._next_pending = min((self._due[key] for key in self._pending), default=math.inf)
        return ready
