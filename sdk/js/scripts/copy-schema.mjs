#!/usr/bin/env node
// `npm pack`/`npm publish` (prepack): ship the JSON Schema the declarations were generated
// from inside the package (schema/protocol.schema.json), so a consumer can validate frames
// and regenerate the types without the repository.
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { PKG } from "./gen-types.mjs";

mkdirSync(join(PKG, "schema"), { recursive: true });
copyFileSync(join(PKG, "..", "..", "docs", "spec", "protocol.schema.json"), join(PKG, "schema", "protocol.schema.json"));
console.log("copied docs/spec/protocol.schema.json to schema/");
