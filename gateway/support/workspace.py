"""The agent workspace: its parts, the glue between them, and their background tasks.

Owns the parts and the glue: which part reacts to which domain event (typed events on the
node's :class:`~signaling.events.Events`), and the background tasks (idle sweep, dashboard
ticker), started by :meth:`Workspace.start` and ended by :meth:`Workspace.close`. Every
collaborator comes in through the constructor (built by ``gateway/wiring.py``); the shop
adapter, the viewer-orders cache and the compensation authority are built there too,
because the support service needs them before the workspace exists (the bot's after-sale
answers, ``agent.state``). Its HTTP routes (``/api/rooms/{room}/notices``,
``/api/dashboard``) are in ``gateway/http_api.py``, which calls :attr:`notices` and
:attr:`dashboard`. The parts are :mod:`.browsing`, :mod:`.commerce`, :mod:`.handoff`,
:mod:`.actions`, :mod:`.notices`, :mod:`.csat`, :mod:`.wellbeing`, :mod:`.outcomes` and
:mod:`.dashboard`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from signaling import Hub
from signaling.events import Events

from ..config import Config
from ..metrics import Metrics
from .actions import Actions, AuditLog, Authority
from .browsing import Browsing
from .commerce import CommerceAdapter, ViewerOrders
from .conversation import Conversation
from .csat import Csat
from .dashboard import Dashboard
from .events import ActionRecorded, AgentContextWanted, BrowseRecorded, OrderPlaced
from .handoff import Handoff
from .notices import Notices
from .outcomes import Outcomes
from .room import RoomRegistry
from .service import SupportService
from .wellbeing import Wellbeing


class Workspace:
    def __init__(self, config: Config, hub: Hub, rooms: RoomRegistry, support: SupportService,
                 events: Events, metrics: Metrics, adapter: CommerceAdapter,
                 orders: ViewerOrders, authority: Authority):
        cfg = config
        self.support = support
        self.adapter = adapter
        self.orders = orders
        self.browsing = Browsing(hub, rooms, events=events, backend=support.backend,
                                 ttl_s=support.record_ttl_s)
        self.csat = Csat(hub, support, metrics)
        self.outcomes = Outcomes(hub, support, metrics, idle_close_s=cfg.idle_close_s,
                                 conversion_window_s=cfg.conversion_window_s)
        self.handoff = Handoff(hub, support, rooms, self.orders, self.browsing.store,
                               extra_for=self._earlier_extra,
                               fetch_timeout_s=min(2.0, cfg.commerce_timeout_s))
        self.actions = Actions(hub, support, self.adapter, authority, AuditLog(), metrics)
        self.wellbeing = Wellbeing(hub, support, cfg.agent_capacities, cfg.fatigue_threshold)
        self.notices = Notices(hub, support, self.browsing.store, self.adapter,
                               self.orders, known_viewers=self._known_viewers)
        self.dashboard = Dashboard(hub, support, rooms, self.csat, self.outcomes,
                                   self.actions, self.wellbeing, node=cfg.node_id)
        self._room_buyers: dict[str, set[str]] = {}
        self._tasks: list[asyncio.Task] = []
        # what an agent sees: browsing first, then orders, promotions, earlier conversations
        events.subscribe(AgentContextWanted,
                         lambda e: e.context.update(self.browsing.context(e.conversation)))
        events.subscribe(AgentContextWanted,
                         lambda e: e.context.update(self.handoff.context(e.conversation)))
        events.subscribe(BrowseRecorded, self._on_browse)
        events.subscribe(ActionRecorded, self._on_action)
        events.subscribe(OrderPlaced, self._on_order)

    # --- glue --------------------------------------------------------------------------------
    def _on_browse(self, e: BrowseRecorded) -> Coroutine[Any, Any, bool] | None:
        if e.event["kind"] == "support_opened":  # warm the order cache before any handoff
            return self.handoff.prefetch(e.user)  # run as a task by Events
        return None

    def _on_action(self, e: ActionRecorded) -> None:
        if e.entry.get("action") == "return":
            self.orders.invalidate(e.entry["viewer"])

    def _earlier_extra(self, conv: Conversation) -> dict[str, Any]:
        return {"outcome": self.outcomes.outcome_of(conv.id),
                "csat": self.csat.for_conversation(conv.id)}

    def _known_viewers(self, room: str) -> set[str]:
        users = set(self.browsing.store.viewers(room))
        users |= {c.viewer for c in self.support.store.all() if c.room == room}
        users |= self._room_buyers.get(room, set())
        known = getattr(self.adapter, "known_users", None)
        if known is not None:
            users |= set(known())
        return users

    def _on_order(self, e: OrderPlaced) -> None:
        """Accepted orders: remember the buyer (notices), tell the demo shop, drop the
        buyer's cached orders. (Conversions: ``Outcomes`` subscribes itself.)"""
        room, order, outcome = e.room, e.order, e.outcome
        if outcome.status == 200 and not outcome.repeated:
            self._room_buyers.setdefault(room.id, set()).add(order.user)
            record = getattr(self.adapter, "record_order", None)
            if record is not None:
                p = room.knowledge.product(order.sku)
                record(room.id, order.order_id, order.user, order.sku, order.qty,
                       name=p.name if p else order.sku,
                       amount=round((p.price if p else 0) * order.qty, 2))
            self.orders.invalidate(order.user)

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.outcomes.run_sweeper()),
                       loop.create_task(self.dashboard.run())]

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
