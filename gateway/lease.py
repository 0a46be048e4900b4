"""A Redis lease with a fencing number: one holder at a time among many nodes.

Why a fencing number and not only the lease: a lease is a promise about *time*, and a
holder can be paused (a long GC, a stalled VM, a slow disk) past its expiry without knowing
it. Another node then takes the lease and both believe they lead. Each acquisition therefore
also takes the next number of a counter; the holder writes that number with everything it
writes, and the place it writes to refuses a number older than the newest it has seen
(``gateway/archiver.py`` does this in PostgreSQL). A woken ex-holder's writes are refused.

Redis layout (hash tag ``{ld}``, the support plane's slot):

* ``<key>``        the lease: ``SET key token NX PX ttl`` (the token is random per acquisition)
* ``<key>:fence``  the counter fencing numbers come from (``INCR``)

All three operations are single scripts that check the token, so a holder whose lease
expired and was taken by another can neither renew nor release the new holder's lease.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

# KEYS: lease, fence counter. ARGV: token, ttl ms, floor (the newest fence the writes'
# destination has seen: after Redis lost its data the counter restarts, and numbers at or
# below the floor would all be refused)
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local f = redis.call('INCR', KEYS[2])
  local floor = tonumber(ARGV[3])
  if f <= floor then
    f = floor + 1
    redis.call('SET', KEYS[2], f)
  end
  return f
end
return 0
"""
# KEYS: lease. ARGV: token, ttl ms
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Held:
    """One acquisition: its token and fencing number."""

    token: str
    fence: int


class RedisLease:
    """``acquire`` → :class:`Held` or None; ``renew``/``release`` only act on our own hold."""

    def __init__(self, redis: aioredis.Redis, key: str, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError("a lease needs a positive TTL")
        self.redis = redis
        self.key = key
        self.fence_key = key + ":fence"
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self, floor: int = 0) -> Held | None:
        """Take the lease if nobody holds it; its fencing number is above ``floor``."""
        token = secrets.token_hex(16)
        fence = int(await self._acquire(keys=[self.key, self.fence_key],
                                        args=[token, self.ttl_ms, int(floor)]))
        return Held(token, fence) if fence > 0 else None

    async def renew(self, held: Held) -> bool:
        """Extend our hold by the TTL; False if it is no longer ours (expired, taken)."""
        return int(await self._renew(keys=[self.key], args=[held.token, self.ttl_ms])) == 1

    async def release(self, held: Held) -> bool:
        """Give the lease up now (a clean shutdown: the next holder need not wait the TTL)."""
        return int(await self._release(keys=[self.key], args=[held.token])) == 1

    async def holder_token(self) -> str | None:
        raw = await self.redis.get(self.key)
        return raw.decode() if isinstance(raw, bytes) else raw
