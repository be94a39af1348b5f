import assert from "node:assert/strict";
import { parsePermissionsClaim, Permissions } from "./permissions.ts";

Deno.test("permissions: globs over topics and groups; nothing listed, nothing allowed", () => {
  const p = new Permissions({ publish: ["orders.*", "audit"], subscribe: ["*"], groups: [] });
  assert.ok(p.mayPublish("orders.eu"));
  assert.ok(p.mayPublish("audit"));
  assert.ok(!p.mayPublish("audit2"));
  assert.ok(!p.mayPublish("payments"));
  assert.ok(p.maySubscribe("anything"));
  assert.ok(!p.mayJoin("g"));
  // Regex characters in a pattern are literal.
  assert.ok(!new Permissions({ publish: ["a.b"], subscribe: [], groups: [] }).mayPublish("axb"));
});

Deno.test("permissions: a token's claim is read strictly", () => {
  assert.deepEqual(parsePermissionsClaim(undefined), { publish: [], subscribe: [], groups: [] });
  assert.deepEqual(parsePermissionsClaim({ publish: ["a"] }), { publish: ["a"], subscribe: [], groups: [] });
  assert.match(parsePermissionsClaim(["a"]) as string, /must be an object/);
  assert.match(parsePermissionsClaim({ publish: "a" }) as string, /"publish" must be a list/);
  assert.match(parsePermissionsClaim({ groups: [1] }) as string, /"groups" must be a list/);
  assert.match(parsePermissionsClaim({ subscribe: [""] }) as string, /"subscribe"/);
});
