"""Rooms: the live state of each live stream (products, stock, promotions, on-screen item).

A :class:`Room` owns one :class:`~gateway.support.knowledge.Knowledge` and is the only code
that mutates it. The :class:`RoomRegistry` owns the set of rooms on a node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .knowledge import Knowledge


@dataclass
class Room:
    knowledge: Knowledge
    version: int = 0
    announcements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.knowledge.room.id

    def counters(self) -> dict[str, Any]:
        kb = self.knowledge
        gifts = {}
        for p in kb.promotions:
            if p.kind == "first_n_gift":
                prod = kb.product(p.sku) if p.sku else None
                gifts[p.id] = {"limit": p.limit, "claimed": p.claimed, "active": p.active,
                               "left": p.gifts_left(prod.stock if prod else None)}
        return {"stock": {p.sku: p.stock for p in kb.products}, "gifts": gifts,
                "on_screen": kb.on_screen}

    def snapshot(self) -> dict[str, Any]:
        return {"room": self.id, "version": self.version, "knowledge": self.knowledge.to_dict(),
                "counters": self.counters(), "announcements": list(self.announcements)}


class RoomRegistry:
    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}

    def add(self, kb: Knowledge) -> Room:
        room = Room(kb)
        self._rooms[room.id] = room
        return room

    def get(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    def ids(self) -> list[str]:
        return list(self._rooms)

    def __iter__(self):
        return iter(self._rooms.values())
