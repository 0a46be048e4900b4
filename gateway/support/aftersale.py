"""After-sale answers with real order data: a :class:`Responder` wrapper.

Owns one decision: when the inner responder (the offline bot, an LLM) classifies a message
as ``logistics`` or ``return_refund``, the answer is completed with the asking viewer's
*own* orders from the commerce adapter (order id, status, courier, tracking number, ETA).
Only ``query.user``'s orders are ever looked at; an order id the viewer mentions that is not
theirs gets the same "not found among your orders" as an unknown one. It stays fast: the
per-viewer cache, else a fetch bounded by ``timeout_s`` (200 ms), else the inner answer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .commerce import ViewerOrders
from .responder import BotQuery, BotReply, Responder

AFTER_SALE_INTENTS = ("logistics", "return_refund")

STATUS_ZH = {"in_transit": "运输中", "awaiting_shipment": "待发货", "delayed": "延误",
             "delivered": "已签收", "out_for_delivery": "派送中", "returned": "已退回",
             "shipped": "已发货", "paid": "已付款", "return_requested": "退货申请中"}


def _line(o: dict[str, Any], lang: str) -> str:
    lg = o.get("logistics") or {}
    status = lg.get("status") or o.get("status") or "unknown"
    name = o.get("name") or o.get("sku") or ""
    if lang == "en":
        parts = [f"order {o['order_id']} ({name}): {status.replace('_', ' ')}"]
        if lg.get("courier"):
            parts.append(f"{lg['courier']} {lg.get('tracking_no') or ''}".strip())
        if lg.get("eta") and status != "delivered":
            parts.append(f"ETA {lg['eta']}")
        if lg.get("last_event") and lg["last_event"] != status:
            parts.append(str(lg["last_event"]))
        return ", ".join(parts)
    parts = [f"订单 {o['order_id']}（{name}）：{STATUS_ZH.get(status, status)}"]
    if lg.get("courier"):
        parts.append(f"{lg['courier']} {lg.get('tracking_no') or ''}".strip())
    if lg.get("eta") and status != "delivered":
        parts.append(f"预计 {lg['eta']} 送达")
    if lg.get("last_event") and lg["last_event"] != STATUS_ZH.get(status, status):
        parts.append(str(lg["last_event"]))
    return "，".join(parts)


def compose(reply: BotReply, orders: list[dict[str, Any]]) -> str:
    """A question about one of the viewer's own orders is answered with that order alone;
    otherwise the inner answer stays and the viewer's recent orders are appended."""
    en = reply.lang == "en"
    sep, end = ("; ", ".") if en else ("；", "。")
    asked = str(reply.slots.get("order_id") or "").lower()
    mine = {o["order_id"].lower(): o for o in orders}
    if asked in mine and reply.intent == "logistics":
        lead = "Here is your order status: " if en else "为您查到的订单物流："
        return lead + _line(mine[asked], reply.lang) + end
    picked = [mine[asked]] if asked in mine else orders[:3]
    head = ""
    if asked and asked not in mine:
        head = ("I couldn't find that order number among your orders. " if en
                else "在您的订单里没有找到这个订单号。")
    lead = "Your orders: " if en else "您的订单："
    text = reply.text + "\n" + head + lead + sep.join(_line(o, reply.lang) for o in picked) + end
    if reply.intent == "return_refund":
        text += (" Tap “human agent” if you want us to start a return." if en
                 else "如需退货，回复「转人工」由客服为您发起。")
    return text


class AfterSaleResponder:
    """Wraps any responder; completes after-sale answers with the viewer's own orders."""

    def __init__(self, inner: Responder, orders: ViewerOrders, timeout_s: float = 0.2):
        self.inner = inner
        self.orders = orders
        self.timeout_s = timeout_s

    def __getattr__(self, name: str):  # warm_up and friends of the inner responder
        return getattr(self.inner, name)

    async def respond(self, query: BotQuery) -> BotReply:
        reply = await self.inner.respond(query)
        if reply.intent not in AFTER_SALE_INTENTS or not query.user:
            return reply
        orders = await self.orders.fetch_quietly(query.user, self.timeout_s)
        orders = [o for o in orders or () if o.get("user", query.user) == query.user]
        if not orders:
            return reply
        return dataclasses.replace(
            reply, text=compose(reply, orders),
            slots={**reply.slots, "orders": [o["order_id"] for o in orders[:3]]})
