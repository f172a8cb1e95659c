"""Optional encryption at rest of stored signals (the original system's Fernet idea).

When the environment variable named by ``store.encrypt_env`` (default
``QT_STORE_KEY``) holds a Fernet key, each stored signal's JSON body is
encrypted and its plaintext ``prediction``/``confidence`` columns are left
NULL; only ``id``, ``symbol`` and ``time_msc`` stay readable, so queries by
symbol and time still use the index and ``min_confidence`` is applied after
decryption. Needs the ``crypto`` extra (``cryptography``). Generate a key with
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


class StoreKeyError(RuntimeError):
    """The key is set but unusable, or an encrypted row cannot be read with it."""


class SignalCipher:
    """Fernet over the signal body; built from a key string."""

    def __init__(self, key: str) -> None:
        try:
            from cryptography.fernet import Fernet
        except ImportError:  # pragma: no cover - depends on the install
            raise StoreKeyError("a store key is set but 'cryptography' is not installed: pip install 'quantumtrader[crypto]'") from None
        try:
            self._fernet = Fernet(key.encode() if isinstance(key, str) else key)
        except (ValueError, TypeError) as exc:
            raise StoreKeyError(f"the store key is not a valid Fernet key: {exc}") from None

    def encrypt(self, body: bytes) -> str:
        return self._fernet.encrypt(body).decode("ascii")

    def decrypt(self, token: str) -> bytes:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode("ascii"))
        except InvalidToken:
            raise StoreKeyError("an encrypted signal cannot be decrypted with this key") from None


def cipher_from_env(variable: str, environ: Mapping[str, str] | None = None) -> SignalCipher | None:
    """The cipher when ``variable`` is set and non-empty, else None (no encryption)."""
    env: Mapping[str, Any] = os.environ if environ is None else environ
    key = env.get(variable, "") if variable else ""
    return SignalCipher(key) if key else None
