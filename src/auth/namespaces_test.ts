import assert from "node:assert/strict";
import { type ConfigInput, configSchema } from "../config/schema.ts";
import { acceptsTokens, clientIdRefusal, kafkaGroupId } from "./namespaces.ts";
import { Permissions } from "./permissions.ts";
import type { Principal } from "./principal.ts";

const none = new Permissions({ publish: [], subscribe: [], groups: [] });
const jwt = (id: string): Principal => ({ id, kind: "jwt", permissions: none });
const anonymous: Principal = { id: "anonymous", kind: "anonymous", permissions: none };
const key = { id: "sensor", hash: `sha256:${"0".repeat(64)}` };
const config = (input: ConfigInput = {}) => configSchema.parse(input);
const withKeys = (auth: ConfigInput["auth"] = {}) => config({ auth: { apiKeys: [key], ...auth } });

Deno.test("namespaces: a bridge accepts tokens when it has API keys or any JWT key source", () => {
  assert.equal(acceptsTokens(config().auth), false);
  assert.equal(acceptsTokens(withKeys().auth), true);
  assert.equal(acceptsTokens(config({ auth: { jwt: { secretFile: "/s" } } }).auth), true);
  assert.equal(acceptsTokens(config({ auth: { jwt: { publicKeyFiles: ["/k.pem"] } } }).auth), true);
  assert.equal(acceptsTokens(config({ auth: { jwt: { jwksUrl: "https://a.example/j" } } }).auth), true);
});

Deno.test("namespaces: prefix binding takes the namespace or names under it; a dotted id cannot be entered", () => {
  const auth = withKeys().auth;
  assert.equal(clientIdRefusal("alice", jwt("alice"), auth), undefined);
  assert.equal(clientIdRefusal("alice.s1", jwt("alice"), auth), undefined);
  assert.match(
    clientIdRefusal("bob", jwt("alice"), auth)!,
    /not bound to "alice": use "alice" or "alice\.<anything>"/,
  );
  assert.ok(clientIdRefusal("alicex", jwt("alice"), auth));
  // The review's case: with prefix binding "a" could say hello as "a.b", principal a.b's own id.
  assert.equal(clientIdRefusal("a.b", jwt("a"), auth), undefined, "a name under a's namespace");
  assert.match(clientIdRefusal("a.b", jwt("a.b"), auth)!, /use "a%2Eb" or "a%2Eb\.<anything>"/);
  assert.equal(clientIdRefusal("a%2Eb.s1", jwt("a.b"), auth), undefined);
  assert.ok(clientIdRefusal("a%2Eb.s1", jwt("a"), auth), "a cannot enter a.b's namespace");
});

Deno.test("namespaces: exact binding takes the namespace only; any takes anything", () => {
  const exact = withKeys({ clientIdBinding: "exact" }).auth;
  assert.equal(clientIdRefusal("alice", jwt("alice"), exact), undefined);
  assert.match(clientIdRefusal("alice.s1", jwt("alice"), exact)!, /use "alice"$/);
  const any = withKeys({ clientIdBinding: "any" }).auth;
  assert.equal(clientIdRefusal("bob", jwt("alice"), any), undefined);
  assert.equal(clientIdRefusal("alice", anonymous, any), undefined);
});

Deno.test('namespaces: anonymous clientIds are bound to "anonymous" where the bridge accepts tokens', () => {
  const auth = withKeys().auth;
  assert.match(
    clientIdRefusal("alice", anonymous, auth)!,
    /not bound to anonymous connections: use "anonymous" or/,
  );
  assert.ok(clientIdRefusal("dev-1", anonymous, auth));
  assert.equal(clientIdRefusal("anonymous.dev-1", anonymous, auth), undefined);
  assert.equal(clientIdRefusal("anonymous", anonymous, auth), undefined);
  // Without tokens there is nobody to impersonate: any clientId, as before.
  assert.equal(clientIdRefusal("dev-1", anonymous, config().auth), undefined);
  assert.equal(clientIdRefusal("alice", anonymous, config().auth), undefined);
});

Deno.test("namespaces: Kafka groups are namespaced per principal, anonymous included, and never collide", () => {
  const c = config();
  assert.equal(kafkaGroupId("g-1", jwt("alice"), c), "edge-bridge.alice.g-1");
  assert.equal(kafkaGroupId("alice.g-1", anonymous, c), "edge-bridge.anonymous.alice.g-1");
  assert.notEqual(kafkaGroupId("alice.g-1", anonymous, c), kafkaGroupId("g-1", jwt("alice"), c));
  // The review's case: principal "a" with group "b.x", principal "a.b" with group "x".
  assert.equal(kafkaGroupId("b.x", jwt("a"), c), "edge-bridge.a.b.x");
  assert.equal(kafkaGroupId("x", jwt("a.b"), c), "edge-bridge.a%2Eb.x");
  const flat = config({ auth: { namespaceGroups: false }, kafka: { consumer: { groupPrefix: "p-" } } });
  assert.equal(kafkaGroupId("g", jwt("alice"), flat), "p-g");
  assert.equal(kafkaGroupId("g", anonymous, flat), "p-g");
});
