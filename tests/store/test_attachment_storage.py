"""The two attachment storages behind one interface: what goes in comes out; the database
one (SQLite and the real PostgreSQL) is erased with its viewer and swept with its
conversation; the local one drops files whose conversation the store no longer has."""

from __future__ import annotations

import time

from gateway.attachments import (
    Attachment,
    DatabaseAttachmentStorage,
    LocalAttachmentStorage,
)
from gateway.attachments.records import new_id
from gateway.store.records import Retention

from .helpers import conversation


def rec(conv: str, viewer: str, uploader: str, n: int = 10, at: float | None = None):
    return Attachment(id=new_id(), conversation=conv, viewer=viewer, uploader=uploader,
                      uploader_role="viewer", kind="image", content_type="image/png",
                      width=4, height=3, bytes=n, thumb_type="image/jpeg",
                      created_at=time.time() if at is None else at)


async def roundtrip(storage) -> None:
    a = rec("c1", "v1", "v1", 5)
    await storage.put(a, b"12345", b"th")
    got = await storage.get(a.id)
    assert got == a
    assert await storage.read(a.id) == b"12345" and await storage.read(a.id, thumb=True) == b"th"
    assert await storage.usage("v1") == 5 and await storage.usage("v2") == 0
    assert await storage.get("att_" + "x" * 22) is None
    assert await storage.get("../../etc/passwd") is None
    assert await storage.delete([a.id]) == 1
    assert await storage.get(a.id) is None and await storage.usage("v1") == 0
    # a recording: stored from the file the recorder wrote
    import tempfile
    from pathlib import Path

    f = Path(tempfile.mkdtemp()) / "rec.webm"
    f.write_bytes(b"\x1aE\xdf\xa3webm")
    r = rec("c1", "v1", "a1", n=8)
    await storage.put_file(r, f)
    assert await storage.read(r.id) == b"\x1aE\xdf\xa3webm" and await storage.usage("a1") == 8
    assert await storage.delete([r.id]) == 1


async def test_database_storage_roundtrip_erase_and_sweep(backends):
    store = await backends.open(retention=Retention(messages=100.0))
    storage = DatabaseAttachmentStorage(store.db)
    await roundtrip(storage)
    t0 = time.time() - 10_000
    await store.apply(conversation("c-erase", "v-erase", "demo", t0, ["坏了"]))
    await store.apply(conversation("c-old", "v-old", "demo", t0, ["hi"], resolved=True))
    await store.apply(conversation("c-keep", "v-keep", "demo", t0, ["hi"]))
    gone, old, kept = rec("c-erase", "v-erase", "v-erase"), rec("c-old", "v-old", "a1"), \
        rec("c-keep", "v-keep", "v-keep")
    orphan = rec("c-never", "v-x", "v-x", at=t0)
    for r in (gone, old, kept, orphan):
        await storage.put(r, b"data", None)
    await store.erase_viewer("v-erase", by_role="admin")
    assert await storage.get(gone.id) is None  # in the erasure's own transaction
    await store.sweep()
    assert await storage.get(old.id) is None  # with its resolved conversation
    assert await storage.get(kept.id) is not None
    assert await storage.sweep(lambda c: _never()) == 1  # the orphan
    assert await storage.get(orphan.id) is None and await storage.get(kept.id) is not None


async def _never() -> bool:
    raise AssertionError("the database storage asks the database, not the callback")


async def test_local_storage_roundtrip_and_orphan_sweep(tmp_path):
    storage = LocalAttachmentStorage(tmp_path / "attachments")
    await storage.start()
    try:
        await roundtrip(storage)
        old = time.time() - 7200  # past both storages' grace
        orphan, live, fresh = rec("gone", "v", "v", at=old), rec("here", "v", "v", at=old), \
            rec("gone", "v", "v")
        for r in (orphan, live, fresh):
            await storage.put(r, b"abc", b"t")

        async def exists(conv: str) -> bool:
            return conv == "here"

        assert await storage.sweep(exists) == 1
        assert await storage.get(orphan.id) is None
        assert await storage.get(live.id) is not None
        assert await storage.get(fresh.id) is not None  # within the grace: maybe not archived
        # a restart finds what is on disk, and the usage it adds up to
        again = LocalAttachmentStorage(tmp_path / "attachments")
        await again.start()
        assert await again.read(live.id) == b"abc" and await again.usage("v") == 20  # 2 × 10
        await again.close()
    finally:
        await storage.close()


async def test_a_gateway_keeps_uploads_where_its_store_says(backends, tmp_path):
    """``attachment_storage=auto``: files under the data dir with SQLite, the store's table
    with PostgreSQL; either way an upload reads back, and the erasure takes it."""
    import aiohttp

    from gateway.config import Config
    from tests.conftest import free_port, start_gateway, stop_gateway
    from tests.security.hostile_files import png

    if backends.kind == "sqlite":
        config = Config(dev=True, port=free_port(), data_dir=tmp_path / "data")
    else:
        config = Config(dev=True, port=free_port(), database_url=await backends.url("gw"))
    r = await start_gateway(config)
    try:
        kind = type(r.gw.attachments.storage).__name__
        assert kind == ("LocalAttachmentStorage" if backends.kind == "sqlite"
                        else "DatabaseAttachmentStorage")
        v = await r.client("viewer", "v-up", room=r.room_id)
        cid = (await v.request("conversation.open", room=r.room_id))["conversation"]
        hdr = {"Authorization": f"Bearer {r.token('viewer', 'v-up', room=r.room_id)}"}
        form = aiohttp.FormData()
        form.add_field("file", png(), filename="x.png", content_type="image/png")
        async with r.http.post(f"{r.url}/api/conversations/{cid}/attachments", data=form,
                               headers=hdr) as resp:
            body = await resp.json()
            assert resp.status == 201, body
        att = body["attachment"]
        if backends.kind == "sqlite":
            assert list((tmp_path / "data" / "attachments").glob(f"*/{att}.bin"))
        else:
            rows = await r.gw.durable.store.db.fetch(
                "SELECT conversation, viewer, length(data) FROM attachments WHERE id = ?", (att,))
            assert rows == [(cid, "v-up", body["bytes"])]
        async with r.http.get(f"{r.url}/api/attachments/{att}", headers=hdr) as resp:
            assert resp.status == 200 and len(await resp.read()) == body["bytes"]
        admin = {"Authorization": f"Bearer {r.token('admin', 'boss')}"}
        async with r.http.delete(f"{r.url}/api/users/v-up", headers=admin) as resp:
            assert resp.status == 200
        if backends.kind == "postgresql":  # in the erasure's transaction
            assert await r.gw.attachments.storage.get(att) is None
        else:  # the local files follow at the sweep: the conversation is gone from the store
            storage = r.gw.attachments.storage
            assert await storage.sweep(r.gw.attachments.exists, now=time.time() + 600) == 1
            assert await storage.get(att) is None
        async with r.http.get(f"{r.url}/api/attachments/{att}", headers=admin) as resp:
            assert resp.status == 404
    finally:
        await stop_gateway(r)
