"""Erasing a viewer: afterwards nothing of them is found by search, transcript, live state
or in any table of the database (every column of every table, read as text); other viewers
keep everything; one tombstone says what was erased, with nothing personal in it."""

from __future__ import annotations

import json

from gateway.store import SearchQuery, Store
from gateway.support.changes import FieldsSet, RecordPut

from .helpers import conversation, csat, order

T0 = 1_780_000_000.0
VIEWER = "viewer-erase-me"
NAME = "Erase-Me"
SECRET_TEXT = "我的地址是幸福路88号"
ORDER = "ord-secret-1"
NEEDLES = (VIEWER.lower(), NAME.lower(), "幸福路", ORDER)


async def all_text(store: Store) -> list[tuple[str, str]]:
    """(table, value as text) of every cell of every table of the store."""
    if store.backend == "sqlite":
        tables = [r[0] for r in await store.db.fetch(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        cols = {t: [r[1] for r in await store.db.fetch(f'PRAGMA table_info("{t}")')]
                for t in tables}
        cast = "{c}"  # blobs (the FTS5 index segments) come back as bytes
    else:
        rows = await store.db.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema()")
        cols = {}
        for t, c in rows:
            cols.setdefault(t, []).append(c)
        cast = "({c})::text"
    out = []
    for t, cs in cols.items():
        for c in cs:
            for (v,) in await store.db.fetch(
                    f'SELECT {cast.format(c=chr(34) + c + chr(34))} FROM "{t}"'):
                if isinstance(v, bytes):  # UTF-8 inside a binary segment stays readable
                    v = v.decode("utf-8", errors="replace")
                if v is not None:
                    out.append((t, str(v).lower()))
    return out


async def seed(store: Store) -> None:
    await store.apply(conversation("c-gone-1", VIEWER, "r1", T0, [SECRET_TEXT, "在吗"],
                                   agent="a1", resolved=True))
    await store.apply(conversation("c-gone-2", VIEWER, "r2", T0 + 100, ["还有一个问题"]))
    await store.apply(conversation("c-kept", "v-other", "r1", T0 + 50, ["我的耳机坏了"],
                                   agent="a1"))
    await store.apply([
        order("r1", ORDER, VIEWER, T0 + 5), order("r1", "ord-kept", "v-other", T0 + 6),
        csat("c-gone-1", VIEWER, 2), csat("c-kept", "v-other", 5),
        RecordPut("browse", VIEWER, {"events": [{"sku": "s1"}]}),
        RecordPut("audit", "au_1", {"action": "compensate", "viewer": VIEWER,
                                    "conversation": "c-gone-1", "amount": 5.0}),
        RecordPut("authority", "a1|c-gone-1", {"cents": 500}),
    ], at=T0 + 30)


async def test_nothing_of_an_erased_viewer_is_found_afterwards(store):
    await seed(store)
    await store.apply([FieldsSet("c-gone-2", {"viewer_name": NAME})], at=T0 + 101)
    before = await all_text(store)
    for needle in NEEDLES:  # the check can see them
        assert any(needle in v for _, v in before), needle

    r = await store.erase_viewer(VIEWER, by_role="admin")
    assert (r.conversations, r.messages, r.orders) == (2, 4, 1)
    assert r.records == 4  # csat, browse, audit, authority

    assert await store.search(SearchQuery(user=VIEWER)) == []
    assert await store.search(SearchQuery(q="幸福路")) == []
    assert await store.search(SearchQuery(order=ORDER)) == []
    assert await store.transcript("c-gone-1") is None and await store.transcript("c-gone-2") is None
    live = await store.load_live_state()
    assert [c.conversation for c, _ in live.conversations] == ["c-kept"]
    assert all(o.viewer != VIEWER for o in live.orders)
    leftovers = [(t, v[:80]) for t, v in await all_text(store)
                 if any(n in v for n in NEEDLES)]
    assert leftovers == []

    # the others keep everything
    kept = await store.transcript("c-kept")
    assert [m.text for m in kept.messages][0] == "我的耳机坏了"
    assert [o.order_id for o in kept.orders] == ["ord-kept"]
    assert [h.conversation for h in await store.search(SearchQuery(q="耳机"))] == ["c-kept"]

    # one tombstone: what and when, not who
    [tomb] = await store.tombstones()
    assert tomb["id"] == r.tombstone and tomb["kind"] == "viewer_erased"
    assert tomb["counts"] == {"conversations": 2, "messages": 4, "records": 4, "orders": 1}
    assert VIEWER not in json.dumps(tomb)


async def test_erasing_an_unknown_viewer_leaves_a_tombstone_and_changes_nothing(store):
    await seed(store)
    r = await store.erase_viewer("nobody", by_role="cli")
    assert (r.conversations, r.messages, r.records, r.orders) == (0, 0, 0, 0)
    assert len(await store.search(SearchQuery())) == 3
    assert [t["by_role"] for t in await store.tombstones()] == ["cli"]
