"""The attachment service: who may upload and read, the limits, processing off the loop.

It owns every attachment rule, once: the HTTP endpoints (``gateway/attachments_api.py``),
``message.send`` and the actions (``gateway/support``) and the call recorder
(``gateway/media``) all come here. It knows nothing of HTTP, sockets or media: callers hand
it a :class:`Caller` (user, role) and get records or an :class:`AttachmentRefused`.

Who is a member of a conversation is asked through an :class:`AccessPort` (the composition
root implements it from the support plane's conversations and the media plane's calls), so
this package imports neither plane.

**Who may upload** to a conversation: its viewer, its assigned agent, a host taking part in
its live call, and staff (supervisor, admin). **Who may read** an attachment: the
conversation's viewer, an agent who is or was assigned to it, a host in its live call, and
staff. Another viewer gets 404 (no hint that it exists); an agent who never handled the
conversation, or a host not in its call, gets 403.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import images
from .records import Attachment, AttachmentRefused, new_id, valid_id
from .storage import AttachmentStorage

STAFF = ("supervisor", "admin")
MAX_PER_MESSAGE = 5
RATE_WINDOW_S = 60.0


@dataclass(frozen=True)
class Caller:
    user: str
    role: str


@dataclass(frozen=True)
class ConversationAccess:
    """What the attachment rules need to know about one conversation, right now."""

    conversation: str
    viewer: str
    agent: str | None  # assigned now
    handled_by: tuple[str, ...] = ()  # every agent ever assigned (the store's record)
    in_call: tuple[str, ...] = ()  # participants of its live call (hosts included)


class AccessPort(Protocol):
    async def access(self, conversation: str) -> ConversationAccess | None: ...


@dataclass(frozen=True)
class AttachmentLimits:
    image: images.ImageLimits = images.ImageLimits()
    uploads_per_minute: int = 20
    user_bytes: int = 200 * 1024 * 1024
    workers: int = 2

    @classmethod
    def from_config(cls, c) -> AttachmentLimits:
        return cls(images.ImageLimits(max_bytes=c.attachment_max_bytes,
                                      max_pixels=c.attachment_max_pixels,
                                      max_side=c.attachment_max_side,
                                      out_side=c.attachment_out_side,
                                      thumb_side=c.attachment_thumb_side),
                   uploads_per_minute=c.attachment_uploads_per_minute,
                   user_bytes=c.attachment_user_bytes, workers=c.attachment_workers)


class AttachmentService:
    def __init__(self, storage: AttachmentStorage, access: AccessPort,
                 limits: AttachmentLimits | None = None,
                 exists: Callable[[str], Awaitable[bool]] | None = None,
                 sweep_every_s: float = 600.0):
        self.storage = storage
        self.access_port = access
        self.limits = limits or AttachmentLimits()
        self.exists = exists
        self.sweep_every_s = sweep_every_s
        self._pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="attachments")
        self._recent: dict[str, deque[float]] = {}
        self._sweeper: asyncio.Task | None = None

    async def start(self) -> None:
        await self.storage.start()
        if self.exists is not None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop(),
                                                                   name="attachments-sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except asyncio.CancelledError:
                pass
        self._pool.shutdown(wait=False, cancel_futures=True)
        await self.storage.close()

    async def _sweep_loop(self) -> None:
        assert self.exists is not None
        while True:
            await asyncio.sleep(self.sweep_every_s)
            try:
                await self.storage.sweep(self.exists)
            except Exception:  # noqa: BLE001 - the next round tries again
                import logging
                logging.getLogger(__name__).exception("attachments sweep failed")

    # --- who may ---------------------------------------------------------------------------
    async def _access(self, conversation: str) -> ConversationAccess:
        a = await self.access_port.access(conversation)
        if a is None:
            raise AttachmentRefused("not_found", f"unknown conversation {conversation!r}")
        return a

    def _may_upload(self, who: Caller, a: ConversationAccess) -> None:
        if who.role in STAFF:
            return
        if who.role == "viewer":
            if who.user != a.viewer:
                raise AttachmentRefused("not_found", f"unknown conversation {a.conversation!r}")
            return
        if who.role == "agent" and who.user == a.agent:
            return
        if who.role == "host" and who.user in a.in_call:
            return
        raise AttachmentRefused("forbidden", "only the conversation's viewer, its assigned "
                                             "agent, a host in its call and staff may add "
                                             "attachments")

    def _may_read(self, who: Caller, rec: Attachment, a: ConversationAccess | None) -> None:
        if who.role in STAFF:
            return
        if who.role == "viewer":
            if who.user == rec.viewer:
                return
            raise AttachmentRefused("not_found", "unknown attachment")
        if a is not None:
            if who.role == "agent" and (who.user == a.agent or who.user in a.handled_by):
                return
            if who.role == "host" and who.user in a.in_call:
                return
        raise AttachmentRefused("forbidden", "only the conversation's members and staff may "
                                             "read its attachments")

    def _admit(self, user: str) -> None:
        now = time.monotonic()
        q = self._recent.setdefault(user, deque())
        while q and q[0] <= now - RATE_WINDOW_S:
            q.popleft()
        if len(q) >= self.limits.uploads_per_minute:
            raise AttachmentRefused("rate_limited",
                                    f"at most {self.limits.uploads_per_minute} uploads a minute; "
                                    f"retry in {int(q[0] + RATE_WINDOW_S - now) + 1} s")
        q.append(now)

    # --- operations ------------------------------------------------------------------------
    async def upload(self, who: Caller, conversation: str, data: bytes,
                     source: str = "upload", taken_at: float | None = None) -> Attachment:
        """Check, process (in the pool) and store one image; the stored record."""
        a = await self._access(conversation)
        self._may_upload(who, a)
        self._admit(who.user)
        if len(data) > self.limits.image.max_bytes:
            raise AttachmentRefused("too_large", f"the file is over "
                                                 f"{self.limits.image.max_bytes} bytes")
        loop = asyncio.get_running_loop()
        p = await loop.run_in_executor(self._pool, images.process, data, self.limits.image)
        if await self.storage.usage(who.user) + len(p.data) > self.limits.user_bytes:
            raise AttachmentRefused("too_large", f"you have stored {self.limits.user_bytes} "
                                                 f"bytes of attachments, the limit")
        rec = Attachment(id=new_id(), conversation=conversation, viewer=a.viewer,
                         uploader=who.user, uploader_role=who.role, kind="image",
                         content_type=p.content_type, width=p.width, height=p.height,
                         bytes=len(p.data), source=source, taken_at=taken_at,
                         thumb_type=p.thumb_type)
        await self.storage.put(rec, p.data, p.thumb)
        return rec

    async def store_recording(self, conversation: str, viewer: str, by: Caller, path: Path,
                              content_type: str, meta: dict) -> Attachment:
        """A finished call recording, the file the recorder wrote (nothing to process; the
        local storage moves it rather than reading it into memory)."""
        size = (await asyncio.get_running_loop().run_in_executor(None, path.stat)).st_size
        rec = Attachment(id=new_id(), conversation=conversation, viewer=viewer,
                         uploader=by.user, uploader_role=by.role, kind="recording",
                         content_type=content_type, width=int(meta.get("width") or 0),
                         height=int(meta.get("height") or 0), bytes=size, source="call",
                         meta=meta)
        await self.storage.put_file(rec, path)
        return rec

    async def fetch(self, who: Caller, attachment_id: str,
                    thumb: bool = False) -> tuple[Attachment, bytes, str]:
        """The record, the bytes to serve and their content type."""
        rec = await self.storage.get(attachment_id) if valid_id(attachment_id) else None
        if rec is None:
            raise AttachmentRefused("not_found", "unknown attachment")
        a = None if who.role in STAFF else await self.access_port.access(rec.conversation)
        self._may_read(who, rec, a)
        if thumb and rec.thumb_type is None:
            raise AttachmentRefused("not_found", "this attachment has no thumbnail")
        data = await self.storage.read(rec.id, thumb)
        if data is None:
            raise AttachmentRefused("not_found", "unknown attachment")
        return rec, data, (rec.thumb_type or rec.content_type) if thumb else rec.content_type

    async def resolve(self, who: Caller, conversation: str, ids: list[str],
                      what: str = "attachments", own_only: bool = True) -> list[Attachment]:
        """The records of ``ids`` for a message or an action in ``conversation``: at most
        ``MAX_PER_MESSAGE``, no repeats, each an attachment of *this* conversation, and
        (``own_only``, messages) uploaded by ``who`` unless ``who`` is staff. Actions pass
        ``own_only=False``: their evidence is usually what the viewer sent."""
        if len(ids) > MAX_PER_MESSAGE:
            raise AttachmentRefused("too_large", f"{what}: at most {MAX_PER_MESSAGE} "
                                                 f"attachments, got {len(ids)}")
        if len(set(ids)) != len(ids):
            raise AttachmentRefused("bad_request", f"{what}: an attachment is listed twice")
        out = []
        for i in ids:
            rec = await self.storage.get(i) if valid_id(i) else None
            if rec is None or rec.conversation != conversation:
                raise AttachmentRefused("not_found", f"{what}: {i!r} is not an attachment "
                                                     f"of this conversation")
            if own_only and rec.uploader != who.user and who.role not in STAFF:
                raise AttachmentRefused("forbidden", f"{what}: {i!r} was uploaded by someone "
                                                     f"else")
            out.append(rec)
        return out
