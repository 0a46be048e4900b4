"""Actions within authority: compensation, returns, supervisor approval and the audit trail.

Owns ``action.compensate`` / ``action.return`` (the agent assigned to the conversation),
``approval.decide`` / ``approval.list`` / ``audit.list`` (admins), the pending approvals and
the :class:`AuditLog`. An agent's authority is :meth:`Authority.limit_for`: per agent, else
per team, else ``max_compensation_default``. Within it a compensation runs through the
commerce adapter at once; above it, it becomes an ``approval.request`` on the ``admins``
topic and runs only when a supervisor approves. Every step is audit-logged and shown in the
conversation as a ``system`` message (so the viewer is told), and
``livedesk_compensation_amount_total{kind}`` moves only when a compensation is done.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from signaling import ErrorCode, Hub, ProtocolError, Request
from signaling.limits import MaxChars, MaxItems
from signaling.protocol import Event, Message, message

from .commerce import CommerceAdapter, CommerceError
from .conversation import Author, Conversation, server_text
from .events import ActionRecorded

log = logging.getLogger(__name__)

ADMINS_TOPIC = "admins"
SYSTEM = Author(role="system", user="system", name="系统")
MAX_AMOUNT = 1_000_000
KIND_ZH = {"coupon": "优惠券", "refund": "退款", "gift": "赠品"}


# --- wire ---------------------------------------------------------------------------------

@message("action.compensate", roles=("agent", "admin"))
class ActionCompensate(Message):
    conversation: str
    kind: Literal["coupon", "refund", "gift"]
    amount: float
    reason: Annotated[str, MaxChars(500)]
    # extension: the evidence, ids of this conversation's attachments (≤ 5; audit keeps them)
    attachments: Annotated[list[str], MaxItems(5), MaxChars(64)] | None = None


@message("action.return", roles=("agent", "admin"))
class ActionReturn(Message):
    conversation: str
    order_id: Annotated[str, MaxChars(128)]
    reason: Annotated[str, MaxChars(500)]
    attachments: Annotated[list[str], MaxItems(5), MaxChars(64)] | None = None  # evidence


@message("approval.decide", roles=("admin",))
class ApprovalDecide(Message):
    approval: str
    approve: bool
    note: Annotated[str, MaxChars(1000)] | None = None


@message("approval.list", roles=("admin",))
class ApprovalList(Message):
    """The approvals still waiting for a decision (admin page load)."""


@message("audit.list", roles=("admin",))
class AuditList(Message):
    conversation: str | None = None


@dataclass
class ActionResult(Event):
    TYPE: ClassVar[str] = "action.result"
    action: str  # "compensate" | "return"
    conversation: str
    status: str  # done | pending_approval | denied | failed
    kind: str | None = None
    amount: float | None = None
    approval: str | None = None
    order_id: str | None = None
    reference: str | None = None
    note: str | None = None


@dataclass
class ApprovalRequest(Event):
    TYPE: ClassVar[str] = "approval.request"
    approval: str
    conversation: str
    agent: dict
    kind: str
    amount: float
    reason: str
    limit: float
    room: str | None = None
    viewer: dict | None = None
    ts: float | None = None
    attachments: list | None = None  # the evidence: [{attachment, content_type, width, height}]


@dataclass
class ApprovalDecided(Event):
    TYPE: ClassVar[str] = "approval.decided"
    approval: str
    conversation: str
    status: str  # done | denied | failed
    by: str
    note: str | None = None


@dataclass
class ApprovalsReply(Event):
    TYPE: ClassVar[str] = "approvals"
    approvals: list = field(default_factory=list)


@dataclass
class AuditReply(Event):
    TYPE: ClassVar[str] = "audit"
    entries: list = field(default_factory=list)


# --- state --------------------------------------------------------------------------------

class Authority:
    """Compensation limits. ``limits`` maps an agent id to a number, or a team name to
    ``{"limit": N, "agents": [ids]}``; agents without an entry get ``default``."""

    def __init__(self, default: float, limits: dict[str, Any] | None = None):
        self.default = float(default)
        self.per_agent: dict[str, float] = {}
        self.per_team: dict[str, float] = {}
        for key, v in (limits or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.per_agent[key] = float(v)
            elif isinstance(v, dict) and isinstance(v.get("limit"), (int, float)):
                for agent in v.get("agents") or ():
                    self.per_team.setdefault(str(agent), float(v["limit"]))
            else:
                raise ValueError(f"compensation_limits[{key!r}] must be a number or "
                                 f"{{limit, agents}}")

    def limit_for(self, agent: str) -> float:
        if agent in self.per_agent:
            return self.per_agent[agent]
        return self.per_team.get(agent, self.default)


class AuditLog:
    """Append-only, bounded, in memory: who did what, how much, when, where, with what result."""

    def __init__(self, maxlen: int = 10000):
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)

    def record(self, **entry: Any) -> dict[str, Any]:
        e = {"id": "au_" + secrets.token_hex(5), "ts": time.time(), **entry}
        self._entries.append(e)
        return e

    def add(self, e: dict[str, Any]) -> None:
        self._entries.append(e)

    def list(self, conversation: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        out = [dict(e) for e in self._entries if conversation is None or e.get("conversation") == conversation]
        return out[-limit:]


@dataclass
class Approval:
    id: str
    conversation: str
    agent: str
    agent_name: str
    viewer: str
    kind: str
    amount: float
    reason: str
    limit: float
    ts: float = field(default_factory=time.time)
    status: str = "pending"
    by: str | None = None  # the admin deciding it
    attachments: list = field(default_factory=list)  # evidence refs, shown on the card

    def request_event(self, conv: Conversation) -> ApprovalRequest:
        return ApprovalRequest(approval=self.id, conversation=self.conversation,
                               agent={"user": self.agent, "name": self.agent_name},
                               kind=self.kind, amount=self.amount, reason=self.reason,
                               limit=self.limit, room=conv.room,
                               viewer={"user": conv.viewer, "name": conv.viewer_name}, ts=self.ts,
                               attachments=list(self.attachments) or None)


class Actions:
    def __init__(self, hub: Hub, support, adapter: CommerceAdapter, authority: Authority,
                 audit: AuditLog | None = None, metrics: Any = None):
        self.hub = hub
        self.support = support
        self.adapter = adapter
        self.authority = authority
        self.audit = audit or AuditLog()
        self.metrics = metrics
        self.approvals: dict[str, Approval] = {}
        self.granted: list[dict[str, Any]] = []  # done compensations (dashboard)
        # approvals, the audit trail and grants are replicated records: an admin on any node
        # decides (exactly once), and every node's audit and dashboard see every action
        self.backend = support.backend
        self.backend.listen("approval", self._approval_changed)
        self.backend.listen("audit", self._audit_added)
        self.backend.listen("granted", lambda k, v: self.granted.append(v))
        hub.handle(ActionCompensate, self.on_compensate)
        hub.handle(ActionReturn, self.on_return)
        hub.handle(ApprovalDecide, self.on_decide)
        hub.handle(ApprovalList, self.on_approvals)
        hub.handle(AuditList, self.on_audit)

    async def _assigned(self, req: Request, conv_id: str) -> Conversation:
        conv = await self.support.conversation_for(req, conv_id, allow_admin=False)
        if conv.agent != req.user:
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                "only the agent assigned to the conversation may act on it")
        if conv.state != "assigned":
            raise ProtocolError(ErrorCode.BAD_STATE,
                                f"conversation is {conv.state}; actions need an assigned one")
        return conv

    async def _evidence(self, req: Request, conv: Conversation, ids: list[str] | None,
                        what: str) -> list[dict[str, Any]]:
        """The action's evidence: ``ids`` checked as this conversation's attachments (any
        member's upload: the viewer's photos are the usual evidence), as refs the audit
        record and the approval card carry."""
        if not ids:
            return []
        return await self.support.attachment_refs(req, conv, ids, what, own_only=False)

    async def _record(self, **entry: Any) -> dict[str, Any]:
        e = {"id": "au_" + secrets.token_hex(5), "ts": time.time(), **entry}
        await self.backend.put("audit", e["id"], e)
        return e

    def _audit_added(self, key: str, e: dict[str, Any]) -> None:
        self.audit.add(e)
        self.support.events.publish(ActionRecorded(e))  # on every node: caches, dashboard

    def _approval_changed(self, key: str, v: dict[str, Any]) -> None:
        self.approvals[key] = Approval(**v)

    # --- compensation ------------------------------------------------------------------------
    async def on_compensate(self, req: Request[ActionCompensate]):
        msg: ActionCompensate = req.msg
        conv = await self._assigned(req, msg.conversation)
        amount = msg.amount
        if not math.isfinite(amount) or amount <= 0 or amount > MAX_AMOUNT:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"action.compensate: 'amount' must be > 0 and ≤ {MAX_AMOUNT}")
        amount = round(amount, 2)
        reason = msg.reason.strip()
        if not reason or len(reason) > 500:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                "action.compensate: 'reason' must be 1–500 characters")
        evidence = await self._evidence(req, conv, msg.attachments, "action.compensate")
        limit = self.authority.limit_for(req.user)
        base = dict(action="compensate", actor=req.user, role=req.role, conversation=conv.id,
                    room=conv.room, viewer=conv.viewer, kind=msg.kind, amount=amount,
                    reason=reason, limit=limit, attachments=evidence)
        if amount <= limit and await self._reserve(conv, req.user, amount, limit):
            status, ref = await self._run(conv, msg.kind, amount, reason)
            if status != "done":  # nothing was granted: the allowance is not used up
                await self._unreserve(conv, req.user, amount)
            await self._record(**base, outcome=status, reference=ref)
            await self._tell_viewer(conv, msg.kind, amount, status)
            return ActionResult("compensate", conv.id, status, kind=msg.kind, amount=amount,
                                reference=ref)
        ap = Approval("ap_" + secrets.token_urlsafe(6), conv.id, req.user,
                      req.claims.display_name, conv.viewer, msg.kind, amount, reason, limit,
                      attachments=evidence)
        await self.backend.put("approval", ap.id, dataclasses.asdict(ap))
        await self._record(**base, outcome="pending_approval", approval=ap.id)
        req.reply(ActionResult("compensate", conv.id, "pending_approval", kind=msg.kind,
                               amount=amount, approval=ap.id))
        await self.support.post(conv, SYSTEM,
                                f"客服已为您申请{KIND_ZH[msg.kind]} ¥{amount:g}，正在等待主管审批。",
                                kind="system", meta={"action": "compensate", "status": "pending_approval",
                                                     **server_text("comp.pending", kind=msg.kind,
                                                                   amount=amount)})
        await self.hub.publish(ADMINS_TOPIC, ap.request_event(conv))
        return None

    # --- authority per conversation (and per viewer per day) ---------------------------------
    # What an agent grants without approval is summed in replicated records, each changed by
    # compare-and-set (``backend.put(expect=…)``), so two grants racing on two nodes cannot
    # both fit into what is left. Why: the limit was checked per action, and six ¥50 refunds
    # on one conversation by an agent with a ¥50 limit were all granted (¥300, no approval).

    def _day_key(self, viewer: str) -> str:
        return f"{viewer}|{time.strftime('%Y-%m-%d', time.gmtime())}"

    async def _add(self, namespace: str, key: str, cents: int, cap: int | None,
                   ttl_s: float | None) -> bool:
        """Add ``cents`` to the sum kept in record ``namespace/key`` unless that takes it
        over ``cap`` (``None``: no cap, e.g. giving back). True when added."""
        cur = self.backend.get(namespace, key)
        for _ in range(50):
            have = int(cur["cents"]) if cur else 0
            if cap is not None and have + cents > cap:
                return False
            if cur is None:
                ok, cur = await self.backend.put(namespace, key, {"cents": cents},
                                                 if_absent=True, ttl_s=ttl_s)
            else:
                ok, cur = await self.backend.put(namespace, key, {"cents": max(0, have + cents)},
                                                 expect={"cents": have}, ttl_s=ttl_s)
            if ok:
                return True
        raise ProtocolError(ErrorCode.CONFLICT, "too many grants at once on this conversation; "
                                                "retry")

    async def _reserve(self, conv: Conversation, agent: str, amount: float,
                       limit: float) -> bool:
        """Count ``amount`` against ``agent``'s authority on ``conv`` (and the viewer's daily
        cap, when one is set); False, with nothing counted, when it does not fit."""
        cents = round(amount * 100)
        if not await self._add("authority", f"{agent}|{conv.id}", cents, round(limit * 100),
                               self.support.record_ttl_s):
            return False
        daily = self.support.limits.compensation_viewer_daily
        if daily > 0 and not await self._add("authority_day", self._day_key(conv.viewer), cents,
                                             round(daily * 100), 2 * 86400.0):
            await self._add("authority", f"{agent}|{conv.id}", -cents, None,
                            self.support.record_ttl_s)
            return False
        return True

    async def _unreserve(self, conv: Conversation, agent: str, amount: float) -> None:
        cents = round(amount * 100)
        await self._add("authority", f"{agent}|{conv.id}", -cents, None, self.support.record_ttl_s)
        if self.support.limits.compensation_viewer_daily > 0:
            await self._add("authority_day", self._day_key(conv.viewer), -cents, None, 2 * 86400.0)

    async def _run(self, conv: Conversation, kind: str, amount: float,
                   reason: str) -> tuple[str, str | None]:
        try:
            r = await self.adapter.compensate(conv.viewer, kind, amount, reason, conv.id)
        except CommerceError as e:
            log.warning("compensate failed: %s", e)
            return "failed", None
        status = "done" if r.get("status") == "done" else "failed"
        if status == "done":
            if self.metrics:
                self.metrics.compensation.labels(kind=kind).inc(amount)
            await self.backend.put("granted", "gr_" + secrets.token_hex(5), {
                "conversation": conv.id, "room": conv.room, "agent": conv.agent,
                "kind": kind, "amount": amount, "ts": time.time()})
        return status, r.get("reference")

    async def _tell_viewer(self, conv: Conversation, kind: str, amount: float, status: str) -> None:
        text = {"done": f"已为您发放{KIND_ZH[kind]} ¥{amount:g}，请注意查收。",
                "denied": f"很抱歉，您的{KIND_ZH[kind]}申请（¥{amount:g}）未获批准，客服会继续为您处理。",
                "failed": f"{KIND_ZH[kind]}发放暂时失败，客服会尽快为您重新处理。"}[status]
        await self.support.post(conv, SYSTEM, text, kind="system",
                                meta={"action": "compensate", "status": status,
                                      **server_text(f"comp.{status}", kind=kind, amount=amount)})

    async def on_decide(self, req: Request[ApprovalDecide]):
        msg: ApprovalDecide = req.msg
        ap = self.approvals.get(msg.approval)
        if ap is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown approval {msg.approval!r}")
        conv = self.support.store.get(ap.conversation)
        note = (msg.note or "").strip()[:500] or None
        # one decision, whichever node it reaches first: compare-and-set on the record
        written, cur = await self.backend.put(
            "approval", ap.id, dict(dataclasses.asdict(ap), status="deciding", by=req.user),
            expect={"status": "pending"})
        if not written:
            raise ProtocolError(ErrorCode.BAD_STATE,
                                f"approval was already decided ({(cur or {}).get('status')})")
        if msg.approve:
            status, ref = await self._run(conv, ap.kind, ap.amount, ap.reason)
        else:
            status, ref = "denied", None
        await self.backend.put("approval", ap.id, dict(dataclasses.asdict(ap), status=status))
        await self._record(action="approval", actor=req.user, role=req.role, conversation=conv.id,
                     room=conv.room, viewer=conv.viewer, kind=ap.kind, amount=ap.amount,
                     reason=ap.reason, approval=ap.id, requested_by=ap.agent,
                     outcome=status, reference=ref, note=note, attachments=ap.attachments)
        result = ActionResult("compensate", conv.id, status, kind=ap.kind, amount=ap.amount,
                              approval=ap.id, reference=ref, note=note)
        req.reply(result)
        await self.hub.send_to_user(ap.agent, result)
        await self._tell_viewer(conv, ap.kind, ap.amount, status)
        await self.hub.publish(ADMINS_TOPIC, ApprovalDecided(ap.id, conv.id, status, req.user, note))
        return None

    async def on_approvals(self, req: Request[ApprovalList]):
        out = []
        for ap in self.approvals.values():
            conv = self.support.store.get(ap.conversation)
            if ap.status == "pending" and conv is not None:
                out.append(ap.request_event(conv).to_wire())
        return ApprovalsReply(out)

    async def on_audit(self, req: Request[AuditList]):
        return AuditReply(self.audit.list(req.msg.conversation))

    # --- returns -----------------------------------------------------------------------------
    async def on_return(self, req: Request[ActionReturn]):
        msg: ActionReturn = req.msg
        conv = await self._assigned(req, msg.conversation)
        reason = msg.reason.strip()
        if not reason or len(reason) > 500:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "action.return: 'reason' must be 1–500 characters")
        evidence = await self._evidence(req, conv, msg.attachments, "action.return")
        try:
            order = await self.adapter.order(msg.order_id)
        except CommerceError as e:
            raise ProtocolError(ErrorCode.UNAVAILABLE, f"the shop did not answer: {e}") from None
        if order is None or order.get("user") != conv.viewer:
            # the same answer whether the order is unknown or someone else's
            raise ProtocolError(ErrorCode.NOT_FOUND,
                                f"no order {msg.order_id!r} for this conversation's viewer")
        try:
            r = await self.adapter.create_return(msg.order_id, reason)
            status, ref = "done", r.get("return_id")
        except CommerceError as e:
            log.warning("return failed: %s", e)
            status, ref = "failed", None
        await self._record(action="return", actor=req.user, role=req.role, conversation=conv.id,
                     room=conv.room, viewer=conv.viewer, order_id=msg.order_id, reason=reason,
                     outcome=status, reference=ref, attachments=evidence)
        text = (f"已为您的订单 {msg.order_id} 发起退货申请（编号 {ref}），请留意后续通知。"
                if status == "done" else f"订单 {msg.order_id} 的退货申请暂时失败，客服会尽快重试。")
        req.reply(ActionResult("return", conv.id, status, order_id=msg.order_id, reference=ref))
        params = {"order": msg.order_id, "ref": ref} if status == "done" else {"order": msg.order_id}
        await self.support.post(conv, SYSTEM, text, kind="system",
                                meta={"action": "return", "status": status,
                                      **server_text(f"return.{status}", **params)})
        return None
