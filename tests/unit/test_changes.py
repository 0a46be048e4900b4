"""Change records survive the wire: ``from_wire(to_wire(x)) == x`` for every kind, through
JSON (what the Redis ops log carries), and malformed arrays are refused with a typed error."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.support import changes as C
from gateway.support.conversation import Author

text = st.text(max_size=40)
ident = st.text(min_size=1, max_size=20)
ts = st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False)
opt_ident = st.none() | ident
json_scalar = st.none() | st.booleans() | st.integers(-10**9, 10**9) | text
json_value = st.recursive(json_scalar, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(ident, inner, max_size=3), max_leaves=8)
field_value = st.none() | ident | ts | st.lists(st.dictionaries(ident, json_scalar, max_size=2),
                                                max_size=2)

support_records = st.one_of(
    st.builds(C.ConversationOpened, ident, ident, ident, ident, ts),
    st.builds(C.FieldsSet, ident, st.dictionaries(st.sampled_from(C.CONVERSATION_FIELDS),
                                                  field_value, max_size=4)),
    st.builds(C.MessageAppended, cid=ident, n=st.integers(1, 10**6),
              author=st.builds(Author, st.sampled_from(["viewer", "agent", "bot"]), ident,
                               opt_ident),
              text=text, ts=ts, client_msg_id=opt_ident,
              kind=st.none() | st.sampled_from(["system", "notice", "announcement"]),
              meta=st.dictionaries(ident, json_scalar, max_size=3), origin=opt_ident),
    st.builds(C.Queued, ident, ts, st.booleans()),
    st.builds(C.Dequeued, ident),
    st.builds(C.Attached, ident, ident, ts),
    st.builds(C.Released, ident, opt_ident),
    st.builds(C.AgentStatus, user=ident, name=ident,
              status=st.sampled_from(["available", "away", "break", "offline"]), since=ts,
              capacity=st.integers(0, 100), paused=st.booleans(), last_assigned=ts),
    st.builds(C.RecordPut, ident, ident, json_value, st.none() | ts),
    st.builds(C.RecordDeleted, ident, ident),
    st.builds(C.ViewerErased, ident),
)
room_records = st.one_of(
    st.builds(C.StockSet, ident, ident, st.integers(0, 10**6)),
    st.builds(C.GiftClaimed, ident, ident, st.integers(0, 10**6)),
    st.builds(C.GiftQuotaSet, ident, ident, st.integers(0, 10**6), st.booleans()),
    st.builds(C.OrderPlaced, room=ident, order_id=ident, user=ident, sku=ident,
              qty=st.integers(1, 100), stock_left=st.integers(0, 10**6),
              gift_promotion=opt_ident, rank=st.none() | st.integers(1, 1000), ts=ts),
)
records = support_records | room_records


@settings(max_examples=200, deadline=None)
@given(records)
def test_every_kind_round_trips_through_json(rec):
    wire = json.loads(json.dumps(rec.to_wire()))
    assert wire[0] == rec.TAG
    assert C.from_wire(wire) == rec
    assert type(rec).from_wire(wire) == rec


@settings(max_examples=60, deadline=None)
@given(st.lists(support_records, max_size=6))
def test_a_change_list_round_trips(recs):
    assert C.list_from_wire(json.loads(C.list_to_json(recs))) == recs


def test_a_room_change_in_a_support_list_is_refused():
    with pytest.raises(C.ChangeFormatError, match="room change"):
        C.list_from_wire([C.Dequeued("c1").to_wire(), C.StockSet("r", "s", 1).to_wire()])


def test_every_kind_is_covered_by_the_round_trip():
    kinds = {C.ConversationOpened, C.FieldsSet, C.MessageAppended, C.Queued, C.Dequeued,
             C.Attached, C.Released, C.AgentStatus, C.RecordPut, C.RecordDeleted, C.ViewerErased, C.StockSet,
             C.GiftClaimed, C.GiftQuotaSet, C.OrderPlaced}
    assert {c for c in C._KINDS.values()} == kinds


def test_lua_era_entries_still_read():
    """What the Lua scripts wrote before the records were typed: "" for none, the record's
    value as JSON text, numbers as JSON numbers, no ``expires_at``."""
    msg = C.from_wire(["msg", {"cid": "c_1", "n": 2, "message_id": "c_1:2",
                               "author": {"role": "viewer", "user": "v1", "name": ""},
                               "text": "hi", "cmid": "", "ts": 1.5, "kind": "", "meta": {}}, ""])
    assert msg == C.MessageAppended("c_1", 2, Author("viewer", "v1", None), "hi", 1.5)
    assert C.from_wire(["release", "c_1", ""]) == C.Released("c_1", None)
    assert C.from_wire(["rec", "csat", "c_1", '{"score": 5}']) == \
        C.RecordPut("csat", "c_1", {"score": 5})
    a = C.from_wire(["agent", {"user": "ag", "name": "", "status": "available", "since": 3,
                               "capacity": 5, "last_assigned": 0, "hb": 9}])
    assert a == C.AgentStatus("ag", "ag", "available", 3.0, 5, False, 0.0)


@pytest.mark.parametrize("wire, why", [
    ("msg", "not a change record"),
    ([], "not a change record"),
    (["nope", 1], "unknown change kind"),
    (["q_add", "c_1"], "not a 'q_add' change"),
    (["q_add", "c_1", "soon", False], "expected a number"),
    (["attach", 5, "ag", 1.0], "expected a string"),
    (["rec", "ns", "k", "{not json"], "not JSON"),
    (["agent", {"user": "ag", "status": "available", "capacity": 2.5}], "whole number"),
    (["msg", {"cid": "c", "n": 1, "text": "x", "ts": 1}], "expected an object"),
])
def test_malformed_arrays_are_refused_with_a_typed_error(wire, why):
    with pytest.raises(C.ChangeFormatError, match=why):
        C.from_wire(wire)
