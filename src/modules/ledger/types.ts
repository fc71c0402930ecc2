import type { LedgerRejectionCode } from "./errors.ts";

export const ACCOUNT_KINDS = ["USER_WALLET", "ISSUING", "TRANSIT", "FEES", "FX", "SETTLEMENT"] as const;
export type AccountKind = (typeof ACCOUNT_KINDS)[number];

/**
 * NON_NEGATIVE: debits (posted + pending) may not exceed posted credits — a user wallet.
 * CREDIT_LIMIT: they may exceed them by at most `creditLimit`.
 * UNBOUNDED: no check — issuing, transit and other settlement accounts, which go negative by design.
 */
export const LIMIT_RULES = ["NON_NEGATIVE", "CREDIT_LIMIT", "UNBOUNDED"] as const;
export type LimitRule = (typeof LIMIT_RULES)[number];

export interface Currency {
  clientId: string;
  code: string;
  scale: number;
}

export interface Balances {
  debitsPosted: bigint;
  creditsPosted: bigint;
  debitsPending: bigint;
  creditsPending: bigint;
}

export interface Account extends Balances {
  id: string;
  clientId: string;
  currency: string;
  kind: AccountKind;
  ownerId: string | null;
  rail: string | null;
  label: string | null;
  limitRule: LimitRule;
  creditLimit: bigint;
  createdAt: Date;
}

export type TransferType = "SINGLE" | "PENDING" | "POST" | "VOID";
export type TransferStatus = "POSTED" | "PENDING" | "VOIDED" | "EXPIRED";

export interface Transfer {
  clientId: string;
  id: string;
  operationId: string;
  type: TransferType;
  status: TransferStatus;
  debitAccountId: string;
  creditAccountId: string;
  currency: string;
  amount: bigint;
  pendingId: string | null;
  postedAmount: bigint | null;
  expiresAt: Date | null;
  resolvedAt: Date | null;
  metadata: unknown;
  createdAt: Date;
}

interface NewTransferLeg<T extends "SINGLE" | "PENDING"> {
  type: T;
  id: string;
  debitAccountId: string;
  creditAccountId: string;
  amount: bigint;
  currency: string;
  /** PENDING only: when the worker releases the hold if nobody posted or voided it. */
  expiresAt?: Date | undefined;
  metadata?: unknown;
}

/** One leg of an operation. Ids are unique per client: a retry with the same id is a replay. */
export type Leg =
  | NewTransferLeg<"SINGLE">
  | NewTransferLeg<"PENDING">
  | {
      /** Posts a pending transfer: `amount` (default: all of it) is posted, the rest released. */
      type: "POST";
      id: string;
      pendingId: string;
      amount?: bigint | undefined;
      metadata?: unknown;
    }
  | { type: "VOID"; id: string; pendingId: string; metadata?: unknown };

/** Legs committed together or not at all (amount + fee, the two sides of an exchange, …). */
export interface Operation {
  clientId: string;
  /** Groups the legs; defaults to the first leg's id. */
  operationId?: string | undefined;
  legs: Leg[];
}

export type OperationResult =
  | {
      ok: true;
      replayed: boolean;
      transfers: Transfer[];
      /** The accounts this operation changed, with their balances right after it (none for a replay). */
      accounts?: Account[];
    }
  | { ok: false; code: LedgerRejectionCode; message: string; legIndex: number | null };

/** Derived figures an account shows (credit-normal: a wallet's money is its credit balance). */
export function accountFigures(account: Balances) {
  const balance = account.creditsPosted - account.debitsPosted;
  return {
    balance,
    available: balance - account.debitsPending,
    held: account.debitsPending,
    incoming: account.creditsPending,
  };
}
