// Strings of the dashboard and admin pages, on top of the shared i18n.js.
import { getLang, lookup, onLangChange } from "./i18n.js";

const STRINGS = {
  zh: {
    "dash.title": "运营看板", "admin.title": "主管控制台", "lang.switch": "EN",
    "page.admin": "LiveDesk · 主管控制台", "page.dashboard": "LiveDesk · 运营看板",
    "k.open": "进行中", "k.queue": "排队", "k.frt": "首次响应 p50", "k.csat": "满意度",
    "k.conversions": "转化订单", "k.bot": "机器人解决", "k.agent": "人工解决", "k.abandoned": "放弃",
    "k.compensation": "补偿金额", "k.approvals": "待审批", "k.agents": "客服状态",
    "rooms": "直播间", "agents": "客服", "room": "直播间", "agent": "客服", "status": "状态",
    "load": "负载", "paused": "暂停分配", "run": "连续负面", "since": "本状态时长",
    "approvals": "待审批补偿", "no.approvals": "暂无待审批", "approve": "批准", "deny": "拒绝", "approval.limit": "上限 {amount}",
    "audit": "操作审计", "decided.done": "已批准并发放", "decided.denied": "已拒绝", "decided.failed": "发放失败",
    "break.suggested": "{agent} 连续处理了 {n} 个负面情绪会话，已建议休息并暂停分配",
    "kind.coupon": "优惠券", "kind.refund": "退款", "kind.gift": "赠品",
    "status.available": "在线", "status.away": "离开", "status.break": "小休", "status.offline": "离线",
    "yes": "是", "no": "否", "updated": "更新于",
    "common.error": "出错了：{msg}", "accounts": "账号", "acc.user": "用户名", "acc.name": "显示名", "acc.roles": "角色", "acc.rooms": "直播间",
    "acc.state": "状态", "acc.actions": "操作", "acc.enabled": "启用", "acc.disabled": "已停用",
    "acc.locked": "已锁定至 {t}（{n} 次失败）", "acc.failures": "{n} 次失败",
    "acc.disable": "停用", "acc.enable": "启用", "acc.set_role": "改角色", "acc.reset": "重置密码",
    "acc.new_password": "新密码（至少 10 位）", "acc.add": "添加账号", "acc.password": "密码（至少 10 位）",
    "acc.rooms_hint": "直播间，逗号分隔", "acc.none": "还没有账号", "acc.done": "已保存：{user}",
    "acc.unavailable": "此网关没有账号存储（需以 --data-dir 或 LIVEDESK_DATABASE_URL 启动）",
    "role.agent": "客服", "role.host": "主播", "role.supervisor": "主管", "role.admin": "管理员",
    "audit.ts": "时间", "audit.action": "操作", "audit.actor": "操作人", "audit.conversation": "会话",
    "audit.kind": "类型", "audit.amount": "金额", "audit.order_id": "订单号", "audit.outcome": "结果", "audit.reason": "原因",
    "action.compensate": "补偿", "action.approval": "审批", "action.return": "退货",
    "outcome.done": "已完成", "outcome.pending_approval": "待主管审批", "outcome.denied": "已拒绝",
    "outcome.failed": "失败", "outcome.approved": "已批准", "outcome.requested": "已申请",
  },
  en: {
    "dash.title": "Dashboard", "admin.title": "Supervisor console", "lang.switch": "中文",
    "page.admin": "LiveDesk · Supervisor console", "page.dashboard": "LiveDesk · Dashboard",
    "k.open": "Open", "k.queue": "Queue", "k.frt": "First response p50", "k.csat": "CSAT",
    "k.conversions": "Conversions", "k.bot": "Resolved by bot", "k.agent": "Resolved by agent",
    "k.abandoned": "Abandoned", "k.compensation": "Compensation", "k.approvals": "Pending approvals",
    "k.agents": "Agents", "rooms": "Rooms", "agents": "Agents", "room": "Room", "agent": "Agent",
    "status": "Status", "load": "Load", "paused": "Paused", "run": "Negative run", "since": "In status",
    "approvals": "Compensation approvals", "no.approvals": "Nothing to approve", "approve": "Approve",
    "deny": "Deny", "approval.limit": "limit {amount}", "audit": "Audit log", "decided.done": "approved and granted", "decided.denied": "denied",
    "decided.failed": "approved but failed",
    "break.suggested": "{agent} handled {n} negative conversations in a row: break suggested, assignments paused",
    "kind.coupon": "coupon", "kind.refund": "refund", "kind.gift": "gift",
    "status.available": "available", "status.away": "away", "status.break": "on break", "status.offline": "offline",
    "yes": "yes", "no": "no", "updated": "updated",
    "common.error": "Error: {msg}", "accounts": "Accounts", "acc.user": "User", "acc.name": "Name", "acc.roles": "Roles", "acc.rooms": "Rooms",
    "acc.state": "State", "acc.actions": "Actions", "acc.enabled": "enabled", "acc.disabled": "disabled",
    "acc.locked": "locked until {t} ({n} failures)", "acc.failures": "{n} failures",
    "acc.disable": "Disable", "acc.enable": "Enable", "acc.set_role": "Set role", "acc.reset": "Reset password",
    "acc.new_password": "new password (10+ characters)", "acc.add": "Add account", "acc.password": "password (10+ characters)",
    "acc.rooms_hint": "rooms, comma-separated", "acc.none": "No accounts yet", "acc.done": "Saved: {user}",
    "acc.unavailable": "This gateway keeps no accounts (start it with --data-dir or LIVEDESK_DATABASE_URL)",
    "role.agent": "agent", "role.host": "host", "role.supervisor": "supervisor", "role.admin": "admin",
    "audit.ts": "Time", "audit.action": "Action", "audit.actor": "By", "audit.conversation": "Conversation",
    "audit.kind": "Type", "audit.amount": "Amount", "audit.order_id": "Order", "audit.outcome": "Outcome", "audit.reason": "Reason",
    "action.compensate": "Compensation", "action.approval": "Approval", "action.return": "Return",
    "outcome.done": "Done", "outcome.pending_approval": "Awaiting supervisor approval", "outcome.denied": "Denied",
    "outcome.failed": "Failed", "outcome.approved": "Approved", "outcome.requested": "Requested",
  },
};

/** tw() for a value that may have no word (a new action or outcome): the value itself. */
export function twOr(key, fallback) {
  const lang = getLang();
  return STRINGS[lang]?.[key] ?? STRINGS.zh[key] ?? fallback;
}

export const tw = lookup(STRINGS);

export function applyWorkspaceI18n(root = document) {
  for (const el of root.querySelectorAll("[data-tw]")) el.textContent = tw(el.dataset.tw);
  for (const el of root.querySelectorAll("[data-tw-ph]")) el.placeholder = tw(el.dataset.twPh);
  for (const el of root.querySelectorAll("[data-tw-aria]")) el.setAttribute("aria-label", tw(el.dataset.twAria));
}

export { onLangChange };
