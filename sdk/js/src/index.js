// @livedesk/client: the protocol v1 client (client.js). The declarations (index.d.ts,
// client.d.ts, protocol.d.ts) type its messages and events; protocol.d.ts is generated from
// the gateway's JSON Schema (scripts/gen-types.mjs).
export * from "./client.js";
