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
from signaling.errors import ErrorCode

from .issuers import STAFF_ROLES
from .keys import KID_PREFIX, new_key
from .passwords import PasswordRefused, hash_password

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
SHOP_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
MAX_ROOM_CHARS = 256
MAX_NAME_CHARS = 64


class AdminError(ValueError):
    """A refused change; ``code`` is what the REST API answers (the CLI prints the message)."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.BAD_REQUEST) -> None:
        super().__init__(message)
        self.code = code


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
        raise AdminError(f"user {n.user!r} exists already (reset-password or disable it)",
                         ErrorCode.CONFLICT)
    got = await store.account(n.user)
    assert got is not None
    return got


async def _changed(store: AccountStore, user: str, **change: Any) -> Account:
    a = await store.update_account(user, **change)
    if a is None:
        raise AdminError(f"no user {user[:128]!r}", ErrorCode.NOT_FOUND)
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


# --- the admin page's REST bodies (validated here, one rule with the CLI's) ---------------------

MAX_LIST_ITEMS = 32  # roles, rooms, skills per account
MAX_SKILL_CHARS = 64


def _field(body: dict[str, Any], name: str, kind: type, required: bool = False) -> Any:
    v = body.get(name)
    if v is None:
        if required:
            raise AdminError(f"{name!r} is required")
        return None
    if kind is float:
        ok = type(v) in (int, float) and not isinstance(v, bool)
    else:
        ok = type(v) is kind
    if not ok:
        raise AdminError(f"{name!r} must be {'a number' if kind is float else 'a ' + kind.__name__}")
    return v


def _texts(body: dict[str, Any], name: str, max_chars: int) -> tuple[str, ...]:
    v = _field(body, name, list) or []
    if len(v) > MAX_LIST_ITEMS or any(type(x) is not str or not x or len(x) > max_chars
                                      for x in v):
        raise AdminError(f"{name!r} must be a list of at most {MAX_LIST_ITEMS} strings of "
                         f"1–{max_chars} characters")
    return tuple(v)


def new_account_from(body: dict[str, Any]) -> NewAccount:
    """``POST /api/admin/users`` ``{user, roles, password, name?, rooms?, capacity?,
    max_compensation?, skills?}``."""
    unknown = set(body) - {"user", "roles", "password", "name", "rooms", "capacity",
                           "max_compensation", "skills"}
    if unknown:
        raise AdminError(f"unknown field(s) {sorted(unknown)[:5]}")
    capacity = _field(body, "capacity", int)
    max_comp = _field(body, "max_compensation", float)
    return NewAccount(user=_field(body, "user", str, required=True),
                      roles=_texts(body, "roles", 32),
                      password=_field(body, "password", str, required=True),
                      name=_field(body, "name", str) or "",
                      rooms=_texts(body, "rooms", MAX_ROOM_CHARS),
                      capacity=capacity,
                      max_compensation=float(max_comp) if max_comp is not None else None,
                      skills=_texts(body, "skills", MAX_SKILL_CHARS))


@dataclass(frozen=True)
class Change:
    """``PATCH /api/admin/users/{user}``: any of the three; each moves the account's epoch
    on (its sessions, tokens and live sockets end)."""

    disabled: bool | None = None
    roles: tuple[str, ...] | None = None
    password: str | None = None


def change_from(body: dict[str, Any]) -> Change:
    unknown = set(body) - {"disabled", "roles", "password"}
    if unknown:
        raise AdminError(f"unknown field(s) {sorted(unknown)[:5]}; send disabled, roles or "
                         f"password")
    c = Change(disabled=_field(body, "disabled", bool),
               roles=_roles(_texts(body, "roles", 32)) if "roles" in body else None,
               password=_field(body, "password", str))
    if c.disabled is None and c.roles is None and c.password is None:
        raise AdminError("send at least one of disabled, roles, password")
    return c


async def apply_change(store: AccountStore, user: str, c: Change) -> Account:
    """One update (one epoch step) whatever the change holds."""
    h = None
    if c.password is not None:
        try:
            h = await hash_password(c.password)
        except PasswordRefused as e:
            raise AdminError(str(e)) from None
    if c.roles is not None and "host" in c.roles:
        a = await store.account(user)
        if a is not None and not a.rooms:
            raise AdminError("a host needs at least one room (a host token is bound to a room)")
    return await _changed(store, user, disabled=c.disabled, roles=c.roles, password_hash=h)


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
