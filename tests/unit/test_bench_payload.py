"""The signaling benchmark's bare baseline must send what the gateway sends, byte for byte in
size: the clients are the instrument, and a cheaper payload in one phase would flatter it."""

import json

from benchmarks.signaling import bare_payload

# the field order of the gateway's RoomUpdate (type, room, version, change, ...)
FRAME = json.dumps({"type": "room.update", "room": "live-outdoor-001", "version": 17,
                    "change": {"kind": "stock", "title": "户外专场"}, "products": [
                        {"sku": "J001", "name": "轻量冲锋衣", "stock": 42, "sizes": ["S", "M"]},
                        {"sku": "D001", "name": "camping lamp", "stock": 10_003}],
                    "seq": 5}, ensure_ascii=False, separators=(",", ":"))


def test_same_utf8_bytes_and_characters_as_the_gateway_frame():
    for k in (0, 7, 12345):
        p = bare_payload(k, FRAME)
        assert len(p.encode("utf-8")) == len(FRAME.encode("utf-8"))
        d = json.loads(p)
        assert d["type"] == "bench" and d["k"] == k
        # the non-ASCII text travels too (what makes decoding and keeping it cost alike)
        assert d["products"][0]["name"] == "轻量冲锋衣"
        assert p.startswith(f'{{"type":"bench","k":{k},')


def test_ascii_pad_without_a_frame():
    p = bare_payload(3, None, size=500)
    assert len(p) == 500 and p.isascii()
    assert json.loads(p)["k"] == 3
