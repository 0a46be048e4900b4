// The pages' client is the SDK (sdk/js, package @livedesk/client), served by the gateway at
// /sdk/: this module only re-exports it so the pages' `import … from "./client.js"` keep
// working and run the SDK's own code (docs/sdk.md).
export * from "/sdk/client.js";
