"""The daemon's store: open, migrate, restore, then signals on the loop and the rest on the writer.

DESIGN.md, "Storage". Only the daemon writes; readers (sidecar, CLI) use
:class:`~quantumtrader.store.signals.SignalReader`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantumtrader.config import Config
from quantumtrader.store.codec import unpack_state
from quantumtrader.store.crypto import SignalCipher, cipher_from_env
from quantumtrader.store.db import connect, store_path
from quantumtrader.store.schema import migrate
from quantumtrader.store.signals import SignalLog
from quantumtrader.store.writer import StoreWriter, checkpoint_job, retention_job, save_state_job

_MS_PER_DAY = 86_400_000


class Store:
    """Owns the loop's connection (signals) and the writer thread (state, retention)."""

    def __init__(self, path: Path, *, queue_max: int = 10_000, retention_days: float = 0.0, cipher: SignalCipher | None = None) -> None:
        self.path = path
        self._conn = connect(path, checkpoints=False)  # the loop's: checkpoints happen on the writer
        self.migrated = migrate(self._conn)
        self.signals = SignalLog(self._conn, cipher)
        self.writer = StoreWriter(path, queue_max)
        self.retention_days = retention_days
        self.encrypted = cipher is not None

    @classmethod
    def from_config(cls, config: Config) -> Store:
        sc = config.store
        return cls(
            store_path(config.data_path, sc.file_name),
            queue_max=sc.queue_max,
            retention_days=sc.signal_retention_days,
            cipher=cipher_from_env(sc.encrypt_env),
        )

    def start(self) -> None:
        self.writer.start()

    def load_state(self, name: str) -> tuple[int, dict[str, Any]] | None:
        """(saved_msc, state) of the last save under ``name``, or None. Start-up only (blocks)."""
        row = self._conn.execute("SELECT saved_msc, body FROM model_state WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        return int(row[0]), unpack_state(row[1])

    def save_state(self, name: str, saved_msc: int, state: dict[str, Any]) -> bool:
        """Enqueue a save of ``state`` (a copy the caller no longer mutates). Never blocks."""
        return self.writer.submit("state", save_state_job(name, saved_msc, state))

    def checkpoint(self) -> bool:
        """Enqueue a passive WAL checkpoint (the loop's connection never runs one itself)."""
        return self.writer.submit("checkpoint", checkpoint_job)

    def apply_retention(self, now_msc: int) -> bool:
        if self.retention_days <= 0:
            return False
        return self.writer.submit("retention", retention_job(now_msc - int(self.retention_days * _MS_PER_DAY)))

    def close(self) -> bool:
        """Drain the writer (the final state save is in its queue), then close the loop's connection."""
        finished = self.writer.close()
        self._conn.close()
        return finished
