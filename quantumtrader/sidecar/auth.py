"""JWT access and refresh tokens (HS256) and the secret they are signed with.

The secret is 64 random bytes created on first use in the data directory
(``jwt_secret``, mode 0600; see :mod:`files` for Windows) and never has a
default, so two installations never share one and nobody can mint tokens from
the source code. Decoding pins ``algorithms=["HS256"]`` (so ``alg: none`` and
algorithm confusion are refused), requires ``exp``, ``sub``, ``role`` and
``type``, and checks that the user still exists: ``user remove`` revokes.
The role is taken from the users file, not the token, so a downgrade applies
at once. Tokens are never logged.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from quantumtrader.log import get_logger
from quantumtrader.protocol import decimal
from quantumtrader.sidecar.errors import ApiError
from quantumtrader.sidecar.files import create_private, too_open
from quantumtrader.sidecar.users import User, UserStore

SECRET_FILE = "jwt_secret"
ALGORITHM = "HS256"
ISSUER = "quantumtrader"
ACCESS = "access"
REFRESH = "refresh"
_REQUIRED_CLAIMS = ["exp", "iat", "sub", "role", "type", "iss"]

log = get_logger("quantumtrader.sidecar.auth")


class SecretError(ValueError):
    """The signing secret's file cannot be used; the message names it and says what to do."""


def load_or_create_secret(data_dir: Path) -> bytes:
    """The signing secret, created (0600) if absent. Refuses a secret shorter than 32 bytes, or one it cannot read
    (SecretError: the CLI says so and exits; it is never replaced, which would log every phone out)."""
    path = data_dir / SECRET_FILE
    if path.exists() and not path.is_file():  # before too_open: it would chmod a directory
        raise SecretError(f"cannot use {path} as the token signing secret: it is not a file")
    try:
        if create_private(path, secrets.token_hex(64).encode()):
            log.info("JWT secret created", path=str(path))
        elif too_open(path):
            log.warning("JWT secret readable by others; restricting to 0600", path=str(path))
            path.chmod(0o600)
        secret = path.read_bytes().strip()
        waited_until = time.monotonic() + 2.0
        while len(secret) < 32 and time.monotonic() < waited_until:  # the process that won O_EXCL is still writing it
            time.sleep(0.02)
            secret = path.read_bytes().strip()
    except OSError as exc:
        raise SecretError(f"cannot use {path} as the token signing secret: {exc.strerror or exc}") from None
    if len(secret) < 32:
        raise SecretError(f"{path} holds fewer than 32 bytes; delete it to have a new secret generated (tokens issued so far stop working)")
    return secret


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user (with the role from the users file) and the token's id."""

    user: User
    token_id: str

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def role(self) -> str:
        return self.user.role


class TokenService:
    """Issues and checks tokens for the users of one :class:`UserStore`."""

    def __init__(self, secret: bytes, users: UserStore) -> None:
        self._secret = secret
        self.users = users

    def issue(self, user: User, kind: str, ttl_s: int) -> str:
        now = int(time.time())
        claims = {
            "sub": user.name,
            "role": user.role,
            "type": kind,
            "iss": ISSUER,
            "iat": now,
            "exp": now + int(ttl_s),
            "jti": secrets.token_hex(8),
            "ep": user.epoch,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str, kind: str = ACCESS) -> Principal:
        """The principal of a valid token of type ``kind``, or ApiError(401) saying why not."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                # iat not judged: this process signed it with its own clock, and that clock stepped back (NTP)
                # made every token "not yet valid" until it caught up, the app's refresh token too (a hunt,
                # 2026-12-05); exp still ends it
                options={"require": _REQUIRED_CLAIMS, "verify_iat": False},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise ApiError(401, "token expired") from None
        except jwt.InvalidTokenError as exc:
            raise ApiError(401, f"invalid token ({type(exc).__name__})") from None
        if claims.get("type") != kind:
            raise ApiError(401, f"a {claims.get('type')!s} token cannot be used here (needs type {kind})")
        sub = claims.get("sub")
        user = self.users.get(sub) if isinstance(sub, str) else None
        if user is None:
            raise ApiError(401, "unknown user")
        if claims.get("ep", 0) != user.epoch:
            raise ApiError(401, "token revoked (the user's password changed, or its tokens were revoked)")
        return Principal(user, str(claims.get("jti", "")))


def bearer_token(authorization: str | None) -> str | None:
    """``Bearer <token>`` -> the token; anything else -> None."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_ttl(text: str) -> int:
    """``3600``, ``90m``, ``12h``, ``30d`` -> seconds (1 s to 10 years)."""
    text = text.strip().lower()
    unit = _TTL_UNITS.get(text[-1:], 0) if text else 0
    number = decimal(text[:-1] if unit else text)  # not isdigit(): it let "²" through to int()
    if number is None:
        raise ValueError(f"expected seconds or a number with s/m/h/d, got {text!r}")
    seconds = number * (unit or 1)
    if not 1 <= seconds <= 10 * 365 * 86_400:
        raise ValueError("must be from 1 second to 10 years")
    return seconds
