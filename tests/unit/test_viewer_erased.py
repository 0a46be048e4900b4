"""``ViewerErased``: the replica drops everything of the viewer — conversations (open or
resolved) with their messages, queue places, agents' load, records about the viewer or its
conversations (listeners told) — and nothing of anyone else."""

from __future__ import annotations

from gateway.support.backend import Replica
from gateway.support.changes import (
    Attached,
    ConversationOpened,
    FieldsSet,
    MessageAppended,
    Queued,
    RecordPut,
    ViewerErased,
)
from gateway.support.conversation import Author, ConversationStore
from gateway.support.routing import Router


def test_the_replica_forgets_everything_of_an_erased_viewer():
    rep = Replica(ConversationStore(), Router(5))
    forgotten: list[tuple[str, str]] = []
    for ns in ("browse", "csat", "authority", "audit", "authority_day"):
        rep.listen(ns, lambda k, v: None, lambda k, ns=ns: forgotten.append((ns, k)))
    changes = []
    for cid, viewer in (("c1", "v1"), ("c2", "v1"), ("c3", "v2"), ("c4", "v1")):
        changes += [ConversationOpened(cid, "r1", viewer, viewer, 1.0),
                    MessageAppended(cid, 1, Author("viewer", viewer), "hi", 2.0, "m1")]
    changes += [FieldsSet("c1", {"state": "assigned", "agent": "a1"}), Attached("c1", "a1", 3.0),
                FieldsSet("c2", {"state": "queued"}), Queued("c2", 3.0),
                FieldsSet("c3", {"state": "queued"}), Queued("c3", 3.0),
                FieldsSet("c4", {"state": "resolved"}),
                RecordPut("browse", "v1", {"events": []}), RecordPut("browse", "v2", {}),
                RecordPut("csat", "c1", {"score": 5}), RecordPut("csat", "c3", {"score": 4}),
                RecordPut("authority", "a1|c2", {"cents": 1}),
                RecordPut("authority_day", "v1|2026-12-06", {"cents": 1}),
                RecordPut("audit", "au1", {"viewer": "v1", "conversation": "c1"}),
                RecordPut("audit", "au2", {"viewer": "v2"})]
    rep.apply(changes)
    rep.apply([ViewerErased("v1")])
    assert sorted(c.id for c in rep.store.all()) == ["c3"]
    assert rep.store.open_for("r1", "v1") is None and rep.store.open_count("v1") == 0
    assert [e.conversation for e in rep.router.queue] == ["c3"]
    assert rep.router.agents["a1"].conversations == set()
    left = {(ns, k) for ns, held in rep.records.items() for k in held}
    assert left == {("browse", "v2"), ("csat", "c3"), ("audit", "au2")}
    assert sorted(forgotten) == sorted([("browse", "v1"), ("csat", "c1"), ("authority", "a1|c2"),
                                        ("authority_day", "v1|2026-12-06"), ("audit", "au1")])
    rep.apply([ViewerErased("v1")])  # again: nothing more, no error
    assert sorted(c.id for c in rep.store.all()) == ["c3"]
