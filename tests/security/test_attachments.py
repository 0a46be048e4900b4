"""Attachments over HTTP against a real gateway with a store: what comes back is a clean
re-encoded image, every hostile file gets its typed refusal, and only the conversation's
members and staff may read one (docs/security.md#attachments)."""

from __future__ import annotations

import io
import time

import aiohttp
import pytest
from PIL import Image

from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway
from tests.security import hostile_files as H


@pytest.fixture
async def gw(tmp_path):
    config = Config(dev=True, port=free_port(), data_dir=tmp_path,
                    attachment_uploads_per_minute=100)
    r = await start_gateway(config)
    try:
        yield r
    finally:
        await stop_gateway(r)


async def assigned(r, viewer="v1", agent="a1"):
    a = await r.client("agent", agent, name="Agent")
    assert (await a.request("agent.status", status="available"))["type"] == "ack"
    v = await r.client("viewer", viewer, room=r.room_id, name="Viewer")
    cid = (await v.request("conversation.open", room=r.room_id))["conversation"]
    await v.request("conversation.escalate", conversation=cid)
    await a.event("conversation.assigned", conversation=cid, timeout=5)
    return v, a, cid


def auth(r, role, user, room=None):
    return {"Authorization": f"Bearer {r.token(role, user, room=room)}"}


async def upload(r, cid, data, headers, multipart=True, filename="photo.jpg",
                 content_type="image/jpeg", query=""):
    url = f"{r.url}/api/conversations/{cid}/attachments{query}"
    if multipart:
        form = aiohttp.FormData()
        form.add_field("file", data, filename=filename, content_type=content_type)
        body = form
    else:
        body = data
        headers = dict(headers, **{"Content-Type": content_type})
    async with r.http.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_gps_exif_is_gone_and_the_image_is_served_safely(gw):
    v, a, cid = await assigned(gw)
    vh = auth(gw, "viewer", "v1", gw.room_id)
    status, body = await upload(gw, cid, H.jpeg_with_gps(), vh)
    assert status == 201, body
    assert set(body) >= {"attachment", "content_type", "width", "height", "bytes"}
    assert body["content_type"] == "image/jpeg" and (body["width"], body["height"]) == (64, 48)
    att = body["attachment"]
    async with gw.http.get(f"{gw.url}/api/attachments/{att}", headers=vh) as resp:
        assert resp.status == 200
        data = await resp.read()
        assert resp.headers["Content-Type"] == "image/jpeg"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Content-Disposition"].startswith("inline; filename=")
        assert "private" in resp.headers["Cache-Control"]
    assert len(data) == body["bytes"]
    assert b"Exif" not in data and b"LeakyCam" not in data
    im = Image.open(io.BytesIO(data))
    assert len(im.getexif()) == 0 and "exif" not in im.info
    r, g, b = im.convert("RGB").resize((1, 1)).getpixel((0, 0))
    assert abs(r - 200) < 12 and abs(g - 40) < 12 and abs(b - 40) < 12  # the picture stayed
    async with gw.http.get(f"{gw.url}/api/attachments/{att}?thumb=1", headers=vh) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "image/jpeg"
        assert Image.open(io.BytesIO(await resp.read())).size[0] <= 320


@pytest.mark.parametrize("name,data,out_type,size", [
    ("heic", H.heic(), "image/jpeg", (64, 48)),  # phones' photos: re-encoded as JPEG
    ("webp with alpha", H.webp_with_alpha(), "image/webp", (30, 20)),
    ("png", H.png(), "image/png", (40, 30)),
])
async def test_every_accepted_type_comes_back_re_encoded(gw, name, data, out_type, size):
    v, a, cid = await assigned(gw)
    hdr = auth(gw, "viewer", "v1", gw.room_id)
    status, body = await upload(gw, cid, data, hdr, filename="whatever.bin",
                                content_type="application/octet-stream")
    assert status == 201, (name, body)
    assert body["content_type"] == out_type and (body["width"], body["height"]) == size
    async with gw.http.get(f"{gw.url}/api/attachments/{body['attachment']}",
                           headers=hdr) as resp:
        data_out = await resp.read()
        assert resp.headers["Content-Type"] == out_type
    assert b"Leaky" not in data_out and data_out != data
    assert Image.open(io.BytesIO(data_out)).size == size


@pytest.mark.parametrize("name,data,filename,ctype,status,code", [
    ("bomb", H.png_bomb(), "b.png", "image/png", 413, "too_large"),
    ("bomb by pixel count", H.png_bomb(7_000), "b.png", "image/png", 413, "too_large"),
    ("svg", H.SVG, "x.svg", "image/svg+xml", 415, "unsupported_type"),
    ("svg named png", H.SVG, "x.png", "image/png", 415, "unsupported_type"),
    ("polyglot", H.polyglot(), "p.jpg", "image/jpeg", 400, "bad_request"),
    ("jpeg magic + html", H.jpeg_magic_then_html(), "p.jpg", "image/jpeg", 400, "bad_request"),
    ("text named .jpg", H.TEXT_AS_JPG, "photo.jpg", "image/jpeg", 415, "unsupported_type"),
    ("empty", b"", "e.jpg", "image/jpeg", 400, "bad_request"),
])
async def test_hostile_files_are_refused_with_their_typed_error(gw, name, data, filename,
                                                                ctype, status, code):
    v, a, cid = await assigned(gw)
    got, body = await upload(gw, cid, data, auth(gw, "viewer", "v1", gw.room_id),
                             filename=filename, content_type=ctype)
    assert (got, body["error"]) == (status, code), (name, body)
    assert body["message"]


async def test_a_50_mb_file_is_refused_without_reading_it_all(gw):
    v, a, cid = await assigned(gw)
    big = b"\xff\xd8\xff\xe0" + b"\0" * (50 * 1024 * 1024)
    t0 = time.monotonic()
    for multipart in (False, True):
        try:
            got, body = await upload(gw, cid, big, auth(gw, "viewer", "v1", gw.room_id),
                                     multipart=multipart)
        except aiohttp.ClientError:  # the server answered and closed while we still wrote
            continue
        assert (got, body["error"]) == (413, "too_large"), body
    assert time.monotonic() - t0 < 30
    # the gateway is fine afterwards
    got, body = await upload(gw, cid, H.png(), auth(gw, "viewer", "v1", gw.room_id),
                             multipart=False, content_type="image/png")
    assert got == 201 and body["content_type"] == "image/png", body


async def test_who_may_read_and_upload(gw):
    v, a, cid = await assigned(gw)
    room = gw.room_id
    _, body = await upload(gw, cid, H.png(), auth(gw, "viewer", "v1", room), multipart=False,
                           content_type="application/octet-stream")
    url = f"{gw.url}/api/attachments/{body['attachment']}"
    expect = {("viewer", "v1"): 200, ("agent", "a1"): 200, ("admin", "boss"): 200,
              ("supervisor", "sup"): 200, ("viewer", "v2"): 404, ("agent", "a2"): 403,
              ("host", "h1"): 403}
    for (role, user), status in expect.items():
        hdr = auth(gw, role, user, room if role in ("viewer", "host") else None)
        async with gw.http.get(url, headers=hdr) as resp:
            assert resp.status == status, (role, user, resp.status, await resp.text())
            if status >= 400:
                assert (await resp.json())["error"] == {403: "forbidden", 404: "not_found"}[status]
    # uploading: another viewer does not learn the conversation exists; an unassigned agent
    # and a host outside the call are refused
    for (role, user), status in {("viewer", "v2"): 404, ("agent", "a2"): 403,
                                 ("host", "h1"): 403, ("agent", "a1"): 201}.items():
        got, b = await upload(gw, cid, H.png(), auth(gw, role, user, room if role != "agent"
                                                     else None), multipart=False,
                              content_type="image/png")
        assert got == status, (role, user, b)
    async with gw.http.get(url) as resp:  # no token
        assert resp.status == 401
    async with gw.http.get(f"{gw.url}/api/attachments/..%2F..%2Fetc%2Fpasswd",
                           headers=auth(gw, "admin", "boss")) as resp:
        assert resp.status == 404


async def test_uploads_per_minute_are_limited(tmp_path):
    r = await start_gateway(Config(dev=True, port=free_port(), data_dir=tmp_path,
                                   attachment_uploads_per_minute=2))
    try:
        v, a, cid = await assigned(r)
        hdr = auth(r, "viewer", "v1", r.room_id)
        got = [(await upload(r, cid, H.png(), hdr, multipart=False,
                             content_type="image/png"))[0] for _ in range(3)]
        assert got[:2] == [201, 201]
        status, body = await upload(r, cid, H.png(), hdr, multipart=False)
        assert (status, body["error"]) == (429, "rate_limited")
    finally:
        await stop_gateway(r)


async def test_total_bytes_per_uploader_are_limited(tmp_path):
    r = await start_gateway(Config(dev=True, port=free_port(), data_dir=tmp_path,
                                   attachment_user_bytes=1000))
    try:
        v, a, cid = await assigned(r)
        hdr = auth(r, "viewer", "v1", r.room_id)
        results = [await upload(r, cid, H.png(size=(200, 200)), hdr, multipart=False,
                                content_type="image/png") for _ in range(12)]
        assert results[0][0] == 201
        stored = sum(b["bytes"] for s, b in results if s == 201)
        assert 0 < stored <= 1000  # never past the limit
        assert (results[-1][0], results[-1][1]["error"]) == (413, "too_large")
    finally:
        await stop_gateway(r)


async def test_message_send_carries_attachments_and_they_are_checked(gw):
    v, a, cid = await assigned(gw)
    room = gw.room_id
    _, mine = await upload(gw, cid, H.png(), auth(gw, "viewer", "v1", room), multipart=False)
    _, agents = await upload(gw, cid, H.png(), auth(gw, "agent", "a1"), multipart=False)
    ok = await v.request("message.send", conversation=cid, text="", client_msg_id="m1",
                         attachments=[mine["attachment"]])
    assert ok.get("type") != "error", ok
    got = await a.event("message", conversation=cid, client_msg_id="m1", timeout=5)
    assert got["attachments"] == [{"attachment": mine["attachment"], "content_type": "image/png",
                                   "width": 40, "height": 30}]
    # someone else's upload, an unknown id, six ids: typed refusals, nothing posted
    e = await v.request("message.send", conversation=cid, text="x", client_msg_id="m2",
                        attachments=[agents["attachment"]])
    assert (e["type"], e["code"]) == ("error", "forbidden"), e
    e = await v.request("message.send", conversation=cid, text="x", client_msg_id="m3",
                        attachments=["att_" + "A" * 22])
    assert (e["type"], e["code"]) == ("error", "not_found"), e
    e = await v.request("message.send", conversation=cid, text="x", client_msg_id="m4",
                        attachments=[mine["attachment"]] * 6)
    assert (e["type"], e["code"]) == ("error", "too_large"), e
    # another conversation's attachment
    v2, a2, cid2 = await assigned(gw, viewer="v9", agent="a9")
    e = await v2.request("message.send", conversation=cid2, text="x", client_msg_id="m5",
                         attachments=[mine["attachment"]])
    assert (e["type"], e["code"]) == ("error", "not_found"), e
    snap = await v.request("conversation.get", conversation=cid)
    sent = [m for m in snap["messages"] if m.get("client_msg_id") == "m1"]
    assert sent and sent[0]["attachments"][0]["attachment"] == mine["attachment"]
    assert not [m for m in snap["messages"] if m.get("client_msg_id") in ("m2", "m3", "m4")]


async def test_compensation_evidence_is_in_the_audit(gw):
    v, a, cid = await assigned(gw)
    _, photo = await upload(gw, cid, H.jpeg_with_gps(), auth(gw, "viewer", "v1", gw.room_id))
    r = await a.request("action.compensate", conversation=cid, kind="coupon", amount=5.0,
                        reason="坏果", attachments=[photo["attachment"]])
    assert r["type"] == "action.result" and r["status"] == "done", r
    e = await a.request("action.compensate", conversation=cid, kind="coupon", amount=5.0,
                        reason="坏果", attachments=["att_" + "B" * 22])
    assert (e["type"], e["code"]) == ("error", "not_found"), e
    admin = await gw.client("admin", "boss")
    await admin.request("queue.get")  # live: watches the admins topic
    audit = await admin.request("audit.list", conversation=cid)
    entries = [x for x in audit["entries"] if x["action"] == "compensate"]
    assert len(entries) == 1, audit
    assert [x["attachment"] for x in entries[0]["attachments"]] == [photo["attachment"]]
    # above the agent's authority: the approval card carries the evidence, and so does the
    # audit of the decision
    big = await a.request("action.compensate", conversation=cid, kind="refund", amount=500.0,
                          reason="整箱坏果", attachments=[photo["attachment"]])
    assert big["status"] == "pending_approval", big
    req = await admin.event("approval.request", approval=big["approval"])
    assert [x["attachment"] for x in req["attachments"]] == [photo["attachment"]]
    await admin.request("approval.decide", approval=big["approval"], approve=False)
    audit = await admin.request("audit.list", conversation=cid)
    decided = [x for x in audit["entries"] if x["action"] == "approval"]
    assert decided and decided[0]["attachments"][0]["attachment"] == photo["attachment"]
    # a return carries its evidence the same way
    e = await a.request("action.return", conversation=cid, order_id="o-none", reason="坏果",
                        attachments=["att_" + "C" * 22])
    assert (e["type"], e["code"]) == ("error", "not_found"), e
    assert "not an attachment of this conversation" in e["message"], e
