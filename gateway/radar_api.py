"""REST for the question radar, the anomaly report and the webhook delivery log.

* ``GET /api/rooms/{room}/radar?window=60|300|900`` (the room's host, supervisor, admin):
  the radar object, the same one ``room.radar`` pushes (docs/protocol.md).
* ``GET /api/rooms/{room}/radar/report[?day=YYYY-MM-DD]`` (same callers): the per-day,
  per-product figures (questions, complaints, return/refund requests, safety reports) as CSV,
  every day this node counted or the one ``day`` (UTC).
* ``GET /api/webhooks/deliveries`` (admin): the last deliveries, newest first
  (docs/webhooks.md).

HTTP only: authentication and the response shape here; the figures come from the support
plane's radar, anomaly detector and the webhook sender.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from aiohttp import web

from signaling import ErrorCode, ProtocolError

from .http_api import bearer_claims, json_body
from .support.radar import PUSH_WINDOW, WINDOWS

if TYPE_CHECKING:
    from .wiring import Gateway

READERS = ("host", "supervisor", "admin")


def _room(gw: Gateway, request: web.Request) -> str:
    claims = bearer_claims(gw, request, READERS)
    room_id = request.match_info["room"]
    if claims.role == "host" and claims.room != room_id:
        raise ProtocolError(ErrorCode.FORBIDDEN,
                            f"your token is for room {claims.room!r}, not {room_id!r}")
    if gw.rooms.get(room_id) is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown room {room_id!r}")
    return room_id


def _window(request: web.Request) -> int:
    raw = request.query.get("window")
    if raw is None:
        return PUSH_WINDOW
    if raw not in {str(w) for w in WINDOWS}:
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"window must be one of {', '.join(map(str, WINDOWS))}")
    return int(raw)


def _day(request: web.Request) -> str | None:
    """``?day=YYYY-MM-DD`` (a UTC calendar day, as the report's ``day`` column), or every day."""
    raw = request.query.get("day")
    if not raw:
        return None
    try:
        if len(raw) == 10:  # fromisoformat alone also takes "20261206"
            return datetime.date.fromisoformat(raw).isoformat()
    except ValueError:
        pass
    raise ProtocolError(ErrorCode.BAD_REQUEST, "day must be a date YYYY-MM-DD (UTC)")


def setup_radar_routes(app: web.Application, gw: Gateway) -> None:
    async def radar(request: web.Request) -> web.Response:
        room = _room(gw, request)
        return json_body(gw.radar.snapshot(room, _window(request)))

    async def report(request: web.Request) -> web.Response:
        room = _room(gw, request)
        day = _day(request)
        name = f"radar-{room}-{day}.csv" if day else f"radar-{room}.csv"
        return web.Response(
            text=gw.anomaly.detector.report_csv(room, day), content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def deliveries(request: web.Request) -> web.Response:
        bearer_claims(gw, request, ("admin",))
        return json_body({"deliveries": gw.webhooks.deliveries()})

    app.router.add_get("/api/rooms/{room}/radar", radar)
    app.router.add_get("/api/rooms/{room}/radar/report", report)
    app.router.add_get("/api/webhooks/deliveries", deliveries)
