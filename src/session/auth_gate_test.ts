import assert from "node:assert/strict";
import type { Authenticator } from "../auth/authenticator.ts";
import { peerOf } from "../auth/peer.ts";
import type { AuthOutcome, Principal } from "../auth/principal.ts";
import { Permissions } from "../auth/permissions.ts";
import { CloseCode, ErrorCode, type ServerFrame } from "../protocol/mod.ts";
import { AuthGate, type HeldFrame } from "./auth_gate.ts";

/** A gate whose token check finishes when `finish` is called; what it does to the connection is recorded. */
function gateWithPendingCheck(maxPreAuthBytes: number, withHandshakeToken = true) {
  let finish!: (o: AuthOutcome) => void;
  const auth = {
    anonymousFor: () => undefined,
    authenticate: () => new Promise<AuthOutcome>((r) => (finish = r)),
  } as unknown as Authenticator;
  const events: { refused?: [string, number]; admitted?: HeldFrame[] } = {};
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
    reauthenticated: () => {},
  });
  gate.start(withHandshakeToken ? "a-token" : undefined);
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

Deno.test("auth gate: a binary or oversized frame before any token is AUTH_REQUIRED, as any frame but auth", () => {
  const { gate, events } = gateWithPendingCheck(1024, false);
  let answered = false;
  gate.holdUnreadable(() => (answered = true));
  assert.deepEqual(events.refused, [ErrorCode.AUTH_REQUIRED, CloseCode.AUTH_FAILED]);
  assert.ok(!answered, "no BAD_FRAME before the refusal: an unauthenticated client gets nothing else");
});

Deno.test("auth gate: one sent while the token is checked is answered after admission, and counts toward the 32", async () => {
  const { gate, events, admit } = gateWithPendingCheck(1024);
  const answers: string[] = [];
  gate.hold("{}");
  gate.holdUnreadable(() => answers.push("binary"));
  assert.deepEqual(answers, [], "nothing is sent before welcome");
  admit();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(events.admitted?.length, 2);
  assert.equal(events.admitted?.[0], "{}");
  (events.admitted?.[1] as () => void)();
  assert.deepEqual(answers, ["binary"], "handed on in order, to be answered after welcome");

  const flood = gateWithPendingCheck(1024 * 1024);
  for (let i = 0; i < 32; i++) flood.gate.holdUnreadable(() => {});
  assert.equal(flood.events.refused, undefined);
  flood.gate.holdUnreadable(() => {});
  assert.deepEqual(flood.events.refused, [ErrorCode.PRE_AUTH_LIMIT, CloseCode.AUTH_FAILED]);
});

Deno.test("auth gate: a refresh replaces the principal's permissions and says so; another principal's token is refused", async () => {
  const alice = (subscribe: string[]): Principal => ({
    id: "alice",
    kind: "jwt",
    permissions: new Permissions({ publish: [], subscribe, groups: [] }),
    expiresAt: Date.now() + 600_000,
  });
  const principals: Record<string, Principal> = {
    wide: alice(["orders", "audit"]),
    narrow: alice(["orders"]),
    bob: { ...alice(["*"]), id: "bob" },
  };
  const auth = {
    anonymousFor: () => undefined,
    authenticate: (token: string) => Promise.resolve({ ok: true, principal: principals[token] }),
  } as unknown as Authenticator;
  const sent: ServerFrame[] = [];
  const errors: [string, string | undefined][] = [];
  const reauthenticated: Principal[] = [];
  const gate = new AuthGate({
    auth,
    peer: peerOf("10.0.0.1", {}),
    maxPreAuthBytes: 1024,
    timeoutMs: 5_000,
    expiryWarningMs: 0,
    maxCredit: 1000,
    send: (frame) => void sent.push(frame),
    error: (code, _message, id) => void errors.push([code, id]),
    refuse: () => assert.fail("no refusal"),
    admitted: () => {},
    helloDone: () => true,
    reauthenticated: (p) => void reauthenticated.push(p),
  });
  try {
    gate.start("wide");
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(gate.principal, principals.wide);
    await gate.reauthenticate({ op: "auth", id: "a1", token: "narrow" });
    assert.deepEqual(sent.map((f) => [f.op, "id" in f && f.id]), [["auth_ok", "a1"]]);
    assert.deepEqual(reauthenticated, [principals.narrow], "the host re-checks what the connection does");
    assert.ok(!gate.principal!.permissions.maySubscribe("audit"), "the narrower permissions apply");
    await gate.reauthenticate({ op: "auth", id: "a2", token: "bob" });
    assert.deepEqual(errors, [[ErrorCode.AUTH_CLAIMS, "a2"]]);
    assert.equal(gate.principal, principals.narrow, "still alice's connection");
    assert.equal(reauthenticated.length, 1, "a refused refresh changes nothing");
  } finally {
    gate.stop();
  }
});
