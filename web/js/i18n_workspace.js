// Strings of the dashboard and admin pages, on top of the shared i18n.js.
import { getLang, onLangChange } from "./i18n.js";

const STRINGS = {
  zh: {
    "dash.title": "运营看板", "admin.title": "主管控制台", "lang.switch": "EN",
    "k.open": "进行中", "k.queue": "排队", "k.frt": "首次响应 p50", "k.csat": "满意度",
    "k.conversions": "转化订单", "k.bot": "机器人解决", "k.agent": "人工解决", "k.abandoned": "放弃",
    "k.compensation": "补偿金额", "k.approvals": "待审批", "k.agents": "客服状态",
    "rooms": "直播间", "agents": "客服", "room": "直播间", "agent": "客服", "status": "状态",
    "load": "负载", "paused": "暂停分配", "run": "连续负面", "since": "本状态时长",
    "approvals": "待审批补偿", "no.approvals": "暂无待审批", "approve": "批准", "deny": "拒绝",
    "audit": "操作审计", "decided.done": "已批准并发放", "decided.denied": "已拒绝", "decided.failed": "发放失败",
    "break.suggested": "{agent} 连续处理了 {n} 个负面情绪会话，已建议休息并暂停分配",
    "kind.coupon": "优惠券", "kind.refund": "退款", "kind.gift": "赠品",
    "status.available": "在线", "status.away": "离开", "status.break": "小休", "status.offline": "离线",
    "yes": "是", "no": "否", "updated": "更新于",
  },
  en: {
    "dash.title": "Dashboard", "admin.title": "Supervisor console", "lang.switch": "中文",
    "k.open": "Open", "k.queue": "Queue", "k.frt": "First response p50", "k.csat": "CSAT",
    "k.conversions": "Conversions", "k.bot": "Resolved by bot", "k.agent": "Resolved by agent",
    "k.abandoned": "Abandoned", "k.compensation": "Compensation", "k.approvals": "Pending approvals",
    "k.agents": "Agents", "rooms": "Rooms", "agents": "Agents", "room": "Room", "agent": "Agent",
    "status": "Status", "load": "Load", "paused": "Paused", "run": "Negative run", "since": "In status",
    "approvals": "Compensation approvals", "no.approvals": "Nothing to approve", "approve": "Approve",
    "deny": "Deny", "audit": "Audit log", "decided.done": "approved and granted", "decided.denied": "denied",
    "decided.failed": "approved but failed",
    "break.suggested": "{agent} handled {n} negative conversations in a row: break suggested, assignments paused",
    "kind.coupon": "coupon", "kind.refund": "refund", "kind.gift": "gift",
    "status.available": "available", "status.away": "away", "status.break": "on break", "status.offline": "offline",
    "yes": "yes", "no": "no", "updated": "updated",
  },
};

export function tw(key, vars = {}) {
  const lang = getLang();
  const s = STRINGS[lang]?.[key] ?? STRINGS.zh[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
}

export function applyWorkspaceI18n(root = document) {
  for (const el of root.querySelectorAll("[data-tw]")) el.textContent = tw(el.dataset.tw);
}

export { onLangChange };
