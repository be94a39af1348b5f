/** Protocol v1 core, shared by the bridge and the client SDK. No runtime calls. */
export * from "./codes.ts";
export type * from "./frames.ts";
export * from "./parse.ts";
export * from "./payload.ts";
export * from "./namespace.ts";
