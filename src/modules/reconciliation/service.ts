import type { Db } from "../../db/database.ts";
import { formatAmount } from "../../lib/money.ts";
import type { Acquirer } from "../../providers/acquirer/interface.ts";
import type { Bank } from "../../providers/bank/interface.ts";
import type { IdentityPaymentRecord } from "../../providers/identity/interface.ts";
import * as ledger from "../ledger/service.ts";
import type { StepRunner } from "../steps/runner.ts";

/**
 * Reconciliation: the ledger must agree with what the providers did, not only with itself. For
 * every transaction a provider touched, what the provider moved (charges approved and not
 * refunded; payouts accepted and not returned; transfers received and not sent back) is compared
 * with the net of the transaction's legs on that rail's transit account. A transaction with a
 * provider step still under way is counted as in flight and compared on a later run.
 */

export interface Mismatch {
  clientId: string;
  provider: string;
  reference: string | null;
  providerStatus: string;
  /** What the provider moved: money in positive, money out negative; a decimal string in major units. */
  providerAmount: string;
  /** The net of the transaction's legs on the rail's transit account (debits − credits). */
  ledgerAmount: string;
  currency: string;
  requestId: string;
}

export interface ReconciliationReport {
  ok: boolean;
  checkedAt: string;
  /** Transactions compared. */
  checked: number;
  /** Transactions skipped: a provider call of theirs is under way, or a hold waits for one not made yet. */
  inFlight: number;
  mismatches: Mismatch[];
}

export interface ReconciliationDependencies {
  db: Db;
  acquirer: Acquirer;
  bank: Bank;
  steps: StepRunner;
  /** The identity providers' bank payments (1-Click deposits), by Ferry's key `<clientId>:oc-<txId>`. */
  identityPayments?(keyPrefix?: string): Promise<IdentityPaymentRecord[]>;
  /** Which transaction a bank payment reference belongs to. */
  bankDepositOwners(references: string[]): Promise<Map<string, { clientId: string; requestId: string }>>;
}

interface Expected {
  clientId: string;
  requestId: string;
  rail: "card" | "bank";
  currency: string;
  provider: string;
  references: string[];
  statuses: string[];
  amount: bigint;
}

const formatSigned = (minor: bigint, scale: number) =>
  minor < 0n ? `-${formatAmount(-minor, scale)}` : formatAmount(minor, scale);

const splitKey = (key: string) => {
  const [clientId = "", requestId = ""] = key.split(":");
  return { clientId, requestId };
};

export async function reconcile(
  deps: ReconciliationDependencies,
  clientId?: string,
): Promise<ReconciliationReport> {
  const keyPrefix = clientId ? `${clientId}:` : undefined;
  const expected = new Map<string, Expected>();
  const entry = (
    cid: string,
    requestId: string,
    rail: "card" | "bank",
    currency: string,
    provider: string,
  ) => {
    const id = `${cid}/${requestId}/${rail}/${currency}`;
    let e = expected.get(id);
    if (!e) {
      e = { clientId: cid, requestId, rail, currency, provider, references: [], statuses: [], amount: 0n };
      expected.set(id, e);
    }
    return e;
  };

  for (const charge of await deps.acquirer.records(keyPrefix)) {
    const { clientId: cid, requestId } = splitKey(charge.idempotencyKey);
    const e = entry(cid, requestId, "card", charge.currency, deps.acquirer.name);
    e.references.push(charge.reference);
    e.statuses.push(charge.status);
    if (charge.status === "APPROVED") e.amount += charge.amount;
    if (charge.status === "PAID_OUT") e.amount -= charge.amount;
  }

  const bankRecords = await deps.bank.records(keyPrefix);
  const owners = await deps.bankDepositOwners(
    bankRecords.flatMap((r) => (r.kind === "INCOMING" ? [r.paymentReference] : [])),
  );
  for (const record of bankRecords) {
    if (record.kind === "PAYOUT") {
      const { clientId: cid, requestId } = splitKey(record.idempotencyKey);
      const e = entry(cid, requestId, "bank", record.currency, deps.bank.name);
      e.references.push(record.reference);
      e.statuses.push(record.status);
      if (record.status === "ACCEPTED") e.amount -= record.amount;
      continue;
    }
    const owner = owners.get(record.paymentReference);
    if (!owner) continue; // a transfer for no Ferry deposit is not Ferry's money
    if (clientId && owner.clientId !== clientId) continue;
    const e = entry(owner.clientId, owner.requestId, "bank", record.currency, deps.bank.name);
    e.references.push(record.reference);
    e.statuses.push(record.returnKey ? "RECEIVED_RETURNED" : "RECEIVED");
    if (!record.returnKey) e.amount += record.amount;
  }

  // 1-Click deposits: the provider took the money from the user's bank, on the bank rail.
  for (const payment of (await deps.identityPayments?.(keyPrefix)) ?? []) {
    const { clientId: cid, requestId } = splitKey(payment.idempotencyKey);
    const e = entry(cid, requestId, "bank", payment.currency, payment.provider);
    e.references.push(payment.reference);
    e.statuses.push(payment.status);
    if (payment.status === "PAID") e.amount += payment.amount;
  }

  const booked = await ledger.transitNetByGroup(deps.db, {
    clientId,
    operationPrefix: "txn:",
    rails: ["card", "bank"],
  });
  for (const b of booked) {
    const provider = b.rail === "card" ? deps.acquirer.name : deps.bank.name;
    entry(b.clientId, b.group, b.rail as "card" | "bank", b.currency, provider);
  }
  const ledgerNet = new Map(booked.map((b) => [`${b.clientId}/${b.group}/${b.rail}/${b.currency}`, b]));
  const open = await deps.steps.openProcesses(deps.db, "transaction", clientId);
  for (const key of await deps.steps.openProcesses(deps.db, "oneclick", clientId)) open.add(key);

  const mismatches: Mismatch[] = [];
  let checked = 0;
  let inFlight = 0;
  for (const [id, e] of expected) {
    if (open.has(`${e.clientId}/${e.requestId}`)) {
      inFlight++;
      continue;
    }
    const booked = ledgerNet.get(id);
    // Only a hold, and the provider not asked yet (a withdrawal in review): nothing to compare yet.
    if (e.references.length === 0 && (booked?.posted ?? 0n) === 0n) {
      inFlight++;
      continue;
    }
    checked++;
    const net = (booked?.posted ?? 0n) + (booked?.pending ?? 0n);
    if (net !== e.amount) {
      const scale = (await ledger.findCurrency(deps.db, e.clientId, e.currency))?.scale ?? 0;
      mismatches.push({
        clientId: e.clientId,
        provider: e.provider,
        reference: e.references[0] ?? null,
        providerStatus: e.statuses.join(",") || "NONE",
        providerAmount: formatSigned(e.amount, scale),
        ledgerAmount: formatSigned(net, scale),
        currency: e.currency,
        requestId: e.requestId,
      });
    }
  }
  return { ok: mismatches.length === 0, checkedAt: new Date().toISOString(), checked, inFlight, mismatches };
}
