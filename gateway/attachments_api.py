"""HTTP endpoints of attachments: upload to a conversation, read one (or its thumbnail).

``POST /api/conversations/{cid}/attachments`` takes the image as the multipart field
``file`` or as the raw body; ``?source=call&taken_at=<epoch s>`` marks a still taken from a
call (docs/protocol.md#attachments). ``GET /api/attachments/{id}`` (``?thumb=1``) serves the
processed bytes with the type *we* decided, ``nosniff``, a ``Content-Disposition``, a
sandboxing CSP and ``Cache-Control: private``. Same ``Authorization: Bearer`` tokens as the
rest of the REST API; the rules of who may are :mod:`gateway.attachments.service`'s.
Every refusal is JSON ``{error, message}`` with the contract's status.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

from aiohttp import BodyPartReader, web

from signaling import ErrorCode, ProtocolError

from .attachments import AttachmentRefused, AttachmentService, Caller
from .http_api import bearer_claims, json_body

if TYPE_CHECKING:
    from .wiring import Gateway

CALLERS = ("viewer", "agent", "host", "supervisor", "admin")
MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file
_EXT = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "video/webm": "webm",
        "video/x-matroska": "mkv"}


def refused(e: AttachmentRefused) -> web.Response:
    return web.json_response({"error": e.code, "message": e.message}, status=e.status)


def _service(gw: Gateway) -> AttachmentService:
    if gw.attachments is None:
        raise AttachmentRefused("unavailable", "this gateway keeps no attachments: start it "
                                               "with --data-dir or LIVEDESK_DATABASE_URL")
    return gw.attachments


async def _read_limited(stream, limit: int) -> bytes:
    """Read a body or a multipart part, refusing it once it passes ``limit`` bytes."""
    part = isinstance(stream, BodyPartReader)
    buf = bytearray()
    while True:
        chunk = await (stream.read_chunk(64 * 1024) if part else stream.read(64 * 1024))
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > limit:
            raise AttachmentRefused("too_large", f"the file is over {limit} bytes")


async def read_upload(request: web.Request, limit: int, timeout: float) -> bytes:
    """The uploaded file: the multipart field ``file``, or the raw body. Over ``limit``
    bytes is refused as soon as it is known (the declared length, else while reading)."""
    declared = request.content_length
    if declared is not None and declared > limit + MULTIPART_SLACK:
        raise AttachmentRefused("too_large", f"the body is {declared} bytes; the limit is "
                                             f"{limit} bytes")
    try:
        async with asyncio.timeout(timeout):
            if request.content_type.startswith("multipart/"):
                reader = await request.multipart()
                while True:
                    part = await reader.next()
                    if part is None:
                        raise AttachmentRefused("bad_request",
                                                "multipart body has no field 'file'")
                    if isinstance(part, BodyPartReader) and part.name == "file":
                        return await _read_limited(part, limit)
                    if isinstance(part, BodyPartReader):
                        await part.release()
            return await _read_limited(request.content, limit)
    except TimeoutError:
        raise AttachmentRefused("bad_request",
                                f"the body did not arrive within {timeout:g} s") from None
    except (ValueError, AssertionError) as e:  # malformed multipart
        raise AttachmentRefused("bad_request", f"unreadable multipart body: {e}") from None


def _still(request: web.Request) -> tuple[str, float | None]:
    q = request.query
    source = q.get("source", "upload")
    if source not in ("upload", "call"):
        raise AttachmentRefused("bad_request", "source must be 'upload' or 'call'")
    raw = q.get("taken_at")
    if raw is None:
        return source, None
    try:
        taken = float(raw) if len(raw) <= 32 else math.nan
    except ValueError:
        taken = math.nan
    if not math.isfinite(taken) or taken <= 0:
        raise AttachmentRefused("bad_request", "taken_at must be seconds since the epoch")
    return source, taken


def setup_attachment_routes(app: web.Application, gw: Gateway) -> None:
    async def upload(request: web.Request) -> web.Response:
        claims = bearer_claims(gw, request, CALLERS)
        cid = request.match_info["cid"]
        if not cid or len(cid) > 128 or not cid.isprintable():
            raise ProtocolError(ErrorCode.BAD_REQUEST, "cid must be 1–128 printable characters")
        try:
            svc = _service(gw)
            source, taken = _still(request)
            data = await read_upload(request, svc.limits.image.max_bytes,
                                     gw.config.http_body_timeout_s)
            rec = await svc.upload(Caller(claims.user, claims.role), cid, data,
                                   source=source, taken_at=taken)
        except AttachmentRefused as e:
            resp = refused(e)
            if e.code == "too_large":
                resp.force_close()  # the rest of a 50 MB body is not read
            return resp
        resp = json_body(rec.upload_reply())
        resp.set_status(201)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    async def read(request: web.Request) -> web.Response:
        claims = bearer_claims(gw, request, CALLERS)
        thumb = request.query.get("thumb") in ("1", "true")
        try:
            rec, data, ctype = await _service(gw).fetch(Caller(claims.user, claims.role),
                                                        request.match_info["id"], thumb)
        except AttachmentRefused as e:
            return refused(e)
        ext = "jpg" if thumb else _EXT.get(ctype, "bin")
        disposition = "attachment" if rec.kind == "recording" and \
            request.query.get("inline") != "1" else "inline"
        return web.Response(body=data, headers={
            "Content-Type": ctype,
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'{disposition}; filename="{rec.id}{"-thumb" if thumb else ""}.{ext}"',
            "Cache-Control": "private, max-age=3600",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        })

    app.router.add_post("/api/conversations/{cid}/attachments", upload)
    app.router.add_get("/api/attachments/{id}", read)
