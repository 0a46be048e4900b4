"""The replica applies change lists idempotently: a record applied again (start-up overlap, a
resync re-reading every record) must not reach listeners twice, or append-only views built
from them (grants, audit) would count it twice."""

from gateway.support.backend import Replica
from gateway.support.conversation import ConversationStore
from gateway.support.routing import Router


def test_a_record_applied_again_reaches_listeners_once():
    rep = Replica(ConversationStore(), Router())
    seen = []
    rep.listen("granted", lambda k, v: seen.append((k, v)))
    ch = ["rec", "granted", "gr_1", '{"amount": 20, "kind": "coupon"}']
    rep.apply([ch])
    rep.apply([ch])
    assert seen == [("gr_1", {"amount": 20, "kind": "coupon"})]
    rep.apply([["rec", "granted", "gr_1", '{"amount": 30, "kind": "coupon"}']])  # a change
    assert seen[-1] == ("gr_1", {"amount": 30, "kind": "coupon"}) and len(seen) == 2
