"""The SQLite store (DESIGN.md, "Storage"): signals, the models' saved state, migrations, readers."""

from quantumtrader.store.codec import pack_state, unpack_state
from quantumtrader.store.crypto import SignalCipher, StoreKeyError, cipher_from_env
from quantumtrader.store.db import connect, store_path
from quantumtrader.store.schema import MIGRATIONS, SCHEMA_VERSION, current_version, migrate
from quantumtrader.store.signals import SignalLog, SignalReader
from quantumtrader.store.store import Store
from quantumtrader.store.writer import StoreWriter

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SignalCipher",
    "SignalLog",
    "SignalReader",
    "Store",
    "StoreKeyError",
    "StoreWriter",
    "cipher_from_env",
    "connect",
    "current_version",
    "migrate",
    "pack_state",
    "store_path",
    "unpack_state",
]
