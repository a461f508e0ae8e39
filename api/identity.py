"""Who calls the API, and what they may do.

Two ways to know the caller (`settings.auth_mode`):
- `api_key`: a key sent as `Authorization: Bearer <key>` or `X-API-Key`, looked up in the
  keys file, which holds only SHA-256 hashes (a stolen file signs nobody in);
- `proxy_header`: an authenticating proxy in front of the API names the user and roles in
  headers, believed only from the proxy's own addresses (`settings.trusted_proxies`).

Roles: a requester plans and deploys, an approver approves, an admin may do everything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Annotated, Literal, get_args

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from settings import Settings

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


class Caller(BaseModel):
    """An authenticated user and the roles they hold."""

    model_config = ConfigDict(frozen=True)
    user: str
    roles: frozenset[Role]

    def can(self, role: Role) -> bool:
        """Whether the caller holds `role`; an admin holds every role."""
        return role in self.roles or "admin" in self.roles


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


Authenticate = Callable[[Request], Awaitable[Caller]]


def unauthorized(detail: str, scheme: str = "Bearer") -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": f'{scheme} realm="preflight"'},
    )


class _KeyStore:
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


SESSION_COOKIE = "preflight_key"
"""The web UI's sign-in: the API key in an HttpOnly, SameSite=Strict cookie, so page scripts
never hold it."""
CSRF_HEADER = "X-Preflight-UI"
"""Sent by the web UI's scripts with every change. A cookie rides along on any request the
browser makes; a custom header only on the page's own (other sites cannot set it)."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _presented_key(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    if header := request.headers.get("X-API-Key", "").strip():
        return header
    cookie = request.cookies.get(SESSION_COOKIE, "").strip()
    if cookie and request.method not in SAFE_METHODS and not request.headers.get(CSRF_HEADER):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"a change signed in by cookie must come from the web UI (the {CSRF_HEADER} header)",
        )
    return cookie or None


def key_checker(settings: Settings) -> Callable[[str], Caller | None]:
    """Who holds `key` (None: nobody), from the keys file; 503 when the file is unusable."""
    store = _KeyStore(settings.resolved_api_keys_file)

    def check(key: str) -> Caller | None:
        try:
            entry = store.find(key)
        except KeysFileError as error:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, f"the API keys file is not usable: {error}"
            ) from None
        return None if entry is None else Caller(user=entry.user, roles=frozenset(entry.roles))

    return check


def authenticator(settings: Settings) -> Authenticate:
    """The dependency that names the caller of a request, per `settings.auth_mode`; 401
    (with `WWW-Authenticate`) when it cannot."""
    if settings.auth_mode == "proxy_header":
        return _proxy_authenticator(settings)
    check = key_checker(settings)

    async def caller(request: Request) -> Caller:
        key = _presented_key(request)
        if key is None:
            raise unauthorized("missing API key: send Authorization: Bearer <key> or X-API-Key")
        found = check(key)
        if found is None:
            raise unauthorized("unknown API key")
        return found

    return caller


def _proxy_authenticator(settings: Settings) -> Authenticate:
    trusted = [ip_network(p, strict=False) for p in settings.trusted_proxies]
    user_header, roles_header = settings.proxy_user_header, settings.proxy_roles_header

    def is_trusted(host: str | None) -> bool:
        try:
            address = ip_address(host or "")
        except ValueError:
            return False
        return any(address in network for network in trusted)

    async def caller(request: Request) -> Caller:
        host = request.client.host if request.client else None
        if not is_trusted(host):
            raise unauthorized(
                f"{host or 'an unknown address'} is not a trusted proxy: it may not assert "
                f"{user_header}",
                "Proxy",
            )
        user = request.headers.get(user_header, "").strip()
        if not user:
            raise unauthorized(f"missing {user_header} header from the proxy", "Proxy")
        try:
            checked_user(user)
        except ValueError as error:
            raise unauthorized(f"{user_header}: {error}", "Proxy") from None
        names = request.headers.get(roles_header, "").split(",")
        try:
            roles = checked_roles(n.strip().lower() for n in names if n.strip())
        except ValueError as error:
            raise unauthorized(f"{roles_header}: {error}", "Proxy") from None
        return Caller(user=user, roles=roles)

    return caller


_BEARER = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")
_API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


async def current_caller(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    _api_key: Annotated[str | None, Security(_API_KEY)],
) -> Caller:
    """The route dependency: the app's authenticator (`create_app` installs it on
    `app.state.authenticate`). The two security parameters only document the schemes in
    OpenAPI, so /docs offers to sign in; the authenticator reads the headers itself."""
    authenticate: Authenticate | None = getattr(request.app.state, "authenticate", None)
    if authenticate is None:
        raise RuntimeError("no authenticator: create the app with api.app.create_app")
    return await authenticate(request)


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def require(*roles: Role) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that passes callers holding any of `roles` and refuses others (403)."""
    if not roles:
        raise ValueError("require() needs at least one role")

    async def allowed(caller: CurrentCaller) -> Caller:
        if not any(caller.can(role) for role in roles):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"{caller.user} needs the {' or '.join(roles)} role"
            )
        return caller

    return allowed
