// Strings of the history page (web/history.html), on top of the shared i18n.js.
import { getLang, lookup } from "./i18n.js";

const STRINGS = {
  zh: {
    title: "会话记录", search: "搜索", results: "结果", actions: "操作记录", orders: "订单",
    "f.q": "关键词", "f.user": "观众", "f.agent": "客服", "f.room": "直播间", "f.order": "订单号",
    "f.since": "开始日期", "f.until": "结束日期",
    "do.search": "搜索", "do.export_json": "导出 JSON", "do.export_csv": "导出 CSV",
    "c.conversation": "会话", "c.user": "观众", "c.room": "直播间", "c.state": "状态",
    "c.agent": "客服", "c.opened": "开始", "c.resolved": "结束", "c.snippet": "摘要",
    "state.bot": "机器人", "state.queued": "排队中", "state.human": "人工", "state.assigned": "人工处理中",
    "state.resolved": "已结束", "role.agent": "客服", "role.supervisor": "主管", "role.admin": "管理员",
    "found": "找到 {n} 个会话", "none": "没有符合条件的会话", "busy": "正在搜索…",
    "exported": "已导出 {file}", "who": "{user}（{role}）", "who.dev": "演示身份：{user}（{role}）",
    "error": "出错了：{msg}", "err.forbidden": "无权查看：客服只能查看自己处理过的会话。",
    "err.unavailable": "此网关没有开启历史记录存储（--data-dir 或 LIVEDESK_DATABASE_URL）。",
    "t.title": "会话 {cid}", "t.viewer": "观众", "t.room": "直播间", "t.agent": "客服",
    "t.opened": "开始", "t.resolved": "结束", "t.reason": "转人工原因", "t.csat": "满意度",
    "t.outcome": "结果", "t.none": "无", "from.viewer": "观众", "from.agent": "客服",
    "from.bot": "机器人", "from.host": "主播", "from.system": "系统",
    "t.frt": "首次回复 {s} 秒", "t.messages": "聊天记录", "page": "LiveDesk · 会话记录",
  },
  en: {
    title: "Conversation history", search: "Search", results: "Results", actions: "Actions",
    orders: "Orders",
    "f.q": "Text", "f.user": "Viewer", "f.agent": "Agent", "f.room": "Room", "f.order": "Order ID",
    "f.since": "From", "f.until": "To",
    "do.search": "Search", "do.export_json": "Export JSON", "do.export_csv": "Export CSV",
    "c.conversation": "Conversation", "c.user": "Viewer", "c.room": "Room", "c.state": "State",
    "c.agent": "Agent", "c.opened": "Opened", "c.resolved": "Resolved", "c.snippet": "Snippet",
    "state.bot": "bot", "state.queued": "queued", "state.human": "with agent", "state.assigned": "with agent",
    "state.resolved": "resolved", "role.agent": "agent", "role.supervisor": "supervisor", "role.admin": "admin",
    "found": "{n} conversations found", "none": "No conversation matches", "busy": "Searching…",
    "exported": "Exported {file}", "who": "{user} ({role})", "who.dev": "Demo identity: {user} ({role})",
    "error": "Error: {msg}", "err.forbidden": "Not allowed: agents see only conversations they handled.",
    "err.unavailable": "This gateway keeps no history (start it with --data-dir or LIVEDESK_DATABASE_URL).",
    "t.title": "Conversation {cid}", "t.viewer": "Viewer", "t.room": "Room", "t.agent": "Agent",
    "t.opened": "Opened", "t.resolved": "Resolved", "t.reason": "Escalation reason", "t.csat": "CSAT",
    "t.outcome": "Outcome", "t.none": "none", "from.viewer": "Viewer", "from.agent": "Agent",
    "from.bot": "Bot", "from.host": "Host", "from.system": "System",
    "t.frt": "first reply {s} s", "t.messages": "Transcript", "page": "LiveDesk · History",
  },
};

export const th = lookup(STRINGS);

export function applyHistoryI18n(root = document) {
  for (const el of root.querySelectorAll("[data-th]")) el.textContent = th(el.dataset.th);
  for (const el of root.querySelectorAll("[data-th-aria]")) el.setAttribute("aria-label", th(el.dataset.thAria));
  document.title = th("page");
  document.documentElement.lang = getLang() === "en" ? "en" : "zh-CN";
}
