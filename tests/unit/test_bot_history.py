"""What the bot turn passes a responder as ``history`` (``service._earlier_viewer_texts``)."""

from gateway.support.conversation import Author, StoredMessage
from gateway.support.service import BOT_HISTORY, _earlier_viewer_texts

VIEWER = Author(role="viewer", user="v1", name="V")
BOT = Author(role="bot", user="bot", name="B")


def _msg(n: int, author: Author, text: str, kind=None) -> StoredMessage:
    return StoredMessage(f"m{n}", "c1", author, text, None, 0.0, kind=kind, n=n)


def test_earlier_viewer_messages_oldest_first_without_bot_or_notices():
    log = [_msg(1, VIEWER, "a"), _msg(2, BOT, "bot says"), _msg(3, VIEWER, "notice", kind="notice"),
           _msg(4, VIEWER, "b"), _msg(5, VIEWER, "current"), _msg(6, VIEWER, "later")]
    assert _earlier_viewer_texts(log, log[4], 20) == ["a", "b"]
    assert _earlier_viewer_texts(log, log[0], 20) == []
    gone = _msg(9, VIEWER, "dropped by a resync")
    assert _earlier_viewer_texts(log, gone, 20) is None  # not answered at all


def test_found_by_identity_not_by_equal_fields():
    """Two messages equal field by field: the one asked about is the one whose history counts."""
    twin_a, twin_b = _msg(7, VIEWER, "same"), _msg(7, VIEWER, "same")
    assert twin_a == twin_b
    log = [twin_a, _msg(8, VIEWER, "between"), twin_b]
    assert _earlier_viewer_texts(log, twin_b, 20) == ["same", "between"]
    assert _earlier_viewer_texts(log, twin_a, 20) == []


def test_bounded_to_the_most_recent():
    log = [_msg(i, VIEWER, f"t{i}") for i in range(1, 301)]
    got = _earlier_viewer_texts(log, log[-1], BOT_HISTORY)
    assert got == [f"t{i}" for i in range(300 - BOT_HISTORY, 300)]
