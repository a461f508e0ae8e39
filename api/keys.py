"""The API's keys: who may sign in, and with which roles. The keys file holds only SHA-256
hashes of the keys (a stolen file signs nobody in), written readable by its owner alone;
`preflight users add` writes it, the API reads it (`api.identity`) whenever it changes."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Role = Literal["requester", "approver", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)

KEY_PREFIX = "pf_"
USER_NAME = re.compile(r"^\w[\w.@+-]{0,127}$")
"""User names: a letter or digit, then letters, digits and `.@+-` (e-mail addresses pass)."""
DEV_KEYS_FILE = "dev_keys.json"
DEV_USERS: dict[str, tuple[Role, ...]] = {
    "alice": ("requester",),
    "bob": ("requester", "approver"),
    "admin": ("admin",),
}
"""The embedded development stack's users: a requester, a requester who may approve others,
and an admin."""


class KeyEntry(BaseModel):
    """One record of the keys file."""

    model_config = ConfigDict(extra="forbid")
    user: str
    roles: list[Role] = Field(min_length=1)
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("user")
    @classmethod
    def _user(cls, user: str) -> str:
        return checked_user(user)


class KeysFileError(RuntimeError):
    """The keys file cannot be read or is not a list of key records."""


def checked_user(user: str) -> str:
    if not USER_NAME.match(user):
        raise ValueError(
            "a user name is 1-128 letters, digits or '.@+-' and starts with a letter or digit"
        )
    return user


def checked_roles(names: Iterable[str]) -> frozenset[Role]:
    roles: set[Role] = set()
    for name in names:
        if name not in ROLES:
            raise ValueError(f"unknown role {name[:40]!r}; roles: {', '.join(ROLES)}")
        roles.add(name)
    return frozenset(roles)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_keys(path: Path) -> list[KeyEntry]:
    """The keys file's records; none when the file does not exist yet."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except OSError as error:
        raise KeysFileError(f"{path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise KeysFileError(f"{path}: not JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(raw, list):
        raise KeysFileError(f"{path}: expected a JSON list of key records")
    entries = []
    for i, item in enumerate(raw):
        try:
            entries.append(KeyEntry.model_validate(item))
        except ValidationError as error:
            # Locations only: the values may hold something secret.
            fields = ", ".join(".".join(map(str, e["loc"])) or "record" for e in error.errors())
            raise KeysFileError(f"{path}: record {i}: invalid {fields}") from None
    return entries


def add_key(path: Path, user: str, roles: Iterable[str]) -> str:
    """Create a key for `user` with `roles` (replacing any key they had) and return it; only
    its hash is stored, so this is the one time it can be seen. ValueError for a bad user
    name or role."""
    chosen = sorted(checked_roles(roles))
    if not chosen:
        raise ValueError("give the user at least one role")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    entry = KeyEntry(user=checked_user(user), roles=chosen, key_sha256=hash_key(key))
    entries = [e for e in load_keys(path) if e.user != user] + [entry]
    write_private(path, json.dumps([e.model_dump() for e in entries], indent=2) + "\n")
    return key


def write_private(path: Path, text: str) -> None:
    """Write `text` readable by its owner alone (0600), atomically: a reader sees the old
    file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    path.chmod(0o600)


def ensure_dev_keys(state_dir: Path, keys_file: Path | None = None) -> dict[str, str]:
    """Keys of the development users (`DEV_USERS`), created on first use and kept in plain
    text in `state_dir/dev_keys.json` (0600) so the demo and the web UI can sign in locally;
    {user: key}. Created again when the keys file no longer knows them."""
    keys_file = keys_file or state_dir / "api_keys.json"
    saved_file = state_dir / DEV_KEYS_FILE
    if saved_file.exists():
        try:
            saved = json.loads(saved_file.read_text())
        except ValueError:
            saved = None
        known = {(e.user, e.key_sha256) for e in load_keys(keys_file)}
        if (
            isinstance(saved, dict)
            and set(saved) == set(DEV_USERS)
            and all(isinstance(k, str) and (u, hash_key(k)) in known for u, k in saved.items())
        ):
            return {str(u): str(k) for u, k in saved.items()}
    keys = {user: add_key(keys_file, user, roles) for user, roles in DEV_USERS.items()}
    write_private(saved_file, json.dumps(keys, indent=2) + "\n")
    return keys


class KeyStore:
    """The keys file, read again whenever it changes, so `preflight users add` takes
    effect without restarting the API."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._entries: list[KeyEntry] = []

    def entries(self) -> list[KeyEntry]:
        try:
            stat = self.path.stat()
            # The inode too: `add_key` replaces the file, maybe within one mtime tick.
            stamp: tuple[int, int, int] | None = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._entries = load_keys(self.path) if stamp is not None else []
            self._stamp = stamp
        return self._entries

    def find(self, key: str) -> KeyEntry | None:
        digest = hash_key(key)
        found = None
        for entry in self.entries():  # every entry compared, in constant time each
            if hmac.compare_digest(entry.key_sha256, digest):
                found = entry
        return found
