"""Schema versions: a database made by the previous schema (v1, before the text index) is
upgraded on open and keeps its data, which the new index then finds; a newer schema than
this build knows is refused."""

from __future__ import annotations

import pytest

from gateway.store import SearchQuery, Store
from gateway.store.database import Stmt
from gateway.store.migrations import LATEST, MIGRATIONS, SchemaTooNew
from gateway.support.changes import ConversationOpened, MessageAppended
from gateway.support.conversation import Author

T0 = 1_780_000_000.0


async def _raw(store: Store, sql: str, args=()):  # what a v1 build wrote, by hand
    await store.db.transact([Stmt(sql, args)])


async def test_a_v1_database_with_data_is_upgraded_and_keeps_it(backends):
    old = await backends.open("upgrade", target=1)
    assert old.schema_version == 1
    tables = await old.db.fetch("SELECT version, name FROM schema_version")
    assert tables == [(1, "base")]
    # the previous release's rows (no terms column existed then)
    await _raw(old, "INSERT INTO conversations (id, room, viewer, viewer_name, state, agent, "
                    "opened_at, resolved_at, updated_at) VALUES "
                    "('c1', 'r1', 'v1', 'Vee', 'resolved', 'a1', ?, ?, ?)",
               (T0, T0 + 60, T0 + 60))
    for n, (role, user, text) in enumerate([("viewer", "v1", "我的快递三天没动了"),
                                            ("agent", "a1", "帮您查一下物流"),
                                            ("viewer", "v1", "thanks, parcel arrived")], 1):
        await _raw(old, "INSERT INTO messages (conversation, n, role, author, text, ts) "
                        "VALUES ('c1', ?, ?, ?, ?, ?)", (n, role, user, text, T0 + n))
    await _raw(old, "INSERT INTO handled (conversation, agent, at) VALUES ('c1', 'a1', ?)",
               (T0,))
    await old.close()
    backends.opened.remove(old)

    new = await backends.open("upgrade")
    assert new.schema_version == LATEST == MIGRATIONS[-1].version
    assert [r[0] for r in await new.db.fetch(
        "SELECT version FROM schema_version ORDER BY version")] == [m.version for m in MIGRATIONS]
    assert await new.erase_requests() == []  # version 4's table is there
    t = await new.transcript("c1")
    assert [m.text for m in t.messages] == ["我的快递三天没动了", "帮您查一下物流",
                                            "thanks, parcel arrived"]
    assert t.conversation.state == "resolved" and t.agents == ["a1"]
    # the old messages were indexed by the migration
    assert [h.conversation for h in await new.search(SearchQuery(q="快递"))] == ["c1"]
    assert [h.conversation for h in await new.search(SearchQuery(q="parcel"))] == ["c1"]
    # and new writes are indexed as they come
    await new.apply([ConversationOpened("c2", "r1", "v2", "", T0 + 100),
                     MessageAppended("c2", 1, Author("viewer", "v2"), "快递到了吗", T0 + 101)])
    assert [h.conversation for h in await new.search(SearchQuery(q="快递"))] == ["c2", "c1"]
    assert [h.conversation for h in await new.search(SearchQuery(q="快递", room="r1"))] == [
        "c2", "c1"]  # the room's index term was filled for the old messages too


async def test_opening_again_migrates_nothing(backends):
    s = await backends.open("twice")
    await s.close()
    backends.opened.remove(s)
    again = await backends.open("twice")
    assert again.schema_version == LATEST
    assert len(await again.db.fetch("SELECT version FROM schema_version")) == len(MIGRATIONS)


async def test_a_newer_schema_is_refused(backends):
    s = await backends.open("newer")
    await _raw(s, "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
               (LATEST + 1, "from the future", T0))
    await s.close()
    backends.opened.remove(s)
    with pytest.raises(SchemaTooNew, match="newer"):
        await backends.open("newer")
