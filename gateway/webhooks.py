"""Signed webhooks out to the shop's systems (docs/webhooks.md).

Each event is ``POST``-ed as JSON ``{"event", "id", "created_at", …}`` to every configured
URL with ``Authorization: <JWT>``: HS256 with the webhook secret, claims ``iat`` (when this
attempt was signed) and ``sha256`` (base64 of the body's SHA-256), a ``kid`` header naming
the key, like LiveKit's. :func:`verify` is the receiver's check, documented with a copy in
docs/webhooks.md.

Delivery is at least once: a failed attempt (connection refused, timeout, non-2xx) is retried
with exponential backoff (``webhook_retry_base_s`` doubling up to ``webhook_retry_max_s``,
``webhook_max_attempts`` attempts), each attempt signed afresh so a late delivery still
passes the receiver's ``iat`` check; the body (and its ``id``, for the receiver's
de-duplication) stays the same. The last ``LOG_SIZE`` deliveries are kept in a log admins
read over REST (``GET /api/webhooks/deliveries``). Pending retries live in this node's memory:
a restart loses them (docs/webhooks.md, limits).

What is sent (:class:`WebhookEvents` subscribes, one place): ``conversation.resolved``
(with its outcome), ``conversation.rated`` (the viewer's CSAT, given after the end),
``order.assisted`` (a support-assisted order: a conversion), ``action.recorded``
(compensation and returns granted), ``anomaly.raised`` / ``anomaly.cleared``,
``surge.warning`` / ``surge.on`` / ``surge.off``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import jwt

from signaling.events import Events

from .support.events import (
    ActionRecorded,
    AnomalyCleared,
    AnomalyRaised,
    ConversationResolved,
    ConversionCounted,
    CsatGiven,
    SurgeChanged,
    SurgeWarned,
)

log = logging.getLogger(__name__)

MAX_AGE_S = 300  # verify: an ``iat`` older than this is a replay
MAX_SKEW_S = 60  # verify: an ``iat`` further in the future than this is refused too
LOG_SIZE = 1000  # deliveries kept in the admins' log
MAX_PENDING = 10_000  # deliveries waiting for a retry; beyond: dropped (logged, in the log)
EVENTS = ("conversation.resolved", "conversation.rated", "order.assisted", "action.recorded",
          "anomaly.raised", "anomaly.cleared", "surge.warning", "surge.on", "surge.off")


class WebhookError(ValueError):
    """:func:`verify` refused a delivery; the message says why."""


def body_hash(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def sign(body: bytes, secret: str, key_id: str = "livedesk", now: float | None = None) -> str:
    """The ``Authorization`` value for ``body``: an HS256 JWT with ``iat`` and ``sha256``."""
    iat = int(time.time() if now is None else now)
    return jwt.encode({"iss": key_id, "iat": iat, "sha256": body_hash(body)}, secret,
                      algorithm="HS256", headers={"kid": key_id})


def verify(body: bytes, authorization: str, secret: str) -> dict:
    """The receiver's check: the claims if ``authorization`` is an HS256 JWT signed with
    ``secret`` whose ``sha256`` is the body's and whose ``iat`` is at most 5 minutes old;
    else :class:`WebhookError` (a forged, altered or replayed delivery)."""
    token = authorization.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"],
                            options={"require": ["iat", "sha256"], "verify_iat": False})
    except jwt.PyJWTError as e:
        raise WebhookError(f"bad signature: {e}") from None
    if not isinstance(claims.get("sha256"), str) or not secrets.compare_digest(
            claims["sha256"], body_hash(body)):
        raise WebhookError("the body does not match the signed sha256")
    iat = claims["iat"]
    now = time.time()
    if isinstance(iat, bool) or not isinstance(iat, (int, float)):
        raise WebhookError("iat is not a number")
    if now - iat > MAX_AGE_S:
        raise WebhookError(f"iat is {now - iat:.0f} s old (over {MAX_AGE_S} s): a replay")
    if iat - now > MAX_SKEW_S:
        raise WebhookError("iat is in the future")
    return claims


@dataclass(frozen=True)
class WebhookConfig:
    urls: tuple[str, ...] = ()
    secret: str = ""
    key_id: str = "livedesk"
    events: tuple[str, ...] = ()  # empty: every event
    timeout_s: float = 5.0
    retry_base_s: float = 1.0
    retry_max_s: float = 300.0
    max_attempts: int = 12


@dataclass
class Delivery:
    """One event to one URL, as the admins' log shows it."""
    id: str
    event: str
    url: str
    created_at: float
    state: str = "pending"  # pending | delivered | failed
    attempts: int = 0
    status: int | None = None
    error: str | None = None
    next_attempt_at: float | None = None
    delivered_at: float | None = None
    body: bytes = field(default=b"", repr=False)

    def to_wire(self) -> dict[str, Any]:
        d = asdict(self)
        del d["body"]
        return d


class Webhooks:
    """Sends events to the configured URLs, retries, keeps the delivery log."""

    def __init__(self, config: WebhookConfig, metrics: Any = None):
        self.config = config
        self.metrics = metrics
        self.log: deque[Delivery] = deque(maxlen=LOG_SIZE)
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def enabled(self) -> bool:
        return bool(self.config.urls and self.config.secret)

    def send(self, event: str, payload: dict[str, Any]) -> list[Delivery]:
        """Queue ``event`` (with ``payload``'s fields) to every URL; returns the deliveries."""
        if not self.enabled or (self.config.events and event not in self.config.events):
            return []
        now = time.time()
        body = {"event": event, "id": "wh_" + secrets.token_hex(8), "created_at": now, **payload}
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":"),
                         default=str).encode("utf-8")
        out = []
        for url in self.config.urls:
            d = Delivery(id=body["id"], event=event, url=url, created_at=now, body=raw)
            self.log.append(d)
            out.append(d)
            if len(self._tasks) >= MAX_PENDING:
                d.state, d.error = "failed", "too many deliveries pending"
                log.error("webhook %s to %s dropped: %d pending", event, url, MAX_PENDING)
                continue
            t = asyncio.get_running_loop().create_task(self._deliver(d))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
        return out

    async def _deliver(self, d: Delivery) -> None:
        cfg = self.config
        delay = cfg.retry_base_s
        while True:
            d.attempts += 1
            d.next_attempt_at = None
            try:
                status = await self._post(d)
                d.status, d.error = status, None if 200 <= status < 300 else f"HTTP {status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                d.status, d.error = None, (str(e) or e.__class__.__name__)[:300]
            if d.error is None:
                d.state, d.delivered_at = "delivered", time.time()
                self._count("delivered")
                return
            if d.attempts >= cfg.max_attempts:
                d.state = "failed"
                self._count("failed")
                log.warning("webhook %s to %s failed after %d attempts: %s", d.event, d.url,
                            d.attempts, d.error)
                return
            self._count("retried")
            d.next_attempt_at = time.time() + delay
            await asyncio.sleep(delay)
            delay = min(delay * 2, cfg.retry_max_s)

    async def _post(self, d: Delivery) -> int:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json",
                   "Authorization": sign(d.body, self.config.secret, self.config.key_id)}
        async with self._http.post(d.url, data=d.body, headers=headers, allow_redirects=False,
                                   timeout=aiohttp.ClientTimeout(
                                       total=self.config.timeout_s)) as resp:
            await resp.read()
            return resp.status

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.webhooks.labels(result=result).inc()

    def deliveries(self, limit: int = 200) -> list[dict[str, Any]]:
        """Newest first: what the admins' log shows."""
        return [d.to_wire() for d in list(self.log)[::-1][:limit]]

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()


class WebhookEvents:
    """Which domain events go out as which webhook, and with what fields (one place).

    ``outcome_of(conversation)`` is the workspace's outcome of an ended conversation
    (``resolved_by_bot``, ``resolved_by_agent``, ``abandoned``; ``None`` if it had none): the
    composition root passes it in, so the webhook carries the same outcome the dashboard
    counts. The outcomes part subscribes to ``ConversationResolved`` before this one (it is
    built first), so the outcome is known when the webhook is built."""

    def __init__(self, webhooks: Webhooks, events: Events,
                 outcome_of: Callable[[str], str | None] = lambda cid: None):
        self.webhooks = webhooks
        self.outcome_of = outcome_of
        events.subscribe(ConversationResolved, self._resolved)
        events.subscribe(CsatGiven, self._rated)
        events.subscribe(ConversionCounted, self._conversion)
        events.subscribe(ActionRecorded, self._action)
        events.subscribe(AnomalyRaised, self._anomaly)
        events.subscribe(AnomalyCleared, self._anomaly)
        events.subscribe(SurgeWarned, self._warned)
        events.subscribe(SurgeChanged, self._surge)

    def _resolved(self, e: ConversationResolved) -> None:
        c = e.conversation
        self.webhooks.send("conversation.resolved", {
            "conversation": c.id, "room": c.room, "viewer": c.viewer, "agent": c.agent,
            "outcome": getattr(c, "resolved_by", None), "escalated": c.escalated_at is not None,
            "mood": c.mood, "result": self.outcome_of(c.id)})

    def _rated(self, e: CsatGiven) -> None:
        c = e.conversation
        self.webhooks.send("conversation.rated", {
            "conversation": c.id, "room": c.room, "viewer": c.viewer, "agent": c.agent,
            "rating": e.rating, "comment": e.comment, "rated_at": e.ts,
            "outcome": getattr(c, "resolved_by", None), "result": self.outcome_of(c.id)})

    def _conversion(self, e: ConversionCounted) -> None:
        c = e.conversion
        self.webhooks.send("order.assisted", {
            "room": c.room, "order_id": c.order_id, "viewer": c.user, "sku": c.sku,
            "qty": c.qty, "conversation": c.conversation, "agent": c.agent, "counted_at": c.ts})

    def _action(self, e: ActionRecorded) -> None:
        self.webhooks.send("action.recorded", {"action": dict(e.entry)})

    def _anomaly(self, e: AnomalyRaised | AnomalyCleared) -> None:
        name = "anomaly.raised" if isinstance(e, AnomalyRaised) else "anomaly.cleared"
        self.webhooks.send(name, {k: v for k, v in asdict(e).items()})

    def _warned(self, e: SurgeWarned) -> None:
        self.webhooks.send("surge.warning", asdict(e))

    def _surge(self, e: SurgeChanged) -> None:
        body = asdict(e)
        del body["episode"]  # which node announces it: internal
        self.webhooks.send("surge.on" if e.on else "surge.off", body)
