"""The replica applies change lists idempotently: a record applied again (start-up overlap, a
resync re-reading every record) must not reach listeners twice, or append-only views built
from them (grants, audit) would count it twice."""

from gateway.support.backend import Replica
from gateway.support.changes import RecordPut
from gateway.support.conversation import ConversationStore
from gateway.support.routing import Router


def test_a_record_applied_again_reaches_listeners_once():
    rep = Replica(ConversationStore(), Router())
    seen = []
    rep.listen("granted", lambda k, v: seen.append((k, v)))
    ch = RecordPut("granted", "gr_1", {"amount": 20, "kind": "coupon"})
    rep.apply([ch])
    rep.apply([ch])
    assert seen == [("gr_1", {"amount": 20, "kind": "coupon"})]
    rep.apply([RecordPut("granted", "gr_1", {"amount": 30, "kind": "coupon"})])  # a change
    assert seen[-1] == ("gr_1", {"amount": 30, "kind": "coupon"}) and len(seen) == 2


def test_a_list_that_is_not_a_typed_record_is_refused_loudly():
    rep = Replica(ConversationStore(), Router())
    try:
        rep.apply([["rec", "granted", "gr_1", "{}"]])  # type: ignore[list-item]
    except TypeError as e:
        assert "not a support change record" in str(e)
    else:
        raise AssertionError("an untyped change list was applied silently")
