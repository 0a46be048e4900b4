"""SQLite backup while the store is being written, restore, and the restored store serves
the conversations: through the store API and through a gateway's REST history."""

from __future__ import annotations

import asyncio
import shutil

from gateway.config import Config
from gateway.store import SQLITE_FILE, SearchQuery, open_store
from tests.conftest import free_port, start_gateway, stop_gateway

from .helpers import conversation

T0 = 1_780_000_000.0


async def test_backup_while_writing_then_restore_serves_everything(tmp_path):
    store = await open_store(data_dir=tmp_path / "live")
    committed: list[str] = []
    stop = asyncio.Event()

    async def write() -> None:
        i = 0
        while not stop.is_set():
            cid = f"c{i:05}"
            await store.apply(conversation(cid, f"v{i % 7}", "r1", T0 + i,
                                           [f"第{i}条：快递什么时候到", "还没收到"],
                                           agent="a1" if i % 2 else None))
            committed.append(cid)
            i += 1

    writer = asyncio.create_task(write())
    while len(committed) < 200:
        await asyncio.sleep(0.01)
    before = set(committed)
    await store.backup(tmp_path / "backup" / "livedesk-backup.db")
    after = set(committed)
    while len(committed) < len(after) + 50:  # and writing went on during and after it
        await asyncio.sleep(0.01)
    stop.set()
    await writer
    await store.close()

    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(tmp_path / "backup" / "livedesk-backup.db", restored / SQLITE_FILE)
    back = await open_store(data_dir=restored)
    try:
        got = {h.conversation for h in await back.search(SearchQuery(room="r1", limit=200))}
        n = (await back.db.fetch("SELECT COUNT(*) FROM conversations"))[0][0]
        ids = {r[0] for r in await back.db.fetch("SELECT id FROM conversations")}
        assert before <= ids <= after, "the copy is the store as of one commit during backup"
        assert n == len(ids) and len(got) == min(200, n)
        for cid in sorted(ids)[:: max(1, len(ids) // 20)]:  # every batch whole, none torn
            t = await back.transcript(cid)
            i = int(cid[1:])
            assert [m.text for m in t.messages][:2] == [f"第{i}条：快递什么时候到", "还没收到"]
            assert len(t.messages) == (3 if i % 2 else 2)
        assert {h.conversation for h in await back.search(SearchQuery(q="快递", limit=200))} \
            == set(sorted(ids, reverse=True)[:200])
    finally:
        await back.close()

    # a gateway started on the restored directory serves the history
    gw = await start_gateway(Config(dev=True, port=free_port(), data_dir=restored))
    try:
        admin = {"Authorization": "Bearer " + gw.token("admin", "boss")}
        async with gw.http.get(gw.url + "/api/conversations", params={"user": "v3"},
                               headers=admin) as r:
            body = await r.json()
        want = sorted((c for c in ids if int(c[1:]) % 7 == 3), reverse=True)[:50]
        assert r.status == 200 and [c["conversation"] for c in body["conversations"]] == want
        async with gw.http.get(f"{gw.url}/api/conversations/{want[0]}", headers=admin) as r:
            t = await r.json()
        assert r.status == 200 and t["messages"][1]["text"] == "还没收到"
    finally:
        await stop_gateway(gw)
