"""The conversation suite again, with the gateway's state in a real Redis (RedisBackend,
RedisBus, session mirror): one node must behave exactly like the embedded default."""

from __future__ import annotations

import pytest

from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway
from tests.integration import test_conversations as conv_tests
from tests.integration import test_resume as resume_tests
from tests.integration import test_room as room_tests

pytestmark = pytest.mark.redis

CASES = [
    conv_tests.test_open_is_idempotent_and_concurrent_opens_give_one,
    conv_tests.test_bot_answers_every_message_within_one_second,
    conv_tests.test_asking_for_a_person_escalates_to_an_agent_with_context,
    conv_tests.test_duplicate_client_msg_id_is_stored_once,
    conv_tests.test_resolve_announces_and_next_open_starts_fresh,
    conv_tests.test_only_the_assigned_agent_may_act,
    conv_tests.test_transfer_to_agent_and_back_to_queue,
    conv_tests.test_agent_list_and_get,
    resume_tests.test_drop_and_resume_replays_missed_frames_with_original_seqs,
    resume_tests.test_resume_failures,
    room_tests.test_same_order_posted_20_times_concurrently_counts_once,
    room_tests.test_announcement_is_pinned_in_open_conversations,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
async def test_on_redis(case, redis_server):
    r = await start_gateway(Config(dev=True, port=free_port(), redis_url=redis_server.url))
    try:
        await case(r)
    finally:
        await stop_gateway(r)


async def test_fifty_viewers_three_agents_on_redis(redis_server):
    # same assertions as the memory test, through the Lua assignment step
    import asyncio
    r = await start_gateway(Config(dev=True, port=free_port(), redis_url=redis_server.url,
                                   agent_capacity=5, rate_per_s=1000, rate_burst=1000))
    try:
        agents = [await r.client("agent", f"a{i}") for i in range(3)]
        for a in agents:
            await a.request("agent.status", status="available")
        viewers = [await r.client("viewer", f"v{i}", room=r.room_id) for i in range(50)]
        convs = await asyncio.gather(*[v.request("conversation.open", room=r.room_id) for v in viewers])
        await asyncio.gather(*[v.request("conversation.escalate", conversation=c["conversation"])
                               for v, c in zip(viewers, convs, strict=False)])
        await asyncio.sleep(0.5)
        assigned = []
        for a in agents:
            got = [f["conversation"] for f in a.frames if f["type"] == "conversation.assigned"]
            assert len(got) == len(set(got)) <= 5
            assigned += got
        assert len(assigned) == len(set(assigned)) == 15
        assert len(r.gw.support.router.queue) == 35
    finally:
        await stop_gateway(r)
