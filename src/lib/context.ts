/**
 * Who asks, on whose behalf, under which request: passed to every service call that changes
 * state, so that each change is audited with its actor in the transaction that makes it.
 */
export type ActorKind = "client" | "user" | "admin" | "staff" | "system" | "provider";

export interface Actor {
  kind: ActorKind;
  /** The client's key id, the user's id, the admin's login, the worker's or provider's name. */
  id: string | null;
  /** Staff roles (administrator, accountant, compliance_officer, support); empty for the others. */
  roles?: readonly string[];
}

export interface RequestContext {
  clientId: string;
  actor: Actor;
  /** The client's request id (X-Request-Id / Idempotency-Key), when the change came from a request. */
  requestId?: string | undefined;
}

export const providerActor = (name: string): Actor => ({ kind: "provider", id: name });

/** The operator of the installation, on the /admin routes (HTTP Basic user `admin`). */
export const PLATFORM_ADMIN: Actor = { kind: "admin", id: "admin" };
