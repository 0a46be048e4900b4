"""What an attachment is, and the one typed refusal every attachment path raises.

An attachment belongs to one conversation (and so to that conversation's viewer, which is
how erasure and retention find it). Its id is random (``att_`` + 128 bits, URL-safe): the
client never names a path, and an id cannot be guessed from another.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

KINDS = ("image", "recording")
SOURCES = ("upload", "call")
ID_PREFIX = "att_"


def new_id() -> str:
    return ID_PREFIX + secrets.token_urlsafe(16)


def valid_id(s: str) -> bool:
    """An id we could have made: the prefix, then 22 URL-safe base64 characters."""
    body = s[len(ID_PREFIX):]
    return (s.startswith(ID_PREFIX) and len(body) == 22 and body.isascii()
            and all(c.isalnum() or c in "-_" for c in body))


@dataclass
class Attachment:
    """One stored attachment: an image (processed, with its thumbnail) or a call recording."""

    id: str
    conversation: str
    viewer: str  # the conversation's viewer: erasure and retention follow them
    uploader: str
    uploader_role: str
    kind: str  # image | recording
    content_type: str  # what we serve it as (set by us, never by the client)
    width: int
    height: int
    bytes: int  # size of the full (processed) file
    created_at: float = field(default_factory=time.time)
    source: str = "upload"  # upload | call (a still taken from a call)
    taken_at: float | None = None  # stills: when in the call the frame was taken
    thumb_type: str | None = None  # the thumbnail's content type (images only)
    meta: dict[str, Any] = field(default_factory=dict)  # recordings: call, user, duration_s

    def ref(self) -> dict[str, Any]:
        """The form carried in chat events and actions (``{attachment, content_type,
        width, height}``, plus ``kind`` and ``source`` when they are not the default)."""
        d: dict[str, Any] = {"attachment": self.id, "content_type": self.content_type,
                             "width": self.width, "height": self.height}
        if self.kind != "image":
            d["kind"] = self.kind
        if self.source != "upload":
            d["source"] = self.source
        if self.taken_at is not None:
            d["taken_at"] = self.taken_at
        if self.meta:
            d.update({k: v for k, v in self.meta.items() if k in ("call", "user", "duration_s")})
        return d

    def upload_reply(self) -> dict[str, Any]:
        """The 201 body of ``POST /api/conversations/{cid}/attachments`` (the contract)."""
        return {"attachment": self.id, "content_type": self.content_type,
                "width": self.width, "height": self.height, "bytes": self.bytes,
                "kind": self.kind, "source": self.source,
                **({"taken_at": self.taken_at} if self.taken_at is not None else {})}


# HTTP status of each refusal code (the JSON body is {error, message})
STATUS = {"bad_request": 400, "forbidden": 403, "not_found": 404, "too_large": 413,
          "unsupported_type": 415, "rate_limited": 429, "unavailable": 503,
          "unauthenticated": 401}


class AttachmentRefused(Exception):
    """A typed refusal: ``code`` is the contract's error code, ``message`` says why."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 400)
