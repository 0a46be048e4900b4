"""Argon2id password hashes, computed off the event loop.

Why a thread: one hash or check takes tens of milliseconds of CPU and 64 MiB of memory
(argon2-cffi's defaults, RFC 9106's second recommendation); on the loop it would stall every
socket of the node. At most ``MAX_PARALLEL`` run at once, so a burst of sign-ins cannot
take the node's memory. An unknown user is checked against a dummy hash, so a wrong user
and a wrong password take the same time (no user enumeration by timing).
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024  # Argon2 takes any length; this bounds the work a request asks for
MAX_PARALLEL = 4

_hasher = PasswordHasher()
_gate: asyncio.Semaphore | None = None
_dummy: str | None = None


class PasswordRefused(ValueError):
    """A new password that does not meet the rule (the message says which)."""


def check_new_password(password: str) -> None:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise PasswordRefused(f"a password must be {MIN_PASSWORD_CHARS}–{MAX_PASSWORD_CHARS} "
                              f"characters long")


def hash_password_sync(password: str) -> str:
    """For the CLI (no loop to protect)."""
    check_new_password(password)
    return _hasher.hash(password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def _in_thread(fn, *args):
    global _gate
    if _gate is None:
        _gate = asyncio.Semaphore(MAX_PARALLEL)
    async with _gate:
        return await asyncio.to_thread(fn, *args)


async def hash_password(password: str) -> str:
    check_new_password(password)
    return await _in_thread(_hasher.hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``; ``None`` (no such user) is checked against
    a dummy hash and is always False, in the same time."""
    global _dummy
    if len(password) > MAX_PASSWORD_CHARS:
        password = password[:MAX_PASSWORD_CHARS + 1]  # still checked, never matches
    if stored is None:
        if _dummy is None:
            _dummy = await _in_thread(_hasher.hash, "livedesk-no-such-user")
        await _in_thread(_verify, _dummy, password)
        return False
    return await _in_thread(_verify, stored, password)
