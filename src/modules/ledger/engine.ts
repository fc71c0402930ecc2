import type { Db } from "../../db/database.ts";
import { UUID } from "../../lib/ids.ts";
import { MAX_AMOUNT } from "../../lib/money.ts";
import { LedgerRejection, type LedgerRejectionCode } from "./errors.ts";
import * as repo from "./repo.ts";
import type { Account, Leg, Operation, OperationResult, Transfer } from "./types.ts";

/**
 * The ledger's one write path. Applies a batch of operations inside the caller's transaction:
 *
 *   1. lock the pending transfers that POST/VOID legs name (by client and id),
 *   2. lock every account involved, in id order (the same order everywhere: no deadlocks),
 *   3. read the transfers that already exist with the legs' ids (idempotent replays),
 *   4. apply the operations one after another in memory — each all legs or none, checks on the
 *      current balances — so a refused operation does not disturb the others in the batch,
 *   5. write the new transfers, the resolved pending transfers and the balances in three statements.
 *
 * Whatever the batch size, that is six statements: this is what lets one transaction carry
 * hundreds of transfers, and a hot account take them without a lock round-trip per transfer.
 */
export async function applyOperations(
  tx: Db,
  operations: Operation[],
  now: Date,
  expire: repo.TransferKey[] = [],
): Promise<OperationResult[]> {
  const plan = await planOperations(tx, operations, now, expire);
  await plan.write();
  return plan.results;
}

/**
 * Steps 1–4 of `applyOperations`: locks, reads and the outcome of each operation, with nothing
 * written yet; `write()` is step 5. A caller that must drop some operations after seeing the
 * outcomes (group commit: a business row that could not be recorded) plans again without them
 * in the same transaction before writing.
 */
export async function planOperations(
  tx: Db,
  operations: Operation[],
  now: Date,
  expire: repo.TransferKey[] = [],
): Promise<{ results: OperationResult[]; write(): Promise<void> }> {
  const key = (clientId: string, id: string) => `${clientId}\u0000${id}`;

  const pendingKeys = new Map<string, repo.TransferKey>();
  for (const k of expire) pendingKeys.set(key(k.clientId, k.id), k);
  for (const op of operations) {
    for (const leg of op.legs) {
      if (leg.type === "POST" || leg.type === "VOID") {
        pendingKeys.set(key(op.clientId, leg.pendingId), { clientId: op.clientId, id: leg.pendingId });
      }
    }
  }
  const lockedPending = await repo.lockTransfers(tx, [...pendingKeys.values()]);

  const accountIds = new Set<string>();
  for (const t of lockedPending) {
    accountIds.add(t.debitAccountId);
    accountIds.add(t.creditAccountId);
  }
  for (const op of operations) {
    for (const leg of op.legs) {
      if (leg.type === "SINGLE" || leg.type === "PENDING") {
        if (UUID.test(leg.debitAccountId)) accountIds.add(leg.debitAccountId.toLowerCase());
        if (UUID.test(leg.creditAccountId)) accountIds.add(leg.creditAccountId.toLowerCase());
      }
    }
  }
  const accounts = new Map((await repo.lockAccounts(tx, [...accountIds].sort())).map((a) => [a.id, a]));

  const transfers = new Map<string, Transfer>(lockedPending.map((t) => [key(t.clientId, t.id), t]));
  const legKeys: repo.TransferKey[] = [];
  for (const op of operations) {
    for (const leg of op.legs) {
      if (!transfers.has(key(op.clientId, leg.id))) legKeys.push({ clientId: op.clientId, id: leg.id });
    }
  }
  for (const t of await repo.findTransfers(tx, legKeys)) transfers.set(key(t.clientId, t.id), t);

  const created: Transfer[] = [];
  const resolved = new Map<string, Transfer>();
  const touched = new Set<string>();

  for (const k of expire) {
    const pending = transfers.get(key(k.clientId, k.id));
    if (pending?.status !== "PENDING") continue;
    const debit = accounts.get(pending.debitAccountId);
    const credit = accounts.get(pending.creditAccountId);
    if (!debit || !credit) continue;
    debit.debitsPending -= pending.amount;
    credit.creditsPending -= pending.amount;
    const expired: Transfer = { ...pending, status: "EXPIRED", resolvedAt: now };
    transfers.set(key(k.clientId, k.id), expired);
    resolved.set(key(k.clientId, k.id), expired);
    touched.add(debit.id).add(credit.id);
  }

  const results: OperationResult[] = [];
  for (const op of operations) {
    const outcome = applyOperation(op, { accounts, transfers, key, now });
    if (outcome.ok && !outcome.replayed) {
      for (const [id, account] of outcome.accounts) {
        accounts.set(id, account);
        touched.add(id);
      }
      for (const t of outcome.transfers) {
        transfers.set(key(t.clientId, t.id), t);
        created.push(t);
      }
      for (const t of outcome.resolved) {
        transfers.set(key(t.clientId, t.id), t);
        // A pending transfer created and resolved in this same batch is inserted in its final state.
        const fresh = created.findIndex((c) => c.clientId === t.clientId && c.id === t.id);
        if (fresh >= 0) created[fresh] = t;
        else resolved.set(key(t.clientId, t.id), t);
      }
    }
    results.push(
      outcome.ok
        ? {
            ok: true,
            replayed: outcome.replayed,
            transfers: outcome.transfers,
            accounts: outcome.replayed ? [] : [...outcome.accounts.values()],
          }
        : { ok: false, code: outcome.code, message: outcome.message, legIndex: outcome.legIndex },
    );
  }

  return {
    // Replays and posts return the transfer as it now stands.
    results: results.map((r) =>
      r.ok ? { ...r, transfers: r.transfers.map((t) => transfers.get(key(t.clientId, t.id)) ?? t) } : r,
    ),
    async write() {
      await repo.insertTransfers(tx, created);
      await repo.updatePendingTransfers(tx, [...resolved.values()]);
      await repo.updateBalances(
        tx,
        [...touched].sort().flatMap((id) => accounts.get(id) ?? []),
      );
    },
  };
}

interface BatchState {
  accounts: Map<string, Account>;
  transfers: Map<string, Transfer>;
  key: (clientId: string, id: string) => string;
  now: Date;
}

type Applied =
  | { ok: true; replayed: true; transfers: Transfer[] }
  | { ok: true; replayed: false; transfers: Transfer[]; resolved: Transfer[]; accounts: Map<string, Account> }
  | { ok: false; code: LedgerRejectionCode; message: string; legIndex: number | null };

const TRANSFER_ID = /^[\x21-\x7e]{1,255}$/;

function reject(code: LedgerRejectionCode, message: string, legIndex: number | null = null): Applied {
  return { ok: false, code, message, legIndex };
}

/** One operation against the batch's state: either every leg applies, or nothing changes. */
function applyOperation(op: Operation, state: BatchState): Applied {
  if (op.legs.length === 0)
    return reject(LedgerRejection.EMPTY_OPERATION, "an operation needs at least one leg");
  const ids = new Set<string>();
  for (const [i, leg] of op.legs.entries()) {
    if (!TRANSFER_ID.test(leg.id))
      return reject(LedgerRejection.INVALID_ID, "transfer ids are 1–255 printable characters", i);
    if (ids.has(leg.id))
      return reject(LedgerRejection.DUPLICATE_ID_IN_OPERATION, `transfer id ${leg.id} appears twice`, i);
    ids.add(leg.id);
  }

  const existing = op.legs.map((leg) => state.transfers.get(state.key(op.clientId, leg.id)));
  if (existing.some((t) => t !== undefined)) {
    for (const [i, leg] of op.legs.entries()) {
      const found = existing[i];
      if (!found || !sameTransfer(found, leg, op)) {
        return reject(
          LedgerRejection.EXISTS_WITH_DIFFERENT_PARAMETERS,
          `transfer id ${leg.id} was already used for another transfer`,
          i,
        );
      }
    }
    return { ok: true, replayed: true, transfers: existing.filter((t) => t !== undefined) };
  }

  const working = new Map<string, Account>();
  const account = (id: string): Account | undefined => {
    const normalized = id.toLowerCase();
    const current = working.get(normalized);
    if (current) return current;
    const base = state.accounts.get(normalized);
    if (!base || base.clientId !== op.clientId) return undefined;
    const copy = { ...base };
    working.set(normalized, copy);
    return copy;
  };
  const pendingInOp = new Map<string, Transfer>();
  const createdInOp: Transfer[] = [];
  const resolvedInOp = new Map<string, Transfer>();
  const operationId = op.operationId ?? op.legs[0]?.id ?? "";

  for (const [i, leg] of op.legs.entries()) {
    if (leg.type === "SINGLE" || leg.type === "PENDING") {
      const debit = account(leg.debitAccountId);
      const credit = account(leg.creditAccountId);
      if (!debit)
        return reject(LedgerRejection.ACCOUNT_NOT_FOUND, `no debit account ${leg.debitAccountId}`, i);
      if (!credit)
        return reject(LedgerRejection.ACCOUNT_NOT_FOUND, `no credit account ${leg.creditAccountId}`, i);
      if (debit.id === credit.id)
        return reject(LedgerRejection.SAME_ACCOUNT, "debit and credit are the same account", i);
      if (debit.currency !== leg.currency || credit.currency !== leg.currency) {
        return reject(
          LedgerRejection.CURRENCY_MISMATCH,
          `the transfer is in ${leg.currency}; the accounts hold ${debit.currency} and ${credit.currency}`,
          i,
        );
      }
      if (leg.amount <= 0n)
        return reject(LedgerRejection.AMOUNT_NOT_POSITIVE, "the amount must be greater than zero", i);
      if (leg.amount > MAX_AMOUNT)
        return reject(LedgerRejection.AMOUNT_TOO_LARGE, "the amount has more than 38 digits", i);
      if (leg.type === "PENDING" && leg.expiresAt && leg.expiresAt.getTime() <= state.now.getTime()) {
        return reject(LedgerRejection.EXPIRY_NOT_IN_FUTURE, "a hold's expiry must be in the future", i);
      }
      if (leg.type === "SINGLE") {
        debit.debitsPosted += leg.amount;
        credit.creditsPosted += leg.amount;
      } else {
        debit.debitsPending += leg.amount;
        credit.creditsPending += leg.amount;
      }
      const limitProblem = checkLimit(debit);
      if (limitProblem) return reject(LedgerRejection.EXCEEDS_LIMIT, limitProblem, i);
      if (overflows(debit) || overflows(credit)) {
        return reject(LedgerRejection.BALANCE_OVERFLOW, "a balance would exceed 38 digits", i);
      }
      const transfer: Transfer = {
        clientId: op.clientId,
        id: leg.id,
        operationId,
        type: leg.type,
        status: leg.type === "SINGLE" ? "POSTED" : "PENDING",
        debitAccountId: debit.id,
        creditAccountId: credit.id,
        currency: leg.currency,
        amount: leg.amount,
        pendingId: null,
        postedAmount: null,
        expiresAt: leg.type === "PENDING" ? (leg.expiresAt ?? null) : null,
        resolvedAt: null,
        metadata: leg.metadata ?? null,
        createdAt: state.now,
      };
      createdInOp.push(transfer);
      if (leg.type === "PENDING") pendingInOp.set(leg.id, transfer);
      continue;
    }

    const pending =
      pendingInOp.get(leg.pendingId) ?? state.transfers.get(state.key(op.clientId, leg.pendingId));
    const current = pending && (resolvedInOp.get(pending.id) ?? pending);
    if (current?.type !== "PENDING") {
      return reject(LedgerRejection.PENDING_NOT_FOUND, `no pending transfer ${leg.pendingId}`, i);
    }
    if (current.status === "POSTED")
      return reject(LedgerRejection.PENDING_ALREADY_POSTED, "the hold was already posted", i);
    if (current.status === "VOIDED")
      return reject(LedgerRejection.PENDING_ALREADY_VOIDED, "the hold was already voided", i);
    if (
      current.status === "EXPIRED" ||
      (current.expiresAt && current.expiresAt.getTime() <= state.now.getTime())
    ) {
      return reject(LedgerRejection.PENDING_EXPIRED, "the hold has expired", i);
    }
    const debit = account(current.debitAccountId);
    const credit = account(current.creditAccountId);
    if (!debit || !credit)
      return reject(LedgerRejection.PENDING_NOT_FOUND, `no pending transfer ${leg.pendingId}`, i);
    const amount = leg.type === "POST" ? (leg.amount ?? current.amount) : current.amount;
    if (leg.type === "POST") {
      if (amount <= 0n)
        return reject(LedgerRejection.AMOUNT_NOT_POSITIVE, "the posted amount must be greater than zero", i);
      if (amount > current.amount) {
        return reject(LedgerRejection.POST_AMOUNT_EXCEEDS_PENDING, "the posted amount exceeds the hold", i);
      }
    }
    debit.debitsPending -= current.amount;
    credit.creditsPending -= current.amount;
    if (leg.type === "POST") {
      debit.debitsPosted += amount;
      credit.creditsPosted += amount;
      if (overflows(debit) || overflows(credit)) {
        return reject(LedgerRejection.BALANCE_OVERFLOW, "a balance would exceed 38 digits", i);
      }
    }
    resolvedInOp.set(current.id, {
      ...current,
      status: leg.type === "POST" ? "POSTED" : "VOIDED",
      postedAmount: leg.type === "POST" ? amount : null,
      resolvedAt: state.now,
    });
    createdInOp.push({
      clientId: op.clientId,
      id: leg.id,
      operationId,
      type: leg.type,
      status: leg.type === "POST" ? "POSTED" : "VOIDED",
      debitAccountId: current.debitAccountId,
      creditAccountId: current.creditAccountId,
      currency: current.currency,
      amount,
      pendingId: current.id,
      postedAmount: null,
      expiresAt: null,
      resolvedAt: null,
      metadata: leg.metadata ?? null,
      createdAt: state.now,
    });
  }
  // Pending transfers resolved within the same operation are inserted in their final state.
  const transfers = createdInOp.map((t) => resolvedInOp.get(t.id) ?? t);
  const resolved = [...resolvedInOp.values()].filter((t) => !createdInOp.some((c) => c.id === t.id));
  return { ok: true, replayed: false, transfers, resolved, accounts: working };
}

function checkLimit(account: Account): string | null {
  const exposure = account.debitsPosted + account.debitsPending;
  if (account.limitRule === "NON_NEGATIVE" && exposure > account.creditsPosted) {
    return "insufficient funds: the account's available balance is too low";
  }
  if (account.limitRule === "CREDIT_LIMIT" && exposure > account.creditsPosted + account.creditLimit) {
    return "insufficient funds: the account's credit limit would be exceeded";
  }
  return null;
}

function overflows(account: Account): boolean {
  return (
    account.debitsPosted > MAX_AMOUNT ||
    account.creditsPosted > MAX_AMOUNT ||
    account.debitsPending > MAX_AMOUNT ||
    account.creditsPending > MAX_AMOUNT
  );
}

/** Whether a stored transfer is what this leg asks for (then the leg is a replay, not a conflict). */
function sameTransfer(found: Transfer, leg: Leg, op: Operation): boolean {
  if (found.clientId !== op.clientId || found.type !== leg.type) return false;
  if (leg.type === "SINGLE" || leg.type === "PENDING") {
    return (
      found.debitAccountId === leg.debitAccountId.toLowerCase() &&
      found.creditAccountId === leg.creditAccountId.toLowerCase() &&
      found.amount === leg.amount &&
      found.currency === leg.currency
    );
  }
  if (found.pendingId !== leg.pendingId) return false;
  return leg.type === "VOID" || leg.amount === undefined || leg.amount === found.amount;
}
