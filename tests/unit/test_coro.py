"""``signaling/coro.py``: a coroutine driven by hand behaves as if a task ran it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from signaling.coro import drive, finish


async def test_drive_runs_a_coroutine_that_never_waits_on_the_callers_stack():
    done = []

    async def quick():
        done.append(1)

    before = len(asyncio.all_tasks())
    drive(quick())
    assert done == [1]  # already ran: no task, no loop turn
    assert len(asyncio.all_tasks()) == before


async def test_drive_hands_a_suspended_coroutine_to_a_task_that_resumes_it_with_results():
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    failing: asyncio.Future[int] = loop.create_future()
    seen = []

    async def waits():
        seen.append("start")
        seen.append(await fut)  # the coroutine reads the result itself
        await asyncio.sleep(0)  # a bare yield
        try:
            await failing
        except KeyError as e:
            seen.append(f"raised {e.args[0]}")

    drive(waits())
    assert seen == ["start"]
    fut.set_result(7)
    await asyncio.sleep(0.01)
    assert seen == ["start", 7]
    failing.set_exception(KeyError("k"))
    await asyncio.sleep(0.01)
    assert seen == ["start", 7, "raised k"]


async def test_drive_logs_a_failed_first_step_and_retrieves_a_later_failure(caplog):
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    async def fails_at_once():
        raise ConnectionError("gone")

    async def fails_later():
        await fut
        raise ConnectionError("later")

    with caplog.at_level(logging.DEBUG, logger="signaling.coro"):
        drive(fails_at_once())
    assert "failed" in caplog.text and "gone" in caplog.text
    drive(fails_later())
    fut.set_result(None)
    await asyncio.sleep(0.01)  # the task ended with the error; nobody is told, nothing leaks


async def test_finish_raises_what_the_coroutine_raises_and_closes_it_when_cancelled():
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    closed = []

    async def send():
        try:
            await fut
            raise ValueError("bad frame")
        finally:
            closed.append(1)

    coro = send()
    task = asyncio.ensure_future(finish(coro, coro.send(None)))
    fut.set_result(None)
    with pytest.raises(ValueError):
        await task

    blocked: asyncio.Future[None] = loop.create_future()

    async def stuck():
        try:
            await blocked
        finally:
            closed.append(2)

    coro = stuck()
    task = asyncio.ensure_future(finish(coro, coro.send(None)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed == [1, 2] and not blocked.cancelled()
