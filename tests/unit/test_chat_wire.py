"""``ChatMessage.to_wire`` is written out by hand for speed; it must say exactly what the
generic dataclass reflection (``Event.to_wire``) says, key order included."""

import pytest

from gateway.support.messages import ChatMessage
from signaling.protocol import Event


@pytest.mark.parametrize("kind", [None, "notice", "announcement"])
@pytest.mark.parametrize("cmid", [None, "c-1"])
def test_chat_message_wire_equals_reflection(kind, cmid):
    author = {"role": "viewer", "user": "u1", "name": "小王"}
    m = ChatMessage(conversation="c1", message_id="m1", from_=author, text="还有吗",
                    client_msg_id=cmid, ts=1.25, kind=kind)
    ref = Event.to_wire(m)
    ref["from"] = ref.pop("from_")
    ref.setdefault("client_msg_id", None)
    got = m.to_wire()
    assert list(got.items()) == list(ref.items())
    got["from"]["name"] = "changed"  # the wire dict is the caller's to change
    assert author["name"] == "小王"
