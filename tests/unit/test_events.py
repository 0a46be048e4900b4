"""The one event mechanism: typed, in order, isolated failures, async handlers as tasks."""

from __future__ import annotations

import asyncio
from dataclasses import FrozenInstanceError, dataclass

import pytest

from signaling.events import Events


@dataclass(frozen=True)
class Rang:
    who: str


@dataclass(frozen=True)
class LoudRang(Rang):
    pass


async def test_handlers_run_in_subscription_order_with_the_event():
    ev, seen = Events(), []
    ev.subscribe(Rang, lambda e: seen.append(("first", e.who)))
    ev.subscribe(Rang, lambda e: seen.append(("second", e.who)))
    ev.publish(Rang("v1"))
    assert seen == [("first", "v1"), ("second", "v1")]
    with pytest.raises(FrozenInstanceError):
        Rang("v1").who = "v2"  # type: ignore[misc]


async def test_dispatch_is_on_the_exact_type():
    ev, seen = Events(), []
    ev.subscribe(Rang, lambda e: seen.append("rang"))
    ev.subscribe(LoudRang, lambda e: seen.append("loud"))
    ev.publish(LoudRang("v1"))
    ev.publish("not an event")  # nobody subscribed: nothing happens
    assert seen == ["loud"]
    assert ev.subscribers(Rang) == 1 and ev.subscribers(str) == 0


async def test_a_failing_handler_does_not_stop_the_others(caplog):
    ev, seen = Events(), []

    def broken(e: Rang) -> None:
        raise ValueError("boom")

    ev.subscribe(Rang, broken)
    ev.subscribe(Rang, lambda e: seen.append(e.who))
    ev.publish(Rang("v1"))
    assert seen == ["v1"]
    assert "handler of Rang failed" in caplog.text


async def test_async_handlers_run_as_tasks_and_close_cancels_them():
    ev, seen = Events(), []
    gate = asyncio.Event()

    async def slow(e: Rang) -> None:
        await gate.wait()
        seen.append(e.who)

    ev.subscribe(Rang, slow)
    ev.publish(Rang("v1"))
    ev.publish(Rang("v2"))
    assert seen == []  # the publisher did not wait
    gate.set()
    await asyncio.sleep(0.01)
    assert seen == ["v1", "v2"]
    gate.clear()
    ev.publish(Rang("v3"))
    await ev.close()
    gate.set()
    await asyncio.sleep(0.01)
    assert seen == ["v1", "v2"]  # cancelled at close
