"""What the operator's commands do to accounts, shops and keys (``livedesk user|shop|keys``),
apart from argument parsing. Each raises :class:`AdminError` with a message for the
operator; nothing here prints a password hash or, except where asked to, a secret.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gateway.store.accounts import Account, AccountStore, Shop

from .issuers import STAFF_ROLES
from .keys import KID_PREFIX, new_key
from .passwords import PasswordRefused, hash_password

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
SHOP_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
MAX_ROOM_CHARS = 256
MAX_NAME_CHARS = 64


class AdminError(ValueError):
    pass


@dataclass(frozen=True)
class NewAccount:
    user: str
    roles: tuple[str, ...]
    password: str
    name: str = ""
    rooms: tuple[str, ...] = ()
    capacity: int | None = None
    max_compensation: float | None = None
    skills: tuple[str, ...] = ()


def account_wire(a: Account) -> dict[str, Any]:
    """An account as shown to operators: everything but the hash."""
    return {"user": a.id, "name": a.name, "roles": list(a.roles), "rooms": list(a.rooms),
            "capacity": a.capacity, "max_compensation": a.max_compensation,
            "skills": list(a.skills), "disabled": a.disabled, "epoch": a.epoch}


def _rooms(rooms: tuple[str, ...]) -> tuple[str, ...]:
    for r in rooms:
        if not r or len(r) > MAX_ROOM_CHARS or not r.isprintable():
            raise AdminError(f"room {r!r} must be 1–{MAX_ROOM_CHARS} printable characters")
    return tuple(dict.fromkeys(rooms))


def _roles(roles: tuple[str, ...]) -> tuple[str, ...]:
    if not roles or any(r not in STAFF_ROLES for r in roles):
        raise AdminError(f"roles must be among {STAFF_ROLES}")
    return tuple(dict.fromkeys(roles))


async def add_user(store: AccountStore, n: NewAccount) -> Account:
    if not ID_RE.fullmatch(n.user):
        raise AdminError("a user id is 1–128 letters, digits or _ . @ - (starting with a "
                         "letter or digit)")
    if len(n.name) > MAX_NAME_CHARS or not n.name.isprintable():
        raise AdminError(f"--name must be at most {MAX_NAME_CHARS} printable characters")
    roles = _roles(n.roles)
    if "host" in roles and not n.rooms:
        raise AdminError("a host needs at least one --room (a host token is bound to a room)")
    if n.capacity is not None and n.capacity < 0:
        raise AdminError("--capacity must not be negative")
    if n.max_compensation is not None and n.max_compensation < 0:
        raise AdminError("--max-compensation must not be negative")
    try:
        h = await hash_password(n.password)
    except PasswordRefused as e:
        raise AdminError(str(e)) from None
    a = Account(id=n.user, name=n.name, roles=roles, rooms=_rooms(n.rooms),
                capacity=n.capacity, max_compensation=n.max_compensation,
                skills=tuple(n.skills), password_hash=h)
    if not await store.add_account(a):
        raise AdminError(f"user {n.user!r} exists already (reset-password or disable it)")
    got = await store.account(n.user)
    assert got is not None
    return got


async def _changed(store: AccountStore, user: str, **change: Any) -> Account:
    a = await store.update_account(user, **change)
    if a is None:
        raise AdminError(f"no user {user!r}")
    return a


async def disable_user(store: AccountStore, user: str, disabled: bool = True) -> Account:
    return await _changed(store, user, disabled=disabled)


async def set_roles(store: AccountStore, user: str, roles: tuple[str, ...]) -> Account:
    return await _changed(store, user, roles=_roles(roles))


async def reset_password(store: AccountStore, user: str, password: str) -> Account:
    try:
        h = await hash_password(password)
    except PasswordRefused as e:
        raise AdminError(str(e)) from None
    return await _changed(store, user, password_hash=h)


# --- shops ------------------------------------------------------------------------------------

def parse_origin(value: str) -> str:
    """``https://host[:port]`` (or ``http://`` for development), normalised."""
    try:
        u = urlsplit(value.strip())
        port = u.port
    except ValueError:
        raise AdminError(f"origin {value!r} is not like https://shop.example.com") from None
    if (u.scheme not in ("http", "https") or not u.hostname or u.path not in ("", "/")
            or u.query or u.fragment or u.username or u.password):
        raise AdminError(f"origin {value!r} is not like https://shop.example.com")
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
    return f"{u.scheme}://{host}" + (f":{port}" if port else "")


def new_shop_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def shop_wire(s: Shop) -> dict[str, Any]:
    """A shop as listed: never its secret."""
    return {"shop": s.id, "rooms": list(s.rooms), "origins": list(s.origins),
            "anonymous": s.anonymous}


async def add_shop(store: AccountStore, shop_id: str, rooms: tuple[str, ...],
                   origins: tuple[str, ...], anonymous: bool = False) -> Shop:
    if not SHOP_ID_RE.fullmatch(shop_id) or shop_id.startswith(KID_PREFIX):
        raise AdminError(f"a shop id is 1–32 letters, digits or _ . - and does not start "
                         f"with {KID_PREFIX!r}")
    if not rooms:
        raise AdminError("a shop needs at least one --room")
    if any(s.id == shop_id for s in await store.shops()):
        raise AdminError(f"shop {shop_id!r} exists already (rotate-secret to get a new secret)")
    shop = Shop(shop_id, _rooms(rooms), tuple(dict.fromkeys(parse_origin(o) for o in origins)),
                new_shop_secret(), anonymous=anonymous)
    await store.put_shop(shop)
    return shop


async def rotate_shop_secret(store: AccountStore, shop_id: str) -> Shop:
    old = next((s for s in await store.shops() if s.id == shop_id), None)
    if old is None:
        raise AdminError(f"no shop {shop_id!r}")
    shop = Shop(old.id, old.rooms, old.origins, new_shop_secret(), anonymous=old.anonymous)
    await store.put_shop(shop)
    return shop


# --- keys -------------------------------------------------------------------------------------

async def rotate_keys(store: AccountStore, overlap_s: float) -> dict[str, Any]:
    if overlap_s < 0:
        raise AdminError("--overlap must not be negative")
    before = [k.kid for k in await store.keys() if k.retired_at is None]
    key = new_key()
    await store.add_key(key, retire_others_overlap_s=overlap_s)
    return {"signer": key.kid, "retired": before, "overlap_s": overlap_s}


async def list_keys(store: AccountStore) -> list[dict[str, Any]]:
    return [{"kid": k.kid, "alg": k.alg, "created_at": k.created_at, "retired_at": k.retired_at,
             "expires_at": k.expires_at} for k in await store.keys()]
