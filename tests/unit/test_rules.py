"""Each support rule and the order rule, against a real replica: what they decide, what they
refuse (codes and texts clients see), and that they only read (apply is the caller's)."""

import pytest

from gateway.support import rules
from gateway.support.backend import Replica, ReplicaView
from gateway.support.changes import (
    AgentStatus,
    Attached,
    ConversationOpened,
    Dequeued,
    FieldsSet,
    GiftClaimed,
    MessageAppended,
    OrderPlaced,
    Queued,
    RecordPut,
    Released,
    StockSet,
)
from gateway.support.conversation import Author, ConversationStore
from gateway.support.knowledge import Knowledge
from gateway.support.orders import Order, PriorOrder, apply_room_change, place_order
from gateway.support.routing import Router
from signaling import ErrorCode, ProtocolError

V = Author("viewer", "v1", "Vee")
ALWAYS = lambda user: True  # noqa: E731


def world():
    rep = Replica(ConversationStore(), Router())
    return rep, ReplicaView(rep)


def opened(rep, cid="c1", viewer="v1", room="r1", state="bot", messages=0):
    rep.apply([ConversationOpened(cid, room, viewer, viewer, 1.0)])
    rep.apply([MessageAppended(cid, i + 1, V, f"m{i}", 2.0, f"k{i}") for i in range(messages)])
    if state != "bot":
        rep.apply([FieldsSet(cid, {"state": state})])
    return rep.store.get(cid)


def agent(rep, user, status="available", capacity=2, paused=False, last=0.0, load=()):
    rep.apply([AgentStatus(user, user.upper(), status, 1.0, capacity, paused, last)])
    for cid in load:
        rep.apply([Attached(cid, user, last)])
    return rep.router.agents[user]


def refused(code, message, fn, *a, **kw):
    with pytest.raises(ProtocolError) as e:
        fn(*a, **kw)
    assert e.value.code == code, e.value
    assert e.value.message == message


# --- open -------------------------------------------------------------------------------------

def test_open_returns_the_open_conversation_or_a_new_one_with_the_greeting():
    rep, s = world()
    step = rules.open_conversation(s, cid="c9", room="r1", viewer="v1", name="Vee",
                                   greeting=(Author("bot", "bot"), "hello"), origin="sess",
                                   max_open=0, now=5.0)
    assert step.result == rules.Opened("c9", True)
    assert step.changes == (ConversationOpened("c9", "r1", "v1", "Vee", 5.0),
                            MessageAppended("c9", 1, Author("bot", "bot"), "hello", 5.0, None,
                                            "system", {}, "sess"))
    assert rep.store.get("c9") is None  # a rule never applies
    opened(rep, "c1")
    again = rules.open_conversation(s, cid="c10", room="r1", viewer="v1", name="Vee",
                                    greeting=None, origin=None, max_open=1, now=6.0)
    assert again == rules.Step((), rules.Opened("c1", False))


def test_open_refuses_past_the_open_limit_in_any_room():
    rep, s = world()
    opened(rep, "c1", room="r1")
    opened(rep, "c2", room="r2")
    refused(ErrorCode.RATE_LIMITED,
            "you have 2 open conversations, the most allowed; close one first",
            rules.open_conversation, s, cid="c3", room="r3", viewer="v1", name="V",
            greeting=None, origin=None, max_open=2, now=1.0)
    step = rules.open_conversation(s, cid="c3", room="r3", viewer="v1", name="V",
                                   greeting=None, origin=None, max_open=3, now=1.0)
    assert step.result.created


# --- append -----------------------------------------------------------------------------------

def test_append_numbers_the_message_and_answers_a_repeat_with_the_original():
    rep, s = world()
    opened(rep, messages=2)
    step = rules.append(s, "c1", author=V, text="hi", cmid="new", kind=None, meta={"a": 1},
                        origin="o", cap=None, now=9.0)
    assert step.changes == (MessageAppended("c1", 3, V, "hi", 9.0, "new", None, {"a": 1}, "o"),)
    assert step.result == rules.Appended(3, False)
    dup = rules.append(s, "c1", author=V, text="other", cmid="k1", kind=None, meta=None,
                       origin=None, cap=None, now=9.0)
    assert dup == rules.Step((), rules.Appended(2, True))
    # the same client id from another author is not a repeat
    other = rules.append(s, "c1", author=Author("agent", "ag"), text="x", cmid="k1", kind=None,
                         meta=None, origin=None, cap=None, now=9.0)
    assert other.result == rules.Appended(3, False)


def test_append_refusals():
    rep, s = world()
    refused(ErrorCode.NOT_FOUND, "unknown conversation 'nope'", rules.append, s, "nope",
            author=V, text="x", cmid=None, kind=None, meta=None, origin=None, cap=None, now=1.0)
    conv = opened(rep, messages=2)
    refused(ErrorCode.TOO_LARGE, "conversation 'c1' has reached its limit of 2 messages; "
            "close it and open a new one", rules.append, s, "c1", author=V, text="x",
            cmid=None, kind=None, meta=None, origin=None, cap=(2, 0), now=1.0)
    assert conv.text_bytes == 4
    refused(ErrorCode.TOO_LARGE, "conversation 'c1' has reached its limit of 6 bytes of text; "
            "close it and open a new one", rules.append, s, "c1", author=V, text="ééé",
            cmid=None, kind=None, meta=None, origin=None, cap=(0, 6), now=1.0)
    assert rules.append(s, "c1", author=V, text="éé", cmid=None, kind=None, meta=None,
                        origin=None, cap=(3, 8), now=1.0).result.n == 3
    rep.apply([FieldsSet("c1", {"state": "resolved"})])
    refused(ErrorCode.BAD_STATE, "conversation is resolved; open a new one", rules.append, s,
            "c1", author=V, text="x", cmid=None, kind=None, meta=None, origin=None, cap=None,
            now=1.0)
    # a server line still goes in (a notice after the close)
    assert rules.append(s, "c1", author=Author("system", "system"), text="bye", cmid=None,
                        kind="notice", meta=None, origin=None, cap=None, now=1.0).result.n == 3


# --- escalate, resolve, fields ----------------------------------------------------------------

def test_escalate_only_from_the_bot():
    rep, s = world()
    opened(rep)
    step = rules.escalate(s, "c1", reason="asked", now=3.0)
    assert step.result is True
    assert step.changes == (FieldsSet("c1", {"state": "queued", "escalated_at": 3.0,
                                             "escalation_reason": "asked"}),
                            Queued("c1", 3.0, False))
    rep.apply(step.changes)
    assert rules.escalate(s, "c1", reason="again", now=4.0) == rules.Step((), False)
    assert rules.escalate(s, "unknown", reason="x", now=4.0) == rules.Step((), False)


def test_resolve_releases_the_agent_and_is_done_once():
    rep, s = world()
    opened(rep, state="assigned")
    rep.apply([FieldsSet("c1", {"agent": "ag"})])
    step = rules.resolve(s, "c1", by="agent", now=7.0)
    assert step.changes == (Dequeued("c1"), Released("c1", "ag"),
                            FieldsSet("c1", {"state": "resolved", "resolved_at": 7.0,
                                             "resolved_by": "agent"}))
    rep.apply(step.changes)
    assert rules.resolve(s, "c1", by="agent", now=8.0) == rules.Step((), False)
    assert rules.resolve(s, "nope", by="", now=8.0) == rules.Step((), False)


def test_set_fields_only_on_a_known_conversation():
    rep, s = world()
    assert rules.set_fields(s, "c1", {"mood": "happy"}) == rules.Step((), False)
    opened(rep)
    assert rules.set_fields(s, "c1", {"mood": "happy"}).changes == (
        FieldsSet("c1", {"mood": "happy"}),)


# --- routing ----------------------------------------------------------------------------------

def test_pick_agent_least_loaded_then_longest_idle_among_the_live():
    rep, _ = world()
    a = agent(rep, "a", last=5.0, load=["x"])
    b = agent(rep, "b", last=9.0)
    c = agent(rep, "c", last=1.0)
    agent(rep, "away", status="away")
    agent(rep, "tired", paused=True)
    agent(rep, "full", capacity=1, load=["y"])
    everyone = list(rep.router.agents.values())
    assert rules.pick_agent(everyone, ALWAYS) is c  # b and c at 0; c assigned longer ago
    assert rules.pick_agent(everyone, lambda u: u != "c") is b
    assert rules.pick_agent(everyone, lambda u: u == "a") is a
    assert rules.pick_agent(everyone, ALWAYS, exclude="c") is b
    assert rules.pick_agent(everyone, lambda u: u in ("away", "tired", "full")) is None


def test_assign_next_drops_stale_heads_and_assigns_the_first_waiting():
    rep, s = world()
    for cid in ("gone", "c1", "c2"):
        opened(rep, cid, viewer="v" + cid, state="queued")
        rep.apply([Queued(cid, 1.0)])
    rep.apply([FieldsSet("gone", {"state": "resolved"})])
    assert rules.assign_next(s, live=ALWAYS, now=2.0) == rules.Step((Dequeued("gone"),), None)
    agent(rep, "ag")
    step = rules.assign_next(s, live=ALWAYS, now=2.0)
    assert step.result == rules.Assigned("c1", "ag")
    assert step.changes == (Dequeued("gone"), Dequeued("c1"), Attached("c1", "ag", 2.0),
                            FieldsSet("c1", {"state": "assigned", "agent": "ag",
                                             "agent_name": "AG", "assigned_at": 2.0}))
    # an agent that is not live gets nothing
    assert rules.assign_next(s, live=lambda u: False, now=2.0).result is None
    assert rules.assign_next(world()[1], live=ALWAYS, now=2.0) == rules.Step((), None)


def test_transfer_to_an_agent_or_back_to_the_head_of_the_queue():
    rep, s = world()
    opened(rep, state="assigned")
    rep.apply([FieldsSet("c1", {"agent": "a"}), Attached("c1", "a", 1.0)])
    agent(rep, "a")
    agent(rep, "b")
    step = rules.transfer(s, "c1", to_agent="b", now=4.0)
    assert step.result == "a"
    assert step.changes == (Released("c1", "a"), Attached("c1", "b", 4.0),
                            FieldsSet("c1", {"state": "assigned", "agent": "b",
                                             "agent_name": "B", "assigned_at": 4.0}))
    back = rules.transfer(s, "c1", to_agent=None, now=4.0)
    assert back.changes == (Released("c1", "a"),
                            FieldsSet("c1", {"state": "queued", "agent": None,
                                             "agent_name": None}),
                            Queued("c1", 4.0, True))


def test_transfer_refusals():
    rep, s = world()
    refused(ErrorCode.NOT_FOUND, "unknown conversation 'c1'", rules.transfer, s, "c1",
            to_agent="b", now=1.0)
    opened(rep)
    refused(ErrorCode.BAD_STATE, "only an assigned conversation can be transferred (it is bot)",
            rules.transfer, s, "c1", to_agent="b", now=1.0)
    rep.apply([FieldsSet("c1", {"state": "assigned", "agent": "a"})])
    agent(rep, "a")
    agent(rep, "busy", capacity=1, load=["x"])
    agent(rep, "away", status="away")
    refused(ErrorCode.NOT_FOUND, "unknown agent 'zed'", rules.transfer, s, "c1", to_agent="zed",
            now=1.0)
    refused(ErrorCode.BAD_REQUEST, "conversation is already with that agent", rules.transfer, s,
            "c1", to_agent="a", now=1.0)
    refused(ErrorCode.BAD_STATE, "agent 'busy' is available with 1/1 conversations",
            rules.transfer, s, "c1", to_agent="busy", now=1.0)
    refused(ErrorCode.BAD_STATE, "agent 'away' is away with 0/2 conversations",
            rules.transfer, s, "c1", to_agent="away", now=1.0)


def test_set_status_capacity_precedence_and_since():
    rep, s = world()

    def status(user, st, **kw):
        args = dict(name=None, capacity=None, paused=False, default_capacity=5,
                    capacities={"cfg": 9}, now=50.0)
        args.update(kw)
        (rec,) = rules.set_status(s, user, status=st, **args).changes
        rep.apply([rec])
        return rec

    assert status("new", "available") == AgentStatus("new", "new", "available", 50.0, 5)
    assert status("cfg", "away").capacity == 9
    assert status("cfg", "away", capacity=3, now=60.0).capacity == 3
    rec = status("cfg", "away", now=70.0)  # same status: since kept; configured capacity
    assert rec.since == 50.0 and rec.capacity == 9
    rep.apply([Attached("x", "new", 42.0)])
    rec = status("new", "break", name="Neo", paused=True, now=80.0)
    assert rec == AgentStatus("new", "Neo", "break", 80.0, 5, True, 42.0)


# --- records ----------------------------------------------------------------------------------

def test_put_if_absent_and_expect():
    rep, s = world()
    step = rules.put(s, "ns", "k", {"st": "pending"}, if_absent=True, expect=None, expires_at=9.0)
    assert step.changes == (RecordPut("ns", "k", {"st": "pending"}, 9.0),)
    assert step.result == rules.Put(True, {"st": "pending"})
    rep.apply(step.changes)
    assert rules.put(s, "ns", "k", {"st": "x"}, if_absent=True, expect=None,
                     expires_at=None) == rules.Step((), rules.Put(False, {"st": "pending"}))
    assert rules.put(s, "ns", "k", 1, if_absent=False, expect={"st": "done"},
                     expires_at=None).result == rules.Put(False, {"st": "pending"})
    assert rules.put(s, "ns", "k", 1, if_absent=False, expect={"st": "pending"},
                     expires_at=None).result == rules.Put(True, 1)
    assert rules.put(s, "ns", "other", 1, if_absent=False, expect={"st": "pending"},
                     expires_at=None).result == rules.Put(False, None)


# --- orders -----------------------------------------------------------------------------------

def kb(*promos):
    return Knowledge.from_dict({
        "room": {"id": "r1", "title": "T", "host": "H", "currency": "EUR"},
        "products": [{"sku": "A", "name": "a", "price": 1, "stock": 3},
                     {"sku": "B", "name": "b", "price": 1, "stock": 0}],
        "promotions": list(promos), "policies": {}})


def gift(pid, sku=None, limit=1, claimed=0, active=True):
    return {"id": pid, "kind": "first_n_gift", "title": pid, "sku": sku, "limit": limit,
            "claimed": claimed, "gift": "g", "active": active}


def test_order_takes_stock_and_the_first_gift_with_some_left():
    k = kb(gift("off", active=False), gift("other", sku="B"), gift("used", limit=1, claimed=1),
           gift("g1", sku="A", limit=2, claimed=1), gift("g2"))
    placed = place_order(k, Order("o1", "u1", "A", 2), None, 5.0)
    assert placed.outcome.status == 200
    assert placed.outcome.body == {"gift": True, "rank": 2, "stock_left": 1}
    assert placed.changes == (StockSet("r1", "A", 1), GiftClaimed("r1", "g1", 2),
                              OrderPlaced("r1", "o1", "u1", "A", 2, 1, "g1", 2, 5.0))
    assert k.product("A").stock == 3  # the rule only reads
    for ch in placed.changes:
        apply_room_change(k, ch)
    assert k.product("A").stock == 1 and k.promotion("g1").claimed == 2
    nxt = place_order(k, Order("o2", "u2", "A", 1), None, 6.0)
    assert nxt.outcome.body == {"gift": True, "rank": 1, "stock_left": 0}  # g1 used up: g2


def test_order_refusals_and_repeats():
    k = kb()
    o = Order("o1", "u1", "A", 1)
    with pytest.raises(ProtocolError) as e:
        place_order(k, Order("o1", "u1", "Z", 1), None, 1.0)
    assert e.value.code == ErrorCode.NOT_FOUND and e.value.message == "unknown sku 'Z'"
    out = place_order(k, Order("o1", "u1", "A", 4), None, 1.0)
    assert out.changes == () and out.outcome.status == 409
    assert out.outcome.body == {"error": "out_of_stock", "message": "only 3 of A left",
                                "stock_left": 3}
    prior = PriorOrder(o, {"gift": False, "rank": None, "stock_left": 2})
    rep = place_order(k, o, prior, 2.0)
    assert rep.changes == () and rep.outcome.repeated and rep.outcome.body == prior.body
    clash = place_order(k, Order("o1", "u1", "A", 2), prior, 2.0)
    assert clash.outcome.status == 409 and clash.outcome.body["error"] == "conflict"
    assert clash.outcome.body["message"] == ("order 'o1' was already placed with different "
                                             "sku, qty or user")


def test_assign_batch_counts_what_it_gave_already():
    rep, s = world()
    for i in range(5):
        opened(rep, f"c{i}", viewer=f"v{i}", state="queued")
        rep.apply([Queued(f"c{i}", 1.0)])
    agent(rep, "a", capacity=2, last=1.0)
    agent(rep, "b", capacity=1, last=2.0)
    step = rules.assign_batch(s, live=ALWAYS, now=9.0, most=10)
    # a (assigned longer ago), then b (a has 1 now, b 0), then a; then everyone is full
    assert step.result == (rules.Assigned("c0", "a"), rules.Assigned("c1", "b"),
                           rules.Assigned("c2", "a"))
    assert [type(c).__name__ for c in step.changes].count("Attached") == 3
    assert rules.assign_batch(s, live=ALWAYS, now=9.0, most=1).result == (
        rules.Assigned("c0", "a"),)
