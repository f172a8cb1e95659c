"""Users of the sidecar: names, roles and scrypt password hashes in the data directory.

The file (``users.json``, mode 0600) holds only salted ``hashlib.scrypt``
hashes (n=2**14, r=8, p=1: ~16 MiB and tens of milliseconds per check, which
makes guessing expensive while a login stays instant for a person); clear-text
passwords exist only in memory during ``user add`` and a login. There are no
default users: ``qt-daemon user add`` creates them.

The sidecar re-reads the file when its modification time changes, so
``user remove`` revokes a user's tokens without a restart. While the file
cannot be read (on Windows another process may hold it for a moment) the
users read before stay in force and the next request tries again.

A damaged file (not JSON, a hand-edited entry without a known role) is never
rewritten: a change refuses with the reason (``UserError``), so the users it
still holds are not lost to the next ``user add``, which used to rewrite the
file with only the new user. Until it is fixed the sidecar lets in the
entries it can read (none if it cannot read the file) and logs why, once per
version of the file.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from quantumtrader.log import get_logger
from quantumtrader.sidecar.files import write_private

log = get_logger("quantumtrader.sidecar.users")

USERS_FILE = "users.json"
ROLES = ("viewer", "trader")
_NAME_RE = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_KEY_LEN = 32
MIN_PASSWORD_LEN = 8
MAX_PASSWORD_LEN = 1024  # scrypt of a megabyte "password" is a cheap denial of service


class UserError(ValueError):
    """A bad user name, role or password, a damaged users file, or one that cannot be written (message says which)."""


class BadUserInput(UserError):
    """A bad user name, role or password: the caller's input (the CLI's exit 2, as for any bad option), not the file's."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    # Tokens carry the epoch they were issued under; adding, replacing or revoking the user starts a new
    # one, so a password change or a remove-then-add does not leave old tokens working (0: a file from
    # before epochs, whose tokens have none).
    epoch: int = 0


def check_name(name: str) -> str:
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        raise BadUserInput("user name must be 1-64 chars of [A-Za-z0-9._@-]")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise BadUserInput(f"role must be one of {', '.join(ROLES)}")
    return role


def hash_password(password: str, *, n: int = _SCRYPT_N, r: int = _SCRYPT_R, p: int = _SCRYPT_P) -> dict[str, Any]:
    """A fresh salt and the scrypt hash, with the parameters (so they can be raised later)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=_KEY_LEN, maxmem=64 * 1024 * 1024)
    return {"scrypt": {"n": n, "r": r, "p": p}, "salt": salt.hex(), "hash": digest.hex()}


def verify_password(password: str, record: dict[str, Any]) -> bool:
    """Constant-time comparison of scrypt(password) with the stored hash."""
    try:
        params = record["scrypt"]
        salt = bytes.fromhex(record["salt"])
        expected = bytes.fromhex(record["hash"])
        digest = hashlib.scrypt(
            password.encode(), salt=salt, n=int(params["n"]), r=int(params["r"]), p=int(params["p"]),
            dklen=len(expected), maxmem=64 * 1024 * 1024,
        )
    except (KeyError, ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


#: scrypt of a fixed password, checked when the user does not exist so that a
#: login's timing does not reveal which names exist.
_DUMMY: dict[str, Any] = {}


class UserStore:
    """The users file. Reads are cached by mtime; writes replace the file atomically."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / USERS_FILE
        self._mtime_ns = -1
        self._records: dict[str, dict[str, Any]] = {}
        self.damaged: str | None = None  # why the file cannot be taken whole (None: it can, or there is none)

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._mtime_ns, self._records, self.damaged = -1, {}, None
            return self._records
        except OSError as exc:
            return self._unreadable(exc)
        if mtime == self._mtime_ns:
            return self._records
        try:
            raw = self.path.read_bytes()
        except OSError as exc:  # not found too: it was there at the stat an instant ago
            return self._unreadable(exc)
        self._records, self.damaged = _parse(self.path, raw)
        self._mtime_ns = mtime
        if self.damaged is not None:
            log.error("users file damaged: only the entries it can read may log in, and no change is written to it", problem=self.damaged, users_read=len(self._records))
        return self._records

    def _unreadable(self, exc: OSError) -> dict[str, dict[str, Any]]:
        """The records read last, kept while the file cannot be read, and no mtime recorded, so the next call reads
        it again. On Windows a backup or antivirus tool holding the file, or the instant of the CLI's os.replace,
        is a sharing violation: recorded with its mtime and no users, every token got 401 until the file changed
        again. ``damaged`` says why meanwhile, so no change is saved from records that may be out of date."""
        problem = f"{self.path} cannot be read: {exc.strerror or exc}"
        if problem != self.damaged:
            log.warning("users file cannot be read: the users read before are kept until it can", problem=problem, users_kept=len(self._records))
        self._mtime_ns, self.damaged = -1, problem
        return self._records

    def check(self) -> None:
        """UserError naming the problem when the file is damaged (for commands that show or change users)."""
        self._load()
        if self.damaged is not None:
            raise UserError(f"{self.damaged}; it is left as it is so no user in it is lost: fix it, or move it away to start afresh")

    def _for_change(self) -> dict[str, dict[str, Any]]:
        """A copy of the records to change and save; refused while the file is damaged (the save would drop what it could not read)."""
        self.check()
        return dict(self._records)

    def _save(self, records: dict[str, dict[str, Any]]) -> None:
        """Replace the file with ``records``; UserError when it cannot be written. The write goes to a temporary
        file first (write_private), so the file is as it was: a read-only data directory or a full disk was an
        OSError traceback out of ``user add/remove/revoke`` that left the operator guessing."""
        try:
            write_private(self.path, orjson.dumps({"version": 1, "users": records}, option=orjson.OPT_INDENT_2))
        except OSError as exc:
            raise UserError(f"cannot write {self.path}: {exc.strerror or exc} (a read-only data directory or a full disk?); nothing was changed") from None
        self._mtime_ns = -1

    def get(self, name: str) -> User | None:
        record = self._load().get(name)
        return _user(name, record) if record else None

    def list(self) -> list[User]:
        return [_user(name, rec) for name, rec in sorted(self._load().items())]

    def check_addable(self, name: str, role: str, *, replace: bool = False) -> dict[str, dict[str, Any]]:
        """UserError unless ``add(name, role, ..., replace=replace)`` can save, the password aside: the CLI asks
        this before the password is typed twice (a bad name was refused only after it). Returns the records read,
        for ``add`` to change and save (one read: the check and the save see the same users)."""
        check_name(name)
        check_role(role)
        records = self._for_change()
        if name in records and not replace:
            raise UserError(f"user {name!r} exists (use --replace to change its role or password)")
        return records

    def add(self, name: str, role: str, password: str, *, replace: bool = False) -> User:
        records = self.check_addable(name, role, replace=replace)
        if not MIN_PASSWORD_LEN <= len(password) <= MAX_PASSWORD_LEN:
            raise BadUserInput(f"password must be {MIN_PASSWORD_LEN}-{MAX_PASSWORD_LEN} characters")
        try:
            password.encode("utf-8")
        except UnicodeEncodeError:
            raise BadUserInput("the password is not text (UTF-8)") from None
        now = time.time_ns() // 1_000_000
        old = records.get(name)
        # A new password retires the tokens issued before; a role change alone keeps them (it applies to them
        # from their next check, as the users file's role always does).
        same_password = old is not None and verify_password(password, old)
        epoch = old.get("epoch", 0) if same_password else _next_epoch(old, now)
        records[name] = {"role": role, "created_msc": now, "epoch": epoch, **hash_password(password)}
        self._save(records)
        return _user(name, records[name])

    def revoke(self, name: str) -> bool:
        """Every token issued to ``name`` so far stops working (the user stays). False if there is none."""
        records = self._for_change()
        record = records.get(name)
        if record is None:
            return False
        records[name] = {**record, "epoch": _next_epoch(record, time.time_ns() // 1_000_000)}
        self._save(records)
        return True

    def remove(self, name: str) -> bool:
        records = self._for_change()
        if records.pop(name, None) is None:
            return False
        self._save(records)
        return True

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if the password matches. Costs one scrypt whether or not the name exists."""
        if len(password) > MAX_PASSWORD_LEN:
            return None
        record = self._load().get(name)
        if record is None:
            if not _DUMMY:
                _DUMMY.update(hash_password("not a real password"))
            verify_password(password, _DUMMY)
            return None
        return _user(name, record) if verify_password(password, record) else None


def _user(name: str, record: dict[str, Any]) -> User:
    epoch = record.get("epoch", 0)
    return User(name, record["role"], epoch if type(epoch) is int else -1)  # garbled: the tokens issued before stop matching


def _next_epoch(record: dict[str, Any] | None, now_msc: int) -> int:
    """A new epoch for a user: the time in ms, above the last one however the clock moved. A name removed
    and added again starts from the clock, past any epoch it had (its tokens were issued before)."""
    previous = record.get("epoch", 0) if record else 0
    return max(now_msc, previous + 1 if type(previous) is int else 0)


def _parse(path: Path, raw: bytes) -> tuple[dict[str, dict[str, Any]], str | None]:
    """The usable records of a users file's content, and what is wrong with it (None: nothing)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return {}, f"{path} is not valid JSON ({exc})"
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict):  # a hand-edited file ({"users": []}) raised on every request, a plain 500
        return {}, f"{path} has no users object"
    records = {k: v for k, v in users.items() if isinstance(v, dict) and v.get("role") in ROLES}
    bad = [k for k in users if k not in records]
    if bad:
        return records, f"{path}: entries without a known role ({', '.join(ROLES)}): {', '.join(map(repr, bad[:5]))}{' ...' if len(bad) > 5 else ''}"
    return records, None
