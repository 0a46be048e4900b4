"""Session sending: broadcast splicing, the write-now path and the flow-control fallback."""

from __future__ import annotations

import asyncio
import json

from signaling.auth import Claims
from signaling.protocol import dumps
from signaling.session import Prepared, Session


class FakeSocket:
    """Takes frames at once, or (``blocked``) suspends every send until released."""

    def __init__(self):
        self.got: list[str] = []
        self.blocked: asyncio.Event | None = None

    async def send_str(self, data: str) -> None:
        if self.blocked is not None:
            await self.blocked.wait()
        self.got.append(data)

    async def close(self, *, code: int = 1000, message: bytes = b"") -> None:
        return None


def session() -> Session:
    return Session(id="s1", claims=Claims(user="u", role="viewer"))


def test_prepared_splice_is_byte_identical_to_serializing_with_seq():
    for ev in ({"type": "room.update", "room": "demo", "change": {"kind": "stock"},
                "text": "中文 \u2028 \"quoted\"", "n": 1.5, "none": None},
               {"type": "x"}):
        p = Prepared(ev)
        s = session()
        s.send(p)
        assert s.frames_after(0)[-1].text == dumps(dict(ev, seq=1))
    # a cursor is honoured and not serialized
    p = Prepared({"type": "message", "_cursor": ["c1", 3]})
    s = session()
    assert s.send(p) == 1 and s.send(p) == 0
    assert json.loads(s.frames_after(0)[-1].text) == {"type": "message", "seq": 1}


async def test_frames_written_at_once_then_in_order_behind_a_blocked_socket():
    s = session()
    sock = FakeSocket()
    s.attach(sock)
    s.send({"type": "a"})
    s.send(Prepared({"type": "b"}))
    assert [json.loads(x)["type"] for x in sock.got] == ["a", "b"]  # no task needed
    assert s._writer is None
    sock.blocked = asyncio.Event()
    s.send({"type": "c"})
    s.send(Prepared({"type": "d"}))
    s.send({"type": "e"})
    assert s._writer is not None and len(sock.got) == 2
    sock.blocked.set()
    await s.flush()
    assert [json.loads(x)["seq"] for x in sock.got] == [1, 2, 3, 4, 5]
    assert s._writer is None
    # resume replays the retained frames with their original text
    assert [f.text for f in s.frames_after(0)] == sock.got
