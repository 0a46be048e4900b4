// src/protocol.d.ts is what scripts/gen-types.mjs generates from docs/spec/protocol.schema.json
// (regenerate with `node sdk/js/scripts/gen-types.mjs` and commit when this fails), and the
// generator maps the schema as it should.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { OUT, defaultSchemaPath, generate, tsType } from "../scripts/gen-types.mjs";

const schema = JSON.parse(readFileSync(defaultSchemaPath(), "utf8"));

test("protocol.d.ts is up to date with the JSON Schema", () => {
  assert.equal(readFileSync(OUT, "utf8"), generate(schema), "src/protocol.d.ts is stale: run node sdk/js/scripts/gen-types.mjs");
});

test("every message and event type of the schema is in the maps, typed", () => {
  const text = generate(schema);
  for (const t of Object.keys(schema["x-messages"])) assert.match(text, new RegExp(`^  ${JSON.stringify(t).replace(/\./g, "\\.")}: \\w+;$`, "m"), t);
  for (const t of Object.keys(schema["x-events"])) assert.ok(text.includes(`  ${JSON.stringify(t)}: `), t);
  assert.match(text, /export interface MessageSend \{[^}]*\n  text: string;/);
  assert.match(text, /export interface ChatMessage \{[^}]*\n  client_msg_id: string \| null;/);
  assert.match(text, /export interface AgentStatus \{[^}]*\n  status: "available" \| "away" \| "break" \| "offline";/);
});

test("the schema → TypeScript mapping", () => {
  assert.equal(tsType({ type: "string" }), "string");
  assert.equal(tsType({ type: ["integer", "null"] }), "number | null");
  assert.equal(tsType({ const: "hello" }), '"hello"');
  assert.equal(tsType({ enum: ["a", "b"] }), '"a" | "b"');
  assert.equal(tsType({ type: "array", items: { type: "string" } }), "string[]");
  assert.equal(tsType({ anyOf: [{ type: "array", items: { type: "string" } }, { type: "null" }] }), "string[] | null");
  assert.equal(tsType({ type: "array", items: { anyOf: [{ type: "string" }, { type: "number" }] } }), "Array<string | number>");
  assert.equal(tsType({ type: "object" }), "Record<string, unknown>");
  assert.equal(tsType({ $ref: "#/$defs/Welcome" }), "Welcome");
  assert.equal(tsType({}), "unknown");
  assert.equal(tsType({ type: "object", properties: { a: { type: "string" } }, required: ["a"] }), "{\n  a: string;\n}");
});
