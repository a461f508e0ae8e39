"""Who calls the API: the keys file (hashes only), the development keys, the proxy-header
mode, and `preflight users`."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import httpx
import pytest
from fastapi import Depends, FastAPI
from typer.testing import CliRunner

from api.identity import Caller, CurrentCaller, authenticator, require
from api.keys import DEV_KEYS_FILE, KeysFileError, add_key, ensure_dev_keys, hash_key, load_keys
from cli.main import app as cli
from settings import Settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_admin_holds_every_role() -> None:
    admin = Caller(user="root", roles=frozenset({"admin"}))
    approver = Caller(user="bob", roles=frozenset({"approver"}))
    assert admin.can("requester") and admin.can("approver") and admin.can("admin")
    assert approver.can("approver") and not approver.can("requester")
    assert not approver.can("admin")


def test_a_key_is_shown_once_and_only_its_hash_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "state" / "keys.json"
    key = add_key(path, "alice", ["requester"])
    assert key.startswith("pf_") and len(key) > 40
    assert mode(path) == 0o600
    assert key not in path.read_text()
    [entry] = load_keys(path)
    assert (entry.user, entry.roles, entry.key_sha256) == ("alice", ["requester"], hash_key(key))

    add_key(path, "bob", ["approver", "requester"])
    again = add_key(path, "alice", ["admin"])  # replaces alice's key, keeps bob's
    assert again != key
    entries = {e.user: e for e in load_keys(path)}
    assert set(entries) == {"alice", "bob"}
    assert entries["alice"].roles == ["admin"]
    assert entries["alice"].key_sha256 == hash_key(again)
    assert entries["bob"].roles == ["approver", "requester"]


@pytest.mark.parametrize(
    ("user", "roles", "message"),
    [
        ("alice", ["boss"], "unknown role 'boss'"),
        ("alice", [], "at least one role"),
        ("a b", ["admin"], "user name"),
        ("", ["admin"], "user name"),
    ],
)
def test_bad_users_and_roles_are_refused(
    tmp_path: Path, user: str, roles: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        add_key(tmp_path / "keys.json", user, roles)
    assert not (tmp_path / "keys.json").exists()


def test_a_broken_keys_file_is_named_without_its_contents(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    assert load_keys(path) == []
    path.write_text("[{")
    with pytest.raises(KeysFileError, match="not JSON"):
        load_keys(path)
    path.write_text(json.dumps([{"user": "alice", "roles": ["root"], "key_sha256": "secretish"}]))
    with pytest.raises(KeysFileError, match=r"record 0: invalid roles\.0, key_sha256") as raised:
        load_keys(path)
    assert "secretish" not in str(raised.value)


def test_development_keys_are_made_once_and_work(tmp_path: Path) -> None:
    keys = ensure_dev_keys(tmp_path)
    assert set(keys) == {"alice", "bob", "admin"}
    saved = tmp_path / DEV_KEYS_FILE
    assert json.loads(saved.read_text()) == keys
    assert mode(saved) == 0o600 and mode(tmp_path / "api_keys.json") == 0o600
    roles = {e.user: e.roles for e in load_keys(tmp_path / "api_keys.json")}
    assert roles == {"alice": ["requester"], "bob": ["approver", "requester"], "admin": ["admin"]}
    assert ensure_dev_keys(tmp_path) == keys  # idempotent

    (tmp_path / "api_keys.json").unlink()  # the keys file lost: the saved keys are stale
    renewed = ensure_dev_keys(tmp_path)
    assert renewed != keys
    assert {e.key_sha256 for e in load_keys(tmp_path / "api_keys.json")} == {
        hash_key(k) for k in renewed.values()
    }


def proxy_app(**overrides: object) -> FastAPI:
    settings = Settings.model_validate({"auth_mode": "proxy_header"} | overrides)
    app = FastAPI()
    app.state.authenticate = authenticator(settings)

    @app.get("/me")
    async def me(caller: CurrentCaller) -> Caller:
        return caller

    @app.get("/approve", dependencies=[Depends(require("approver"))])
    async def approve() -> str:
        return "ok"

    return app


def call(
    app: FastAPI, path: str, headers: dict[str, str], client: str = "127.0.0.1"
) -> httpx.Response:
    """GET `path` as if from the address `client` (the ASGI transport lets us pick it)."""

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            return await http.get(path, headers=headers)

    return asyncio.run(get())


def test_a_trusted_proxy_names_the_user_and_roles() -> None:
    app = proxy_app()
    headers = {"X-Forwarded-User": "dana@example.com", "X-Forwarded-Roles": "Requester, approver"}
    response = call(app, "/me", headers)
    assert response.status_code == 200
    assert response.json()["user"] == "dana@example.com"
    assert sorted(response.json()["roles"]) == ["approver", "requester"]
    assert (call(app, "/approve", headers)).status_code == 200

    no_roles = call(app, "/approve", {"X-Forwarded-User": "erin"})
    assert no_roles.status_code == 403
    assert no_roles.json()["detail"] == "erin needs the approver role"


def test_proxy_headers_from_elsewhere_or_incomplete_are_refused() -> None:
    app = proxy_app(trusted_proxies=["10.0.0.0/8"], proxy_user_header="X-User")
    headers = {"X-User": "dana", "X-Forwarded-Roles": "requester"}
    assert (call(app, "/me", headers, client="10.1.2.3")).status_code == 200

    untrusted = call(app, "/me", headers, client="192.168.1.9")
    assert untrusted.status_code == 401
    assert "192.168.1.9 is not a trusted proxy" in untrusted.json()["detail"]
    assert "WWW-Authenticate" in untrusted.headers

    missing = call(app, "/me", {"X-Forwarded-Roles": "requester"}, client="10.1.2.3")
    assert missing.status_code == 401
    assert "X-User" in missing.json()["detail"]

    bad_role = call(app, "/me", headers | {"X-Forwarded-Roles": "requester,root"}, "10.0.0.1")
    assert bad_role.status_code == 401
    assert "unknown role 'root'" in bad_role.json()["detail"]


def test_trusted_proxies_must_be_addresses() -> None:
    with pytest.raises(ValueError, match="entry 1 is not an IP address"):
        Settings(trusted_proxies=["127.0.0.1", "proxy.internal"])


def test_users_cli_prints_the_key_once_and_lists_no_hashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFLIGHT_API_KEYS_FILE", str(tmp_path / "keys.json"))
    runner = CliRunner()
    added = runner.invoke(cli, ["users", "add", "bob", "--role", "requester", "--role", "approver"])
    assert added.exit_code == 0, added.output
    key = added.output.strip().splitlines()[-1]
    [entry] = load_keys(tmp_path / "keys.json")
    assert entry.key_sha256 == hash_key(key)

    listed = runner.invoke(cli, ["users", "list"])
    assert listed.exit_code == 0
    assert "bob" in listed.output and "approver, requester" in listed.output
    assert key not in listed.output and entry.key_sha256 not in listed.output

    refused = runner.invoke(cli, ["users", "add", "carol", "--role", "boss"])
    assert refused.exit_code == 2
    assert "unknown role 'boss'" in refused.output
