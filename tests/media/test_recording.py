"""Recording a call at the gateway, with the viewer's consent (docs/media.md#recording):
aiortc peers in three colours, the recording read back with ``av``."""

from __future__ import annotations

import asyncio
import io
import time

import av
import numpy as np
import pytest

from tests.conftest import start_gateway, stop_gateway
from tests.media.conftest import EscalatingStub, escalated, media_config, ring
from tests.media.rtc_client import BLUE, GREEN, RED, RtcClient

RECORD_S = 10.0


@pytest.fixture
async def gw(tmp_path):
    r = await start_gateway(media_config(data_dir=tmp_path), responder=EscalatingStub())
    try:
        yield r
    finally:
        await stop_gateway(r)


def taps(media) -> int:
    return sum(len(s.frame_taps) for s in media.forwarder._sources.values())


async def three_party(r):
    v, a, cid = await escalated(r)
    h = await r.client("host", "h1", room=r.room_id, name="Host")
    await h.request("ping")
    call = await ring(v, a, cid)
    vc, ac, hc = RtcClient(v, "v1", RED), RtcClient(a, "a1", GREEN), RtcClient(h, "h1", BLUE)
    await vc.start(call)
    await ac.start(call)
    await a.request("call.invite", call=call, user="h1")
    await h.event("call.incoming", call=call)
    await h.request("call.join", call=call)
    await hc.start(call)
    await asyncio.gather(ac.wait_colour("v1", RED), ac.wait_colour("h1", BLUE),
                         vc.wait_colour("a1", GREEN), hc.wait_colour("v1", RED),
                         ac.wait_audio("v1"))
    return v, a, h, cid, call, (vc, ac, hc)


def read_back(data: bytes) -> dict:
    """Duration, decoded frames' mean colour, decoded audio frames, of one recording."""
    c = av.open(io.BytesIO(data))
    try:
        kinds = {s.type for s in c.streams}
        duration = c.duration / 1e6 if c.duration else 0.0
        colours, vframes, aframes = [], 0, 0
        for frame in c.decode(*c.streams):
            if isinstance(frame, av.VideoFrame):
                vframes += 1
                if vframes % 10 == 0:
                    colours.append(frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0))
            else:
                aframes += 1
        return {"kinds": kinds, "duration": duration, "video_frames": vframes,
                "audio_frames": aframes, "colour": np.median(colours, axis=0) if colours
                else None}
    finally:
        c.close()


async def test_three_party_recording_with_consent_read_back_with_av(gw):
    media = gw.gw.media
    v, a, h, cid, call, clients = await three_party(gw)
    try:
        # asked: everyone is told; nothing is recorded before the viewer answers
        asked = await a.request("call.record", call=call, action="start")
        assert asked["type"] == "call.recording" and asked["state"] == "requested", asked
        for c in (v, h):
            got = await c.event("call.recording", call=call, state="requested")
            assert got["by"] == "a1"
        st = await v.event("call.state", call=call, recording="requested")
        assert st["recording"] == "requested"
        await asyncio.sleep(1.0)
        assert media.recordings.started == 0 and taps(media) == 0

        # the host cannot consent for the viewer
        e = await h.request("call.record.consent", call=call, accept=True)
        assert (e["type"], e["code"]) == ("error", "forbidden"), e
        ok = await v.request("call.record.consent", call=call, accept=True)
        started = time.monotonic()  # recording runs from the consent on
        assert ok["state"] == "recording", ok
        for c in (a, h):  # the indicator on every participant's page
            await c.event("call.recording", call=call, state="recording")
            await c.event("call.state", call=call, recording="recording")
        assert media.recordings.started == 1 and taps(media) == 6  # 3 × (audio, video)

        # ten seconds from the consent, however long the indicator checks above took
        await asyncio.sleep(max(0.0, RECORD_S - (time.monotonic() - started)))
        stop = await a.request("call.record", call=call, action="stop")
        recorded_s = time.monotonic() - started  # what a perfect recorder would hold
        assert stop["state"] == "stopped", stop
        saved = await v.event("call.recording", call=call, state="saved", timeout=20)
        assert taps(media) == 0
        recs = {x["user"]: x for x in saved["recordings"]}
        assert set(recs) == {"v1", "a1", "h1"}, saved
        colours = {"v1": RED, "a1": GREEN, "h1": BLUE}
        hdr = {"Authorization": f"Bearer {gw.token('agent', 'a1')}"}
        for user, ref in recs.items():
            assert ref["content_type"] == "video/webm" and ref["kind"] == "recording"
            async with gw.http.get(f"{gw.url}/api/attachments/{ref['attachment']}",
                                   headers=hdr) as resp:
                assert resp.status == 200, await resp.text()
                assert resp.headers["Content-Type"] == "video/webm"
                data = await resp.read()
            got = read_back(data)
            assert got["kinds"] == {"video", "audio"}, (user, got)
            assert abs(got["duration"] - RECORD_S) <= 1.0 + max(0.0, recorded_s - RECORD_S), \
                (user, got, recorded_s)  # 10 ± 1 s (plus a stop request slowed by the load)
            assert got["video_frames"] >= RECORD_S * 15 * 0.6, (user, got)  # 15 fps sent
            assert got["audio_frames"] >= RECORD_S * 50 * 0.8, (user, got)  # 20 ms frames
            assert float(np.abs(got["colour"] - np.array(colours[user])).max()) < 35, \
                (user, got["colour"])
        # the conversation shows them (history and export)
        line = await a.event("message", conversation=cid, kind="system", timeout=5)
        assert {x["attachment"] for x in line.get("attachments", [])} == \
            {x["attachment"] for x in recs.values()}
    finally:
        for c in clients:
            await c.close()


async def test_declined_or_unanswered_consent_records_nothing(gw):
    media = gw.gw.media
    media.recordings.consent_timeout_s = 1.0
    v, a, cid = await escalated(gw)
    call = await ring(v, a, cid)
    vc, ac = RtcClient(v, "v1", RED), RtcClient(a, "a1", GREEN)
    try:
        await vc.start(call)
        await ac.start(call)
        await ac.wait_colour("v1", RED)
        # the viewer declines: the call goes on, unrecorded
        await a.request("call.record", call=call, action="start")
        await v.event("call.recording", call=call, state="requested")
        no = await v.request("call.record.consent", call=call, accept=False)
        assert no["state"] == "declined" and no["reason"] == "declined", no
        await a.event("call.recording", call=call, state="declined")
        assert media.recordings.started == 0 and taps(media) == 0
        await ac.wait_colour("v1", RED)  # media still flows
        late = await v.request("call.record.consent", call=call, accept=True)
        assert (late["type"], late["code"]) == ("error", "bad_state"), late
        # no answer: declined after the timeout
        n = len(a.frames)
        await a.request("call.record", call=call, action="start")
        got = await a.event("call.recording", call=call, state="declined", after=n, timeout=5)
        assert got["reason"] == "timeout"
        assert media.recordings.started == 0 and taps(media) == 0
        # a viewer cannot start one; stop with nothing running is bad_state
        e = await v.request("call.record", call=call, action="start")
        assert (e["type"], e["code"]) == ("error", "forbidden"), e
        e = await a.request("call.record", call=call, action="stop")
        assert (e["type"], e["code"]) == ("error", "bad_state"), e
    finally:
        await vc.close()
        await ac.close()


async def test_a_still_from_the_call_keeps_the_senders_colour(gw):
    """Stills are made where the frame is rendered (the agent's page, docs/media.md#stills):
    the decoded frame the agent sees, uploaded with ``source=call``, comes back as an
    attachment of the conversation marked as taken from the call, in the sender's colour."""
    v, a, cid = await escalated(gw)
    call = await ring(v, a, cid)
    vc, ac = RtcClient(v, "v1", RED), RtcClient(a, "a1", GREEN)
    try:
        await vc.start(call)
        await ac.start(call)
        await ac.wait_colour("v1", RED)
        frame = ac.sink_of("v1", "video").last  # what the agent's <video> shows
        buf = io.BytesIO()
        frame.to_image().save(buf, "PNG")
        taken = 1_700_000_000.5
        url = f"{gw.url}/api/conversations/{cid}/attachments?source=call&taken_at={taken}"
        hdr = {"Authorization": f"Bearer {gw.token('agent', 'a1')}",
               "Content-Type": "image/png"}
        async with gw.http.post(url, data=buf.getvalue(), headers=hdr) as resp:
            body = await resp.json()
            assert resp.status == 201, body
        assert body["source"] == "call" and body["taken_at"] == taken
        assert (body["width"], body["height"]) == (320, 240)
        async with gw.http.get(f"{gw.url}/api/attachments/{body['attachment']}",
                               headers=hdr) as resp:
            data = await resp.read()
        from PIL import Image
        mean = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).reshape(-1, 3).mean(0)
        assert float(np.abs(mean - np.array(RED)).max()) < 35, mean
        # the viewer shares it in the chat: the event says where it came from
        ok = await a.request("message.send", conversation=cid, text="拍下的画面",
                             client_msg_id="still", attachments=[body["attachment"]])
        assert ok.get("type") != "error", ok
        got = await v.event("message", conversation=cid, client_msg_id="still", timeout=5)
        assert got["attachments"][0]["source"] == "call"
        assert got["attachments"][0]["taken_at"] == taken
    finally:
        await vc.close()
        await ac.close()


async def test_a_host_joining_mid_recording_gets_a_later_file_and_other_calls_are_left_alone(gw):
    media = gw.gw.media
    v, a, cid = await escalated(gw)
    other_v, other_a, other_cid = await escalated(gw, viewer="v2", agent="a2")
    h = await gw.client("host", "h1", room=gw.room_id, name="Host")
    await h.request("ping")
    call = await ring(v, a, cid)
    st = await other_v.request("call.request", conversation=other_cid, video=True)
    other_call = st["call"]
    await other_a.event("call.incoming", call=other_call)
    await other_a.request("call.accept", call=other_call)
    vc, ac, hc = RtcClient(v, "v1", RED), RtcClient(a, "a1", GREEN), RtcClient(h, "h1", BLUE)
    ov, oa = RtcClient(other_v, "v2", RED), RtcClient(other_a, "a2", GREEN)
    try:
        for c, k in ((vc, call), (ac, call), (ov, other_call), (oa, other_call)):
            await c.start(k)
        await asyncio.gather(ac.wait_colour("v1", RED), oa.wait_colour("v2", RED))
        await a.request("call.record", call=call, action="start")
        await v.request("call.record.consent", call=call, accept=True)
        assert taps(media) == 4  # this call's two participants; not the other call's
        await asyncio.sleep(2.0)
        await a.request("call.invite", call=call, user="h1")
        await h.event("call.incoming", call=call)
        joined = await h.request("call.join", call=call)
        assert joined["recording"] == "recording"  # the indicator, from the first state
        await hc.start(call)
        await vc.wait_colour("h1", BLUE)
        assert taps(media) == 6
        await asyncio.sleep(3.0)
        await a.request("call.record", call=call, action="stop")
        saved = await a.event("call.recording", call=call, state="saved", timeout=20)
        recs = {x["user"]: x for x in saved["recordings"]}
        assert set(recs) == {"v1", "a1", "h1"}
        assert recs["h1"]["duration_s"] < recs["v1"]["duration_s"] - 1.0, recs
        hdr = {"Authorization": f"Bearer {gw.token('admin', 'boss')}"}
        async with gw.http.get(f"{gw.url}/api/attachments/{recs['h1']['attachment']}",
                               headers=hdr) as resp:
            got = read_back(await resp.read())
        assert float(np.abs(got["colour"] - np.array(BLUE)).max()) < 35, got
        # the other call's members never heard of it
        assert not [f for f in other_v.frames + other_a.frames
                    if f.get("type") == "call.recording"]
    finally:
        for c in (vc, ac, hc, ov, oa):
            await c.close()
