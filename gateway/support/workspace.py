"""The agent workspace: builds and wires its parts into a running gateway.

Owns nothing but the wiring: which part listens to which domain event, and the background
tasks (idle sweep, dashboard ticker), started by :meth:`Workspace.start` and ended by
:meth:`Workspace.close`. Its HTTP routes (``/api/rooms/{room}/notices``, ``/api/dashboard``)
are in ``gateway/http_api.py``, which calls :attr:`notices` and :attr:`dashboard`. The parts are :mod:`.browsing`, :mod:`.commerce`,
:mod:`.handoff`, :mod:`.actions`, :mod:`.aftersale`, :mod:`.notices`, :mod:`.csat`,
:mod:`.wellbeing`, :mod:`.outcomes` and :mod:`.dashboard`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .actions import Actions, AuditLog, Authority
from .aftersale import AfterSaleResponder
from .browsing import Browsing
from .commerce import ViewerOrders, make_adapter
from .csat import Csat
from .dashboard import Dashboard
from .handoff import Handoff
from .notices import Notices
from .outcomes import Outcomes
from .responder import Responder
from .wellbeing import Wellbeing

if TYPE_CHECKING:
    from ..app import Gateway


class Workspace:
    def __init__(self, gw: Gateway):
        cfg, hub, support, metrics = gw.config, gw.hub, gw.support, gw.metrics
        self.gw = gw
        self.adapter = make_adapter(cfg.commerce_url, cfg.commerce_token, cfg.commerce_timeout_s)
        self.orders = ViewerOrders(self.adapter)
        self.browsing = Browsing(hub, gw.rooms, on_event=self._on_browse, backend=support.backend,
                                 ttl_s=support.record_ttl_s)
        self.csat = Csat(hub, support, metrics)
        self.outcomes = Outcomes(hub, support, metrics, idle_close_s=cfg.idle_close_s,
                                 conversion_window_s=cfg.conversion_window_s)
        self.handoff = Handoff(hub, support, gw.rooms, self.orders, self.browsing.store,
                               extra_for=self._earlier_extra,
                               fetch_timeout_s=min(2.0, cfg.commerce_timeout_s))
        self.actions = Actions(hub, support, self.adapter,
                               Authority(cfg.max_compensation_default, cfg.compensation_limits),
                               AuditLog(), metrics, on_change=self._on_action)
        self.wellbeing = Wellbeing(hub, support, cfg.agent_capacities, cfg.fatigue_threshold)
        self.notices = Notices(hub, support, self.browsing.store, self.adapter,
                               self.orders, known_viewers=self._known_viewers)
        self.dashboard = Dashboard(hub, support, gw.rooms, self.csat, self.outcomes,
                                   self.actions, self.wellbeing, node=gw.config.node_id)
        self._room_buyers: dict[str, set[str]] = {}
        support.context_providers += [self.browsing.context, self.handoff.context]
        support.agent_info = lambda user: {"max_compensation": self.actions.authority.limit_for(user)}
        if gw.rooms_service is not None:
            gw.rooms_service.order_listeners.append(self._on_order)
        self._tasks: list[asyncio.Task] = []

    def aftersale(self, inner: Responder) -> AfterSaleResponder:
        return AfterSaleResponder(inner, self.orders)

    # --- glue --------------------------------------------------------------------------------
    def _on_browse(self, user: str, ev: dict) -> None:
        if ev["kind"] == "support_opened":  # warm the order cache before any handoff
            self.gw.support._spawn(self.handoff.prefetch(user))

    def _on_action(self, entry: dict) -> None:
        if entry.get("action") == "return":
            self.orders.invalidate(entry["viewer"])

    def _earlier_extra(self, conv) -> dict[str, Any]:
        return {"outcome": self.outcomes.outcome_of(conv.id),
                "csat": self.csat.for_conversation(conv.id)}

    def _known_viewers(self, room: str) -> set[str]:
        users = set(self.browsing.store.viewers(room))
        users |= {c.viewer for c in self.gw.support.store.all() if c.room == room}
        users |= self._room_buyers.get(room, set())
        known = getattr(self.adapter, "known_users", None)
        if known is not None:
            users |= set(known())
        return users

    def _on_order(self, room, order, outcome) -> None:
        if outcome.status == 200 and not outcome.repeated:
            self._room_buyers.setdefault(room.id, set()).add(order.user)
            record = getattr(self.adapter, "record_order", None)
            if record is not None:
                p = room.knowledge.product(order.sku)
                record(room.id, order.order_id, order.user, order.sku, order.qty,
                       name=p.name if p else order.sku,
                       amount=round((p.price if p else 0) * order.qty, 2))
            self.orders.invalidate(order.user)
        self.outcomes.on_order(room, order, outcome)

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.outcomes.run_sweeper()),
                       loop.create_task(self.dashboard.run())]

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        close = getattr(self.adapter, "close", None)
        if close is not None:
            await close()
