import assert from "node:assert/strict";
import type { Authenticator } from "../auth/authenticator.ts";
import { peerOf } from "../auth/peer.ts";
import type { AuthOutcome } from "../auth/principal.ts";
import { Permissions } from "../auth/permissions.ts";
import { CloseCode, ErrorCode } from "../protocol/mod.ts";
import { AuthGate } from "./auth_gate.ts";

/** A gate whose token check finishes when `finish` is called; what it does to the connection is recorded. */
function gateWithPendingCheck(maxPreAuthBytes: number) {
  let finish!: (o: AuthOutcome) => void;
  const auth = {
    anonymousFor: () => undefined,
    authenticate: () => new Promise<AuthOutcome>((r) => (finish = r)),
  } as unknown as Authenticator;
  const events: { refused?: [string, number]; admitted?: string[] } = {};
  const gate = new AuthGate({
    auth,
    peer: peerOf("10.0.0.1", {}),
    maxPreAuthBytes,
    timeoutMs: 5_000,
    expiryWarningMs: 0,
    maxCredit: 1000,
    send: () => {},
    error: () => {},
    refuse: (code, _message, closeCode) => (events.refused = [code, closeCode]),
    admitted: (_principal, held) => (events.admitted = held),
    helloDone: () => false,
  });
  gate.start("a-token");
  const admit = () =>
    finish({
      ok: true,
      principal: {
        id: "p",
        kind: "api-key",
        permissions: new Permissions({ publish: [], subscribe: [], groups: [] }),
      },
    });
  return { gate, events, admit };
}

Deno.test("auth gate: frames sent while the token is checked are held up to auth.maxPreAuthBytes, then handed on", async () => {
  const { gate, events, admit } = gateWithPendingCheck(1024);
  const frame = JSON.stringify({ op: "publish", topic: "t", value: "x".repeat(400) });
  gate.hold(frame);
  gate.hold(frame);
  assert.equal(events.refused, undefined, "two frames within 1024 bytes");
  admit();
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(events.admitted, [frame, frame]);
});

Deno.test("auth gate: past auth.maxPreAuthBytes before admission the connection is refused with PRE_AUTH_LIMIT", async () => {
  const { gate, events, admit } = gateWithPendingCheck(1024);
  gate.hold("x".repeat(600));
  gate.hold("x".repeat(600));
  assert.deepEqual(events.refused, [ErrorCode.PRE_AUTH_LIMIT, CloseCode.AUTH_FAILED]);
  admit();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(events.admitted, undefined, "a refused connection is never admitted");
});

Deno.test("auth gate: more than 32 small frames before admission is PRE_AUTH_LIMIT too", () => {
  const { gate, events } = gateWithPendingCheck(1024 * 1024);
  for (let i = 0; i < 32; i++) gate.hold("{}");
  assert.equal(events.refused, undefined);
  gate.hold("{}");
  assert.deepEqual(events.refused, [ErrorCode.PRE_AUTH_LIMIT, CloseCode.AUTH_FAILED]);
});
