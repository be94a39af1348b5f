/** Who is on the other end of a connection, as authentication established it. */
import type { ErrorCode } from "../protocol/mod.ts";
import type { Permissions } from "./permissions.ts";

export interface Principal {
  /** The JWT's `sub`, the API key's id, or "anonymous". */
  readonly id: string;
  readonly kind: "anonymous" | "jwt" | "api-key";
  readonly permissions: Permissions;
  /** When the credential stops being valid (ms since the epoch); absent: never. */
  readonly expiresAt?: number;
}

export type AuthOutcome =
  | { ok: true; principal: Principal }
  | { ok: false; code: ErrorCode; message: string };
