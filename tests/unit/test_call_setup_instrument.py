"""The call set-up benchmark's instrument (benchmarks/call_setup.py): both paths must meet the
same camera state at the tap and the viewer's browser its own CPU. These check the rules
themselves; the benchmark's figures are in docs/performance.md."""

from __future__ import annotations

import time

import pytest

from benchmarks import call_setup
from benchmarks.call_setup import CAPTURE_IDLE_SHUTDOWN_S, Camera, Devices


def test_cold_camera_waits_out_chromiums_capture_shutdown_by_default():
    assert Camera("cold").idle_s > CAPTURE_IDLE_SHUTDOWN_S


async def test_cold_tap_waits_until_the_camera_has_been_closed_long_enough():
    cam = Camera("cold", idle_s=0.3)
    cam.closed()
    t0 = time.monotonic()
    await cam.before_tap()
    assert time.monotonic() - t0 >= 0.25  # the rest of the idle time, never less
    # long closed already: no wait at all
    cam._closed_at = time.monotonic() - 10
    t1 = time.monotonic()
    await cam.before_tap()
    assert time.monotonic() - t1 < 0.2


async def test_warm_tap_opens_and_closes_the_camera_in_every_browser():
    calls = []

    class Page:
        def __init__(self, n):
            self.n = n

        async def evaluate(self, js):
            calls.append((self.n, "getUserMedia" in js and "stop()" in js))

    cam = Camera("warm")
    cam._helpers = [Page(0), Page(1)]
    cam.closed()
    t0 = time.monotonic()
    await cam.before_tap()
    assert time.monotonic() - t0 < 1.0  # warm never waits for the idle time
    assert calls == [(0, True), (1, True)]


@pytest.mark.parametrize("cpus, pinned, viewer, other", [
    ({0, 1}, True, {0}, {1}),
    ({0, 1, 2, 3}, True, {0}, {1, 2, 3}),
    ({3}, False, {3}, {3}),  # one CPU: nothing to separate
])
def test_separate_devices_give_the_viewer_the_first_cpu(monkeypatch, cpus, pinned, viewer, other):
    monkeypatch.setattr(call_setup.os, "sched_getaffinity", lambda pid: set(cpus))
    d = Devices("separate")
    assert (d.pinned, d.viewer_cpus, d.other_cpus) == (pinned, viewer, other)
    assert d.describe()["devices"] == "separate"


def test_shared_devices_pin_nothing(monkeypatch):
    monkeypatch.setattr(call_setup.os, "sched_getaffinity", lambda pid: {0, 1})
    d = Devices("shared")
    assert not d.pinned and d.describe()["viewer_cpus"] is None


def test_the_direct_floor_negotiates_before_the_camera_like_our_pages():
    page = call_setup.P2P_PAGE
    # the callee offers on empty sendrecv transceivers and attaches the camera later
    ring = page[page.index("m.type === 'ring'"):page.index("m.type === 'offer'")]
    assert "addTransceiver('video', {direction: 'sendrecv'})" in ring
    assert ring.index("createOffer") > ring.index("addTransceiver")
    assert "await media" not in ring and "media.then((s) => attach(p, s))" in ring
    assert "replaceTrack" in page
