"""Which changes the archiver keeps out of the archive while an erasure is in progress
(``gateway/archiver._about_erased``): everything about the erased viewer or its
conversations — including a conversation the archiver only learns is the viewer's from the
same batch — and nothing else."""

from __future__ import annotations

from gateway.archiver import _about_erased, room_writes
from gateway.store.records import RoomCounters
from gateway.support.changes import (
    AgentStatus,
    Attached,
    ConversationOpened,
    FieldsSet,
    GiftQuotaSet,
    MessageAppended,
    OrderPlaced,
    RecordPut,
    StockSet,
    ViewerErased,
)
from gateway.support.conversation import Author


def test_changes_about_an_erased_viewer_are_left_out_and_others_kept():
    viewers, convs = {"vx"}, {"c_known"}
    a = Author("viewer", "vx", "X")
    out = {
        "opened_by_viewer": ConversationOpened("c_new", "r", "vx", "X", 1.0),
        "message_in_new": MessageAppended("c_new", 1, a, "hi", 2.0),  # learnt from the batch
        "fields_of_known": FieldsSet("c_known", {"state": "assigned"}),
        "assigned_known": Attached("c_known", "ag", 3.0),
        "order_of_viewer": OrderPlaced("r", "o1", "vx", "S1", 1, 5, None, None, 4.0),
        "record_about_conv": RecordPut("csat", "c_known", {"rating": 5}),
        "record_about_viewer": RecordPut("browse", "vx", {"events": []}),
    }
    kept = {
        "other_conversation": ConversationOpened("c_other", "r", "vy", "Y", 1.0),
        "other_message": MessageAppended("c_other", 1, Author("viewer", "vy", "Y"), "x", 2.0),
        "other_order": OrderPlaced("r", "o2", "vy", "S1", 1, 4, None, None, 5.0),
        "agent": AgentStatus("ag", "A", "available", 1.0, 5),
        "stock": StockSet("r", "S1", 4),
        "the_erasure_itself": ViewerErased("vx"),
    }
    for name, ch in out.items():
        assert _about_erased(ch, viewers, convs), name
    assert "c_new" in convs
    for name, ch in kept.items():
        assert not _about_erased(ch, viewers, convs), name


def test_a_hosts_quota_edit_becomes_the_rooms_quota_row():
    assert room_writes([GiftQuotaSet("r", "G1", 120, False)], 9.0) == [
        RoomCounters("r", (), (), 9.0, (("G1", 120, False),))]
