// The audit trail's entries in words (issue 18): one source for /admin's audit table and the
// actions list of a /history transcript, so an action reads the same on both pages. Names of
// actions, kinds and outcomes are worded in the page's language (i18n_workspace.js); ids,
// amounts' numbers and the agent's reason are data, shown as they are and marked as user
// content (the locale scan skips them).
import { fmtDateTime, money } from "./common.js";
import { tw, twOr } from "./i18n_workspace.js";

/** The columns of an audit entry, in the order /admin shows them. */
export const AUDIT_COLUMNS = ["ts", "action", "actor", "conversation", "kind", "amount", "order_id", "outcome", "reason"];
/** Columns whose value is data (ids, free text), not one of our words. */
export const AUDIT_DATA = new Set(["actor", "conversation", "order_id", "reason"]);

/** The text of column ``c`` of entry ``e`` ("" when the entry has none). */
export function auditCell(e, c) {
  if (c === "ts") return e.ts ? fmtDateTime(e.ts) : "";
  if (c === "action") return twOr(`action.${e.action}`, e.action ?? "");
  if (c === "outcome") return e.outcome ? twOr(`outcome.${e.outcome}`, e.outcome) : "";
  if (c === "kind") return e.kind ? twOr(`kind.${e.kind}`, e.kind) : "";
  if (c === "amount") return e.amount != null ? money(e.amount) : "";
  const v = e[c];
  return v === null || v === undefined ? "" : String(v);
}

/** The column's label ("Action", "Order"). */
export function auditLabel(c) {
  return tw(`audit.${c}`);
}
