import fc from "fast-check";
import { sql } from "kysely";
import { afterAll, beforeAll, expect, it } from "vitest";
import { inTransaction } from "../src/db/transaction.ts";
import { showTransaction } from "../src/faces/platform/transactions.ts";
import { DomainError } from "../src/lib/errors.ts";
import { createClient } from "../src/modules/clients/service.ts";
import * as ledger from "../src/modules/ledger/service.ts";
import { accountFigures } from "../src/modules/ledger/types.ts";
import { statusNameOf } from "../src/modules/oneclick/statuses.ts";
import type { Feedback, Transaction, TransactionStatus } from "../src/modules/transactions/service.ts";
import { AcquirerTimeoutError } from "../src/providers/acquirer/interface.ts";
import { TEST_CARDS } from "../src/providers/acquirer/sandbox.ts";
import { type GatedOperation, SandboxProviderError } from "../src/providers/sandbox-gate.ts";
import { germanIban, withLuhnDigit } from "./funding.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import {
  accept,
  OPERATOR_AUTH,
  type Operator,
  type OperatorAnswer,
  REDIRECT_URI,
  startOperator,
} from "./oneclick.ts";
import { tokenFor } from "./page-forms.ts";
import {
  balances,
  NO_KYC_LIMITS,
  openCoin,
  registerCustomer,
  setUpUsd,
  staff,
  type WalletCaller,
  walletClient,
} from "./wallet.ts";

/**
 * Model-based property of the money core. Each sequence is a fresh client with 2–3 people (200.00
 * EUR each from the client's issuing account) and a merchant, then 3–12 random commands: card
 * deposits (approved, declined, 3-D Secure, timeout-once), 3-D Secure completions, bank deposits
 * and the money arriving for them (also after a cancel, twice, or the same transfer again),
 * withdrawals (paid, and returned by the bank; to a card: paid, or declined), transfers, payments
 * to the merchant, EUR⇄USD trades, DELETEs, every feedback, staff review decisions (review
 * sequences send amounts ≥ 60 USD to MANUAL_REVIEW), provider faults (a call failing before the
 * provider acts, or after it acted with the answer lost, on charge, refund, bank and card payout,
 * payout status and bank return), 1-Click sign-up deposits (below), crash points
 * (the process dies after committing and before running the step, or after claiming it), recovery
 * rounds, and things at once: two debits of one wallet, a cancel or error while the provider call
 * is held in flight, a feedback or a new deposit or withdrawal racing a recovery round, two
 * events on one transaction.
 *
 * The model knows every transaction's status at every moment — only from what Ferry answers (the
 * operation's result; after a recovery round, each transaction read again) — and predicts from it
 * and its own fee, rate and monitoring rules: the status each operation answers with, or the
 * refusal (402 insufficient funds, 409 not allowed / call in flight / reversal refused), and each
 * user's total and available balances. After each sequence every step is drained, then: the
 * ledger's invariants, every balance equal to the model's, reconciliation clean, no step left
 * PENDING, FAILED steps only where injected failures (and crashed claims) used up a kind's
 * attempts, and a pending hold only on a withdrawal that is still in flight or in review.
 *
 * 1-Click (docs/oneclick-api.md): the client is set up against one operator server on loopback
 * (test/oneclick.ts) and a flow is driven as the browser does — authorize, the sandbox provider's
 * page (approve, or deny), the waiting page. Each flow may carry one fault: a callback (signin,
 * verifyuser, authorize, transfer) answering HTTP 500, not JSON, a refusal (`success: false`) or
 * too late (beyond a 300 ms timeout), once, twice or always; or the provider's payment failing or
 * its answer lost. Review sequences hold deposits ≥ 60 USD at 350 for staff (approve / deny); a
 * flow left INCONSISTENT is retried by staff from POST /admin/steps/{id}/retry or the 1-Click
 * route (the operator fixed, or not yet) or resolved; crash points after the page's decision, a
 * staff approval or a retry. The model walks each flow as the table must (process-table.ts) and
 * predicts its status code, the callbacks the operator gets (in order), its FAILED steps, its
 * step.retried audit rows, the transfers the operator credited (one at most: exactly one for a
 * flow that ended SUCCESS by its transfer) and the operator's settlement account at Ferry (amount −
 * fee for each paid deposit: SUCCESS, or paid and INCONSISTENT). After each sequence, besides the
 * checks above: no flow left processing (2xx), reconciliation clean for every flow but a payment
 * whose answer was lost (405, the bank paid: staff must retry it).
 *
 * Wallet API and Pay-in (docs/wallet-api.md, docs/payin-api.md): at the first such command a
 * sequence sets up a Wallet API client of its own (an administrator, USD, a bank, two accountants, a
 * customer with a USD account topped up by staff; for Pay-in a customer at KYC_1 with a card). Its
 * commands: a staff-recorded bank top-up (200 `processed`, credited at once); a bank withdrawal
 * request (402 beyond the available balance, else 200 `pending` with amount held) decided then or
 * later by one accountant or by two at once — accept/accept, decline/decline, accept/decline: exactly
 * one decision counts, the same decision answers 200 with the request as it is (`processed` /
 * `declined`), the other a 409, and later decisions the same way; a Pay-in offer (its fee 1.5 %,
 * its USDC at 1.08 exactly) paid with the card, once or twice at once (one answers Approved, the
 * other Approved or Pending; one charge), and an offer paid before paid again (Approved, no charge).
 * They run with the sandbox gate off and that client's steps run to the end after each, so the
 * core's injected faults stay the core's. After each sequence, for that client too: invariants,
 * the USD account (total, available, held) and the Pay-in customer's USDC as the model says, one
 * acquirer charge per paid offer, no step PENDING or FAILED, reconciliation clean, and a pending
 * hold only on a request still waiting for an accountant.
 */

/**
 * Production defects this property found are fixed (a trade's `total`; two wallets opened in one
 * currency by two first credits at once; two accountants accepting one Wallet API withdrawal at
 * once, the loser answering `pending` for a request accepted whose payout was not yet sent — an
 * accepted request is `processed`). Should one be found again and need tolerating while it
 * is fixed, list it here in its exact shape: it is counted in the summary line, and
 * FERRY_PROPERTY_STRICT=1 (all) or =NAME,… (those named) enforces it.
 */
const STRICT = process.env.FERRY_PROPERTY_STRICT ?? "";
const KNOWN_DEFECTS = new Set(
  ([] as string[]).filter((d) => STRICT !== "1" && !STRICT.split(",").includes(d)),
);
const tolerated: Record<string, number> = {};
function tolerate(defect: string): boolean {
  if (!KNOWN_DEFECTS.has(defect)) return false;
  bump(tolerated, defect);
  return true;
}
const RUNS = Number(process.env.FERRY_PROPERTY_RUNS ?? 200);
/** Replays a failure: the seed and path fast-check printed. */
const SEED = process.env.FERRY_PROPERTY_SEED ? Number(process.env.FERRY_PROPERTY_SEED) : undefined;
const PATH = process.env.FERRY_PROPERTY_PATH;
/** Prints each command and how long it took. */
const DEBUG = process.env.FERRY_PROPERTY_DEBUG === "1";

let t: TestApp;
let operator: Operator;
beforeAll(async () => {
  t = await startTestApp({
    settings: {
      sandboxPayoutDelayMs: 20,
      stepRetryBaseMs: 1,
      // 1-Click: short callback timeouts and backoffs keep a slow or failing operator cheap.
      oneClickCallbackTimeoutMs: OC_TIMEOUT_MS,
      oneClickCallbackAttempts: OC_CALLBACK_ATTEMPTS,
      oneClickTransferAttempts: OC_TRANSFER_ATTEMPTS,
      oneClickRetryBaseMs: 1,
    },
  });
  instrumentGate();
  instrumentAcquirer();
  operator = await startOperator(operatorBehaviour);
});
afterAll(async () => {
  await operator?.close();
  await t?.close();
});

// ——— the world the commands act on ———

type Status = TransactionStatus;
type Card = "approved" | "declined" | "challenge" | "timeout";
type Crash = "none" | "beforeRun" | "claimed";
type PayoutCard = "approved" | "declined";
type Kind = "CARD" | "BANK" | "WITHDRAWAL" | "TRANSFER" | "PAYMENT" | "TRADE";
type Event = "CANCEL" | "FAIL" | "SETTLE" | "REFUND" | "CHARGEBACK" | "APPROVE" | "DENY";
type FaultTimes = 1 | 2 | 3 | "exhaust";
/** 1-Click: the operator callback (or the provider's payment) a flow's fault hits, how, and how often. */
type OcAction = "signin" | "verifyuser" | "authorize" | "transfer" | "pay";
type OcFaultKind = "http500" | "notjson" | "refuse" | "slow" | "lose";
interface OcFault {
  action: OcAction;
  kind: OcFaultKind;
  times: 1 | 2 | "always";
}
type Action = Event | "FUNDS" | "CHALLENGE_OK" | "CHALLENGE_FAIL";
const ACTIONS: Action[] = [
  "CANCEL",
  "FAIL",
  "SETTLE",
  "REFUND",
  "CHARGEBACK",
  "APPROVE",
  "DENY",
  "FUNDS",
  "CHALLENGE_OK",
  "CHALLENGE_FAIL",
];

type Command =
  | { k: "card"; user: number; amount: number; card: Card; crash: Crash }
  | { k: "challenge"; pick: number; approve: boolean; crash: Crash }
  | { k: "bank"; user: number; amount: number }
  | { k: "funds"; pick: number; again: boolean; crash: Crash }
  | { k: "withdraw"; user: number; amount: number; returned: boolean; crash: Crash }
  | { k: "cardWithdraw"; user: number; amount: number; declined: boolean; crash: Crash }
  | { k: "transfer"; user: number; to: number; amount: number }
  | { k: "payment"; user: number; amount: number }
  | { k: "trade"; user: number; amount: number; toUsd: boolean }
  | { k: "cancel"; pick: number }
  | { k: "feedback"; pick: number; feedback: Feedback; crash: Crash }
  | { k: "review"; pick: number; decision: "APPROVE" | "DENY"; crash: Crash }
  | { k: "fault"; op: GatedOperation; lose: boolean; times: FaultTimes }
  | { k: "recover" }
  | { k: "double"; user: number; what: ("withdraw" | "transfer" | "payment" | "trade")[]; amounts: number[] }
  | { k: "held"; user: number; amount: number; what: "card" | "withdraw"; event: "CANCEL" | "FAIL" }
  | { k: "race"; pick: number; feedback: Feedback }
  | { k: "twice"; pick: number; actions: Action[] }
  | { k: "rush"; user: number; amount: number; what: "card" | "withdraw" }
  | {
      k: "oneclick";
      person: number;
      amount: number;
      deny: boolean;
      noFunds: boolean;
      fault: OcFault | null;
      crash: Crash;
      /** A recovery round runs while the provider page's decision is handled. */
      race: boolean;
      /** Staff decide at once on a deposit held for review (350). */
      review: "none" | "APPROVE" | "DENY";
      /** Staff at once on a flow left INCONSISTENT. */
      staff: OcStaff;
    }
  | {
      k: "ocStaff";
      pick: number;
      what: "APPROVE" | "DENY" | "steps" | "oneclick" | "resolve";
      fixed: boolean;
      crash: Crash;
    }
  | { k: "wTopUp"; amount: number }
  | { k: "wWithdraw"; amount: number; decide: WVerb[] }
  | { k: "wDecide"; pick: number; decide: WVerb[] }
  | { k: "piPay"; amount: number; twice: boolean }
  | { k: "piAgain"; pick: number };

const OPS: GatedOperation[] = [
  "acquirer.charge",
  "acquirer.refund",
  "bank.payout",
  "bank.status",
  "bank.return",
  "acquirer.payout",
];
/** The step kind each gated operation serves, and its attempts (provider-steps.ts). */
const KIND_OF_OP: Record<GatedOperation, { kind: string; maxAttempts: number }> = {
  "acquirer.charge": { kind: "CARD_CHARGE", maxAttempts: 5 },
  "acquirer.refund": { kind: "CARD_REFUND", maxAttempts: 10 },
  "bank.payout": { kind: "BANK_PAYOUT", maxAttempts: 10 },
  "bank.status": { kind: "BANK_PAYOUT_STATUS", maxAttempts: 20 },
  "bank.return": { kind: "BANK_RETURN", maxAttempts: 10 },
  "acquirer.payout": { kind: "CARD_PAYOUT", maxAttempts: 10 },
  "chain.send": { kind: "CHAIN_SEND", maxAttempts: 10 },
  // The 1-Click flow's payment (its own tests: test/oneclick*.test.ts).
  "identity.pay": { kind: "OC_PAYMENT", maxAttempts: 5 },
};
const FEEDBACKS: Feedback[] = [
  "SETTLED",
  "ACCEPTED",
  "CANCELLED",
  "REJECTED",
  "REFUNDED",
  "CHARGED_BACK",
  "ERROR",
];

const crash = fc.constantFrom<Crash>("none", "none", "none", "none", "none", "beforeRun", "claimed");
const amount = fc.integer({ min: 100, max: 9_000 }); // cents: 1.00–90.00
const user = fc.nat(2);
const pick = fc.nat(50);
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant("card" as const),
      user,
      amount,
      card: fc.constantFrom<Card>("approved", "approved", "declined", "challenge", "challenge", "timeout"),
      crash,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant("challenge" as const), pick, approve: fc.boolean(), crash }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("bank" as const), user, amount }) },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("funds" as const),
      pick,
      again: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
      crash,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("withdraw" as const),
      user,
      amount,
      returned: fc.boolean(),
      crash,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant("transfer" as const), user, to: fc.nat(2), amount }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("payment" as const), user, amount }) },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant("trade" as const), user, amount, toUsd: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("cancel" as const), pick }) },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("feedback" as const),
      pick,
      feedback: fc.constantFrom(...FEEDBACKS),
      crash,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("review" as const),
      pick,
      decision: fc.constantFrom("APPROVE" as const, "APPROVE" as const, "DENY" as const),
      crash,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("fault" as const),
      op: fc.constantFrom(...OPS),
      lose: fc.boolean(),
      times: fc.constantFrom<FaultTimes>(1, 1, 2, 3, "exhaust", "exhaust"),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("recover" as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("double" as const),
      user,
      what: fc.array(
        fc.constantFrom("withdraw" as const, "transfer" as const, "payment" as const, "trade" as const),
        {
          minLength: 2,
          maxLength: 2,
        },
      ),
      amounts: fc.array(fc.integer({ min: 2_000, max: 15_000 }), { minLength: 2, maxLength: 2 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("held" as const),
      user,
      amount,
      what: fc.constantFrom("card" as const, "withdraw" as const),
      event: fc.constantFrom("CANCEL" as const, "FAIL" as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant("race" as const), pick, feedback: fc.constantFrom(...FEEDBACKS) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("rush" as const),
      user,
      amount,
      what: fc.constantFrom("card" as const, "withdraw" as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("twice" as const),
      pick,
      actions: fc.array(fc.constantFrom(...ACTIONS), { minLength: 2, maxLength: 2 }),
    }),
  },
);

type OcStaff = "none" | "steps" | "oneclick" | "resolve";
const ocFault: fc.Arbitrary<OcFault | null> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(null) },
  {
    weight: 5,
    arbitrary: fc.record({
      action: fc.constantFrom<OcAction>("signin", "verifyuser", "authorize", "transfer", "transfer", "pay"),
      kind: fc.constantFrom<OcFaultKind>("http500", "notjson", "refuse", "slow", "lose"),
      times: fc.constantFrom<1 | 2 | "always">(1, 2, "always", "always"),
    }),
  },
);
const ocCommands: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("oneclick" as const),
      person: fc.nat(2),
      amount,
      deny: fc.integer({ min: 0, max: 7 }).map((n) => n === 0),
      noFunds: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      fault: ocFault,
      crash,
      race: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
      review: fc.constantFrom("none" as const, "APPROVE" as const, "APPROVE" as const, "DENY" as const),
      staff: fc.constantFrom<OcStaff>("none", "steps", "oneclick", "oneclick", "steps", "resolve"),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("ocStaff" as const),
      pick,
      what: fc.constantFrom(
        "APPROVE" as const,
        "APPROVE" as const,
        "DENY" as const,
        "steps" as const,
        "oneclick" as const,
        "resolve" as const,
      ),
      fixed: fc.integer({ min: 0, max: 3 }).map((n) => n > 0),
      crash,
    }),
  },
);

/** Withdrawals to a card (the acquirer's payout; the declining test card sometimes). */
const cardWithdrawal: fc.Arbitrary<Command> = fc.record({
  k: fc.constant("cardWithdraw" as const),
  user,
  amount,
  declined: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
  crash,
});

/** Wallet API requests that wait for staff: one accountant's decision, or two at once (a race). */
type WVerb = "accept" | "decline";
const wVerbs = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.array(fc.constantFrom<WVerb>("accept", "accept", "decline"), {
      minLength: 1,
      maxLength: 1,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.array(fc.constantFrom<WVerb>("accept", "decline"), { minLength: 2, maxLength: 2 }),
  },
  { weight: 1, arbitrary: fc.constant([] as WVerb[]) },
);
const walletCommands: fc.Arbitrary<Command> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ k: fc.constant("wTopUp" as const), amount }) },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("wWithdraw" as const),
      // Mostly within the account, sometimes beyond it (402).
      amount: fc.oneof(
        { weight: 4, arbitrary: fc.integer({ min: 100, max: 6_000 }) },
        { weight: 1, arbitrary: fc.integer({ min: 6_000, max: 30_000 }) },
      ),
      decide: wVerbs,
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("wDecide" as const), pick, decide: wVerbs }) },
);
/** Pay-in purchases: an offer paid with a card, or paid twice at once; an offer paid before, paid again. */
const payinCommands: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("piPay" as const),
      amount: fc.integer({ min: 1_000, max: 9_000 }),
      twice: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("piAgain" as const), pick }) },
);
/** The Wallet API's and Pay-in's shares (each sequence using them sets up a Wallet API client of its own). */
const WALLET_WEIGHT = Number(process.env.FERRY_PROPERTY_WALLET_WEIGHT ?? 3);
const PAYIN_WEIGHT = Number(process.env.FERRY_PROPERTY_PAYIN_WEIGHT ?? 2);

/** The 1-Click share of the commands (the money core's commands weigh 43 in all). */
const OC_WEIGHT = Number(process.env.FERRY_PROPERTY_OC_WEIGHT ?? 10);

const scenario = fc.record({
  people: fc.integer({ min: 2, max: 3 }),
  fees: fc.boolean(),
  review: fc.integer({ min: 0, max: 2 }).map((n) => n === 0),
  commands: fc.array(
    fc.oneof(
      { weight: 43, arbitrary: command },
      { weight: 3, arbitrary: cardWithdrawal },
      { weight: OC_WEIGHT, arbitrary: ocCommands },
      { weight: WALLET_WEIGHT, arbitrary: walletCommands },
      { weight: PAYIN_WEIGHT, arbitrary: payinCommands },
    ),
    { minLength: 3, maxLength: 12 },
  ),
});

// ——— the model's own rules (docs/platform-api.md, docs/sandbox.md, docs/monitoring.md) ———

/** Fee rules: percent in basis points, fixed in cents (the client's settings below say the same). */
const FEE_RULES: Record<string, { bp: bigint; fixed: bigint }> = {
  DEPOSIT: { bp: 150n, fixed: 0n },
  WITHDRAWAL: { bp: 0n, fixed: 50n },
  TRANSFER: { bp: 25n, fixed: 5n },
  PAYMENT: { bp: 200n, fixed: 0n },
  TRADE: { bp: 50n, fixed: 0n },
};
const FEE_SETTINGS = [
  { transactionType: "DEPOSIT", percent: "1.5" },
  { transactionType: "WITHDRAWAL", fixed: "0.50" },
  { transactionType: "TRANSFER", percent: "0.25", fixed: "0.05" },
  { transactionType: "PAYMENT", percent: "2" },
  { transactionType: "TRADE", percent: "0.5" },
];
const REVIEW_USD_CENTS = 6_000n; // singleAmountReviewUsd: 60
const FUNDING = 20_000n; // each person starts with 200.00 EUR

function feeOf(fees: boolean, type: string, cents: bigint): bigint {
  if (!fees) return 0n;
  const rule = FEE_RULES[type] ?? { bp: 0n, fixed: 0n };
  const fee = (cents * rule.bp * 2n + 10_000n) / 20_000n + rule.fixed;
  return fee > cents ? cents : fee;
}
const usdCents = (currency: string, cents: bigint) =>
  currency === "USD" ? cents : (cents * 108n + 50n) / 100n; // EUR at 1.08, half up
const convertCents = (from: string, cents: bigint) =>
  from === "EUR" ? (cents * 108n) / 100n : (cents * 100n) / 108n; // rounded down

const DONE: Status[] = ["CAPTURED", "SETTLED"];
const CLOSED: Status[] = ["CANCELED", "ERROR", "REFUSED", "REFUNDED", "CHARGED_BACK"];
const IN_FLIGHT_HOLD: Status[] = ["MANUAL_REVIEW", "PENDING", "AUTHORIZED"];

/** What a client or staff event does to a transaction in a status: the target, or undefined (409). */
function rule(
  kind: Kind,
  status: Status,
  event: Event,
): { to: Status; guarded: boolean } | "repeat" | undefined {
  const repeat: Partial<Record<Event, Status>> = {
    SETTLE: "SETTLED",
    REFUND: "REFUNDED",
    CHARGEBACK: "CHARGED_BACK",
    CANCEL: "CANCELED",
  };
  const isMove = kind === "TRANSFER" || kind === "PAYMENT" || kind === "TRADE";
  let result: { to: Status; guarded: boolean } | undefined;
  switch (event) {
    case "CANCEL":
    case "FAIL": {
      const to = event === "CANCEL" ? "CANCELED" : "ERROR";
      const from: Record<Kind, Status[]> = {
        CARD: ["MANUAL_REVIEW", "PENDING", "AWAITING_PAYMENT"],
        BANK: ["MANUAL_REVIEW", "AWAITING_PAYMENT"],
        WITHDRAWAL: ["MANUAL_REVIEW", "PENDING"],
        TRANSFER: ["MANUAL_REVIEW"],
        PAYMENT: ["MANUAL_REVIEW"],
        TRADE: ["MANUAL_REVIEW"],
      };
      if (from[kind].includes(status)) result = { to, guarded: kind === "CARD" || kind === "WITHDRAWAL" };
      break;
    }
    case "SETTLE":
      if (status === "CAPTURED") result = { to: "SETTLED", guarded: false };
      break;
    case "REFUND":
    case "CHARGEBACK":
      if (DONE.includes(status))
        result = { to: event === "REFUND" ? "REFUNDED" : "CHARGED_BACK", guarded: false };
      break;
    case "APPROVE":
    case "DENY":
      if (status === "MANUAL_REVIEW")
        result = { to: event === "DENY" ? "REFUSED" : isMove ? "CAPTURED" : "PENDING", guarded: false };
      break;
  }
  if (result) return result;
  return repeat[event] === status ? "repeat" : undefined;
}

const feedbackEvent = (f: Feedback): Event =>
  f === "CANCELLED" || f === "REJECTED"
    ? "CANCEL"
    : f === "ERROR"
      ? "FAIL"
      : f === "SETTLED" || f === "ACCEPTED"
        ? "SETTLE"
        : f === "REFUNDED"
          ? "REFUND"
          : "CHARGEBACK";

interface ModelTx {
  id: string;
  kind: Kind;
  user: number;
  /** TRANSFER / PAYMENT: the receiver (index into `users`). */
  to?: number;
  currency: "EUR" | "USD";
  amount: bigint;
  fee: bigint;
  target?: { currency: "EUR" | "USD"; amount: bigint };
  card?: Card;
  /** A withdrawal paid out to a card. */
  payoutCard?: PayoutCard;
  status: Status;
  seen: Status[];
  /** 3-D Secure reference, or the bank deposit's payment reference, once Ferry showed it. */
  reference?: string;
  /** The first challenge completion's decision (the step keeps it). */
  challenge?: { approved: boolean; crashed: boolean; unknown?: boolean };
  transfers: string[];
}

interface Sequence {
  clientId: string;
  fees: boolean;
  review: boolean;
  /** users[i]: person i; the last one is the merchant. */
  users: string[];
  txs: ModelTx[];
  hasUsdWallet: Set<number>;
  ownerOfCard: Map<Card, number>;
  cards: Map<number, string>;
  counter: number;
  injected: Record<GatedOperation, number>;
  consumedAtStart: Record<GatedOperation, number>;
  timeoutsAtStart: number;
  /** Steps a crashed process had claimed (an attempt used without an injected failure). */
  claimed: Map<string, number>;
  /** 1-Click, once the client is set up for it: its flows. */
  oc?: { flows: ModelFlow[] };
  /** 1-Click persons the operator has signed in (a returning person skips signin). */
  ocKnown: Set<number>;
  /** The Wallet API and Pay-in, once a command used them: a Wallet API client of their own. */
  w?: WalletWorld;
}

// ——— instrumentation: what the sandbox gate actually failed ———

const consumed = Object.fromEntries(Object.keys(KIND_OF_OP).map((op) => [op, 0])) as Record<
  GatedOperation,
  number
>;

/** Wallet API and Pay-in commands run with the sandbox gate off: the core's injected faults are the core's. */
let gateOff = false;

function instrumentGate() {
  const gate = t.services.sandboxGate;
  const before = gate.before.bind(gate);
  const after = gate.after.bind(gate);
  gate.before = (op) => {
    if (gateOff) return;
    try {
      before(op);
    } catch (error) {
      if (error instanceof SandboxProviderError) consumed[op]++;
      throw error;
    }
  };
  gate.after = async (op) => {
    if (gateOff) return;
    try {
      await after(op);
    } catch (error) {
      if (error instanceof SandboxProviderError) consumed[op]++;
      throw error;
    }
  };
}

/** The acquirer's own failures (the timeout card's first answer), which use up attempts too. */
let timeouts = 0;
function instrumentAcquirer() {
  const acquirer = t.services.acquirer;
  const charge = acquirer.charge.bind(acquirer);
  acquirer.charge = async (request) => {
    try {
      return await charge(request);
    } catch (error) {
      if (error instanceof AcquirerTimeoutError) timeouts++;
      throw error;
    }
  };
}

const faultsLeft = (s: Sequence, op: GatedOperation) =>
  s.injected[op] - (consumed[op] - s.consumedAtStart[op]);

// ——— statistics for the summary line ———

const stats = {
  sequences: 0,
  commands: 0,
  refused: {} as Record<string, number>,
  final: {} as Record<string, number>,
  faultsInjected: 0,
  crashes: 0,
  recoveries: 0,
  stepsFailed: 0,
  ocFlows: 0,
  ocStaff: {} as Record<string, number>,
  ocFinal: {} as Record<string, number>,
};
const bump = (m: Record<string, number>, k: string) => {
  m[k] = (m[k] ?? 0) + 1;
};

// ——— helpers ———

const db = () => t.database.db;
const money = (cents: number | bigint) => {
  const c = BigInt(cents);
  return `${c / 100n}.${String(c % 100n).padStart(2, "0")}`;
};

/** A valid German IBAN for person `i`; `returned`: its last four digits 0000 (the sandbox bank returns it). */
const iban = (i: number, returned: boolean) => germanIban(returned ? `05320${i}0000` : `0532${i}13000`);

let cards = 0;
/** An approved card, distinct per call (a card belongs to one user of a client); prefix 4111, away from the test cards. */
function approvedCard(): string {
  return withLuhnDigit(`4111${String(++cards).padStart(11, "0")}`);
}

const CARD_NUMBERS: Record<Exclude<Card, "approved">, string> = {
  declined: TEST_CARDS.DO_NOT_HONOUR,
  challenge: TEST_CARDS.CHALLENGE,
  timeout: TEST_CARDS.TIMEOUT_ONCE,
};

type Outcome<T> = { ok: true; value: T } | { ok: false; error: DomainError };
async function attempt<T>(fn: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    if (error instanceof DomainError) return { ok: false, error };
    throw error;
  }
}

function refusal(s: Sequence, what: string, error: DomainError, expected: string[]) {
  const code = `${error.kind}/${error.code}`;
  expect(expected, `${what}: refused ${code} (${error.message}) in ${s.clientId}`).toContain(code);
  bump(stats.refused, error.code);
}

/** Runs `fn` as if the process died after committing and before running its steps ("beforeRun"), or after claiming them ("claimed"). */
async function withCrash<T>(s: Sequence, mode: Crash, requestId: string, fn: () => Promise<T>): Promise<T> {
  if (mode === "none") return fn();
  stats.crashes++;
  const runner = t.services.steps;
  runner.run = async () => {};
  try {
    return await fn();
  } finally {
    Reflect.deleteProperty(runner, "run");
    if (mode === "claimed") {
      const claimed = await db()
        .updateTable("steps")
        .set({ attempts: sql`attempts + 1`, locked_until: new Date(Date.now() + 30_000) })
        .where("client_id", "=", s.clientId)
        .where("process_id", "=", requestId)
        .where("status", "=", "PENDING")
        .where("attempts", "=", 0)
        .returning("kind")
        .execute();
      for (const { kind } of claimed) s.claimed.set(kind, (s.claimed.get(kind) ?? 0) + 1);
    }
  }
}

/** Time passes: every backoff and every dead process's lease runs out. */
async function fastForward(clientId: string) {
  await db()
    .updateTable("steps")
    .set({ next_attempt_at: new Date(), locked_until: null })
    .where("client_id", "=", clientId)
    .where("status", "=", "PENDING")
    .execute();
}

function observe(s: Sequence, tx: ModelTx, view: Transaction, expected?: Status[]) {
  if (expected)
    expect(
      expected,
      `${tx.kind} ${tx.id} answered ${view.status} (was ${tx.status}) in ${s.clientId}`,
    ).toContain(view.status);
  const previous = tx.status;
  const next = view.status;
  // Closed stays closed; executed stays executed (or is reversed); settled never goes back.
  if (CLOSED.includes(previous)) expect(next, `${tx.id} left ${previous}`).toBe(previous);
  if (DONE.includes(previous))
    expect([...DONE, "REFUNDED", "CHARGED_BACK"], `${tx.id} left ${previous}`).toContain(next);
  if (previous === "SETTLED") expect(next, `${tx.id} went back from SETTLED`).not.toBe("CAPTURED");
  tx.status = next;
  if (tx.seen.at(-1) !== next) tx.seen.push(next);
  if (tx.kind === "CARD" && view.redirectUrl) tx.reference = view.redirectUrl.split("/").pop();
  if (tx.kind === "BANK" && view.paymentInstructions) tx.reference = view.paymentInstructions.reference;
}

async function refreshAll(s: Sequence) {
  for (const tx of s.txs) observe(s, tx, await t.services.transactions.get(s.clientId, tx.id));
}

/** Each user's EUR and USD balances, total and available, from the model's statuses. */
function modelBalances(s: Sequence) {
  const zero = () => ({ total: 0n, available: 0n });
  const book = s.users.map((_, u) => ({
    EUR: u < s.users.length - 1 ? { total: FUNDING, available: FUNDING } : zero(),
    USD: zero(),
  }));
  const add = (u: number, currency: "EUR" | "USD", total: bigint, available = total) => {
    const b = book[u];
    if (!b) throw new Error(`no user ${u}`);
    b[currency].total += total;
    b[currency].available += available;
  };
  for (const tx of s.txs) {
    const done = DONE.includes(tx.status);
    switch (tx.kind) {
      case "CARD":
      case "BANK":
        if (done) add(tx.user, tx.currency, tx.amount - tx.fee);
        break;
      case "WITHDRAWAL":
        if (done) add(tx.user, tx.currency, -(tx.amount + tx.fee));
        else if (IN_FLIGHT_HOLD.includes(tx.status)) add(tx.user, tx.currency, 0n, -(tx.amount + tx.fee));
        break;
      case "TRANSFER":
      case "PAYMENT":
        if (done) {
          add(tx.user, tx.currency, -(tx.amount + tx.fee));
          add(tx.to ?? -1, tx.currency, tx.amount);
        }
        break;
      case "TRADE":
        if (done && tx.target) {
          add(tx.user, tx.currency, -tx.amount);
          add(tx.user, tx.target.currency, tx.target.amount);
        }
        break;
    }
  }
  return book;
}

const available = (s: Sequence, u: number, currency: "EUR" | "USD") =>
  modelBalances(s)[u]?.[currency].available ?? 0n;

/** What a REFUND / CHARGEBACK needs from a wallet to be booked: [user, currency, amount]. */
function reversalNeeds(tx: ModelTx): [number, "EUR" | "USD", bigint] | undefined {
  switch (tx.kind) {
    case "CARD":
    case "BANK":
      return [tx.user, tx.currency, tx.amount - tx.fee];
    case "TRANSFER":
    case "PAYMENT":
      return [tx.to ?? -1, tx.currency, tx.amount];
    case "TRADE":
      return tx.target ? [tx.user, tx.target.currency, tx.target.amount] : undefined;
    case "WITHDRAWAL":
      return undefined;
  }
}

/** The open step that makes a guarded event a 409 "call in flight": one tried, being tried, or failed. */
async function callInFlight(s: Sequence, requestId: string) {
  const rows = await db()
    .selectFrom("steps")
    .select(["status", "attempts", "locked_until"])
    .where("client_id", "=", s.clientId)
    .where("process_id", "=", requestId)
    .where("status", "in", ["PENDING", "FAILED"])
    .execute();
  return rows.some((r) => r.status === "FAILED" || Number(r.attempts) > 0 || r.locked_until !== null);
}

// ——— the statuses an operation may answer with ———

function chargeOutcomes(s: Sequence, card: Card, crashed: Crash): Status[] {
  if (crashed !== "none") return ["PENDING"];
  const base: Record<Card, Status> = {
    approved: "CAPTURED",
    declined: "REFUSED",
    challenge: "AWAITING_PAYMENT",
    timeout: "CAPTURED",
  };
  return faultsLeft(s, "acquirer.charge") > 0 ? [base[card], "PENDING"] : [base[card]];
}

/** A withdrawal's payout: to a bank account, or to a card (the acquirer's payout; a declined card is REFUSED). */
function payoutOutcomes(s: Sequence, crashed: Crash, toCard?: PayoutCard): Status[] {
  if (crashed !== "none") return ["PENDING"];
  const op: GatedOperation = toCard ? "acquirer.payout" : "bank.payout";
  const base: Status = toCard === "declined" ? "REFUSED" : "AUTHORIZED";
  return faultsLeft(s, op) > 0 ? [base, "PENDING"] : [base];
}

const reviewed = (s: Sequence, currency: string, cents: bigint) =>
  s.review && usdCents(currency, cents) >= REVIEW_USD_CENTS;

// ——— the commands ———

function newTx(
  s: Sequence,
  kind: Kind,
  fields: Partial<ModelTx> & { user: number; amount: bigint },
): ModelTx {
  return {
    id: `r${++s.counter}`,
    kind,
    currency: "EUR",
    fee: 0n,
    status: "PENDING",
    seen: [],
    transfers: [],
    ...fields,
  };
}

/** Records a created transaction in the model, after checking what Ferry quoted. */
function created(s: Sequence, tx: ModelTx, view: Transaction, expected: Status[]) {
  expect(view.amount, `${tx.id} amount`).toBe(tx.amount);
  expect(view.fee, `${tx.id} fee`).toBe(tx.fee);
  if (tx.target) {
    expect(view.target?.currency).toBe(tx.target.currency);
    expect(view.target?.amount, `${tx.id} target amount`).toBe(tx.target.amount);
  }
  // `total`: what the payer gives in all (a card or bank deposit: the amount; a trade: the amount,
  // its fee taken from it; withdrawals, transfers, payments: amount + fee).
  const total = BigInt(showTransaction(view).total.replace(".", ""));
  const gives =
    tx.kind === "CARD" || tx.kind === "BANK" || tx.kind === "TRADE" ? tx.amount : tx.amount + tx.fee;
  if (total !== gives && !(tx.kind === "TRADE" && tolerate("TRADE_TOTAL")))
    expect(total, `${tx.kind} ${tx.id} total (amount ${tx.amount}, fee ${tx.fee})`).toBe(gives);
  tx.status = view.status;
  tx.seen.push(view.status);
  s.txs.push(tx);
  expect(expected, `${tx.kind} ${tx.id} created ${view.status} in ${s.clientId}`).toContain(view.status);
  observe(s, tx, view);
}

async function expectNotRecorded(s: Sequence, requestId: string) {
  const found = await attempt(() => t.services.transactions.get(s.clientId, requestId));
  expect(found.ok, `${requestId} was refused but recorded`).toBe(false);
}

async function cardCommand(s: Sequence, c: Extract<Command, { k: "card" }>) {
  // A test card belongs to one user of a client: the first person to use it keeps it.
  const u =
    c.card === "approved"
      ? c.user % (s.users.length - 1)
      : (s.ownerOfCard.get(c.card) ?? c.user % (s.users.length - 1));
  if (c.card !== "approved") s.ownerOfCard.set(c.card, u);
  let number = c.card === "approved" ? s.cards.get(u) : CARD_NUMBERS[c.card];
  if (!number) {
    number = approvedCard();
    s.cards.set(u, number);
  }
  const cents = BigInt(c.amount);
  const tx = newTx(s, "CARD", { user: u, amount: cents, fee: feeOf(s.fees, "DEPOSIT", cents), card: c.card });
  const expected = reviewed(s, "EUR", cents)
    ? ["MANUAL_REVIEW" as const]
    : chargeOutcomes(s, c.card, c.crash);
  const view = await withCrash(s, c.crash, tx.id, () =>
    t.services.transactions.deposit({
      clientId: s.clientId,
      userId: s.users[u] ?? "",
      requestId: tx.id,
      amount: money(cents),
      currency: "EUR",
      sourceMethod: {
        paymentMethodType: "CREDIT_CARD",
        cardNumber: number,
        expirationMonth: 12,
        expirationYear: 2031,
      },
    }),
  );
  created(s, tx, view, expected);
}

async function challengeCommand(s: Sequence, c: Extract<Command, { k: "challenge" }>) {
  const candidates = s.txs.filter((x) => x.kind === "CARD" && x.card === "challenge" && x.reference);
  const tx = candidates[c.pick % Math.max(1, candidates.length)];
  if (!tx?.reference) return;
  const first = tx.challenge === undefined;
  const awaited = tx.status === "AWAITING_PAYMENT";
  if (first) tx.challenge = { approved: c.approve && awaited, crashed: c.crash !== "none" };
  const decided = tx.challenge?.approved ? "CAPTURED" : "REFUSED";
  let expected: Status[];
  if (!awaited) expected = [tx.status];
  else if (first) expected = c.crash === "none" ? [decided] : ["AWAITING_PAYMENT"];
  else if (tx.challenge?.unknown) expected = ["AWAITING_PAYMENT", "CAPTURED", "REFUSED"];
  else expected = ["AWAITING_PAYMENT", decided]; // the first completion's step, if a crash left it
  const reference = tx.reference;
  const view = await withCrash(s, first ? c.crash : "none", tx.id, () =>
    t.services.transactions.completeChallenge(reference, c.approve),
  );
  observe(s, tx, view, expected);
}

async function bankCommand(s: Sequence, c: Extract<Command, { k: "bank" }>) {
  const u = c.user % (s.users.length - 1);
  const cents = BigInt(c.amount);
  const tx = newTx(s, "BANK", { user: u, amount: cents, fee: feeOf(s.fees, "DEPOSIT", cents) });
  const view = await t.services.transactions.bankDeposit({
    clientId: s.clientId,
    userId: s.users[u] ?? "",
    requestId: tx.id,
    amount: money(cents),
    currency: "EUR",
    paymentMethodType: "WIRE",
  });
  created(s, tx, view, [reviewed(s, "EUR", cents) ? "MANUAL_REVIEW" : "AWAITING_PAYMENT"]);
}

async function fundsCommand(s: Sequence, c: Extract<Command, { k: "funds" }>) {
  const candidates = s.txs.filter((x) => x.kind === "BANK" && x.reference);
  const tx = candidates[c.pick % Math.max(1, candidates.length)];
  if (!tx?.reference) return;
  const repeat = c.again && tx.transfers.length > 0;
  const transferId = repeat ? (tx.transfers.at(-1) ?? "") : `${tx.reference}-${tx.transfers.length + 1}`;
  if (!repeat) tx.transfers.push(transferId);
  const awaited = tx.status === "AWAITING_PAYMENT";
  const expectedOutcome = repeat ? "DUPLICATE" : awaited ? "CREDITED" : "RETURNING";
  const reference = tx.reference;
  const result = await withCrash(s, expectedOutcome === "RETURNING" ? c.crash : "none", tx.id, () =>
    t.services.transactions.incomingBankTransfer(reference, money(tx.amount), "EUR", transferId),
  );
  expect(result.outcome, `money for ${tx.id} (${tx.status})`).toBe(expectedOutcome);
  observe(s, tx, result.transaction, [expectedOutcome === "CREDITED" ? "CAPTURED" : tx.status]);
}

/** A debit prepared: the model's transaction, the call, and what it takes from the available balance. */
interface Debit {
  tx: ModelTx;
  call: () => Promise<Transaction>;
  /** What it takes from the payer's available balance now (0: it waits for review without a hold). */
  takes: bigint;
  /** Whether the payer has a wallet in the currency to pay from. */
  hasWallet: boolean;
  expected: Status[];
}

function prepareWithdrawal(
  s: Sequence,
  user: number,
  amount: number,
  returned: boolean,
  crashed: Crash,
  /** A payout to the user's card (approved), or to the declining test card (its one user's). */
  toCard?: PayoutCard,
): Debit {
  let u = user % (s.users.length - 1);
  let cardNumber: string | undefined;
  if (toCard === "declined") {
    u = s.ownerOfCard.get("declined") ?? u;
    s.ownerOfCard.set("declined", u);
    cardNumber = CARD_NUMBERS.declined;
  } else if (toCard === "approved") {
    cardNumber = s.cards.get(u) ?? approvedCard();
    s.cards.set(u, cardNumber);
  }
  const cents = BigInt(amount);
  const tx = newTx(s, "WITHDRAWAL", {
    user: u,
    amount: cents,
    fee: feeOf(s.fees, "WITHDRAWAL", cents),
    ...(toCard ? { payoutCard: toCard } : {}),
  });
  return {
    tx,
    takes: tx.amount + tx.fee, // held at once, in review too
    hasWallet: true,
    expected: reviewed(s, "EUR", cents) ? ["MANUAL_REVIEW"] : payoutOutcomes(s, crashed, toCard),
    call: () =>
      t.services.transactions.withdraw({
        clientId: s.clientId,
        userId: s.users[u] ?? "",
        requestId: tx.id,
        amount: money(cents),
        currency: "EUR",
        destinationMethod: cardNumber
          ? {
              paymentMethodType: "CREDIT_CARD",
              cardNumber,
              expirationMonth: 12,
              expirationYear: 2031,
              cardHolder: "Ada Doe",
            }
          : {
              paymentMethodType: "ACH",
              iban: iban(u, returned),
              accountHolderName: "Ada Doe",
            },
      }),
  };
}

function prepareMove(s: Sequence, c: Extract<Command, { k: "transfer" | "payment" | "trade" }>): Debit {
  const people = s.users.length - 1;
  const u = c.user % people;
  const cents = BigInt(c.amount);
  let tx: ModelTx;
  let call: () => Promise<Transaction>;
  if (c.k === "trade") {
    const from = c.toUsd ? "EUR" : "USD";
    const to = c.toUsd ? "USD" : "EUR";
    const fee = feeOf(s.fees, "TRADE", cents);
    tx = newTx(s, "TRADE", {
      user: u,
      currency: from,
      amount: cents,
      fee,
      target: { currency: to, amount: convertCents(from, cents - fee) },
    });
    call = () =>
      t.services.transactions.trade({
        clientId: s.clientId,
        userId: s.users[u] ?? "",
        requestId: tx.id,
        amount: money(cents),
        currency: from,
        targetCurrency: to,
      });
  } else {
    const receiver = c.k === "payment" ? people : (u + 1 + (c.to % (people - 1))) % people;
    const type = c.k === "payment" ? "PAYMENT" : "TRANSFER";
    tx = newTx(s, type, { user: u, to: receiver, amount: cents, fee: feeOf(s.fees, type, cents) });
    call = () =>
      t.services.transactions.transfer({
        clientId: s.clientId,
        userId: s.users[u] ?? "",
        requestId: tx.id,
        amount: money(cents),
        currency: "EUR",
        kind: type,
        destinationUserId: s.users[receiver] ?? "",
      });
  }
  const review = reviewed(s, tx.currency, cents);
  const hasWallet = tx.currency === "EUR" || s.hasUsdWallet.has(u);
  // The target wallet of a trade opens on the way, whatever comes of it.
  if (tx.kind === "TRADE" && tx.currency === "EUR") s.hasUsdWallet.add(u);
  return {
    tx,
    call,
    takes: review ? 0n : tx.kind === "TRADE" ? tx.amount : tx.amount + tx.fee,
    hasWallet,
    expected: [review ? "MANUAL_REVIEW" : "CAPTURED"],
  };
}

/** Runs one debit: refused (402, nothing recorded) exactly when the model's available balance is short. */
async function debitCommand(
  s: Sequence,
  d: Debit,
  crashed: Crash = "none",
  /** A recovery round runs beside it: a hold it releases (a returned payout) may make room meanwhile. */
  concurrentRecovery = false,
) {
  const { tx } = d;
  const has = available(s, tx.user, tx.currency);
  const enough = d.hasWallet && has >= d.takes;
  const outcome = await attempt(() => withCrash(s, crashed, tx.id, d.call));
  if (!outcome.ok) {
    expect(enough, `${tx.kind} ${tx.id} refused though ${has} ≥ ${d.takes}`).toBe(false);
    refusal(s, `${tx.kind} ${tx.id}`, outcome.error, ["PAYMENT_FAILED/INSUFFICIENT_FUNDS"]);
    await expectNotRecorded(s, tx.id);
    return;
  }
  if (!enough && concurrentRecovery && d.hasWallet) {
    // Accepted on room the recovery round made: after it, the balance must still cover it.
    created(s, tx, outcome.value, d.expected);
    await refreshAll(s);
    const after = available(s, tx.user, tx.currency);
    expect(after >= 0n, `${tx.kind} ${tx.id} accepted beyond the available ${after} after recovery`).toBe(
      true,
    );
    return;
  }
  expect(enough, `${tx.kind} ${tx.id} accepted beyond the available ${has} < ${d.takes}`).toBe(true);
  created(s, tx, outcome.value, d.expected);
}

/** Two debits of one payer at once: whatever order the ledger took them in, never more than the balance. */
async function doubleCommand(s: Sequence, c: Extract<Command, { k: "double" }>) {
  const debits = c.what.map((what, i) => {
    const cents = c.amounts[i] ?? 100;
    if (what === "withdraw") return prepareWithdrawal(s, c.user, cents, false, "none");
    if (what === "trade") return prepareMove(s, { k: "trade", user: c.user, amount: cents, toUsd: true });
    return prepareMove(s, { k: what, user: c.user, to: i, amount: cents });
  });
  const u = debits[0]?.tx.user ?? 0;
  const has = available(s, u, "EUR");
  const outcomes = await Promise.all(debits.map((d) => attempt(d.call)));
  let taken = 0n;
  for (const [i, outcome] of outcomes.entries()) if (outcome.ok) taken += debits[i]?.takes ?? 0n;
  expect(taken, `two debits at once took ${taken} of ${has} in ${s.clientId}`).toBeLessThanOrEqual(has);
  for (const [i, outcome] of outcomes.entries()) {
    const d = debits[i];
    if (!d) continue;
    if (outcome.ok) {
      created(s, d.tx, outcome.value, d.expected);
      continue;
    }
    refusal(s, `${d.tx.kind} ${d.tx.id} (at once)`, outcome.error, ["PAYMENT_FAILED/INSUFFICIENT_FUNDS"]);
    expect(taken + d.takes, `${d.tx.id} refused though it fitted beside the other`).toBeGreaterThan(has);
    await expectNotRecorded(s, d.tx.id);
  }
}

/**
 * The provider call of a new card deposit or withdrawal is held (the provider acted, its answer not
 * back yet) while the client cancels it or reports an error: 409, retryable; the call then completes.
 */
async function heldCommand(s: Sequence, c: Extract<Command, { k: "held" }>) {
  const op: GatedOperation = c.what === "card" ? "acquirer.charge" : "bank.payout";
  const cents = BigInt(c.amount);
  const u = c.user % (s.users.length - 1);
  if (faultsLeft(s, op) > 0 || reviewed(s, "EUR", cents)) return; // no call would wait
  let d: Debit;
  if (c.what === "card") {
    let number = s.cards.get(u);
    if (!number) {
      number = approvedCard();
      s.cards.set(u, number);
    }
    const card = number;
    const tx = newTx(s, "CARD", {
      user: u,
      amount: cents,
      fee: feeOf(s.fees, "DEPOSIT", cents),
      card: "approved",
    });
    d = {
      tx,
      takes: 0n,
      hasWallet: true,
      expected: ["CAPTURED"],
      call: () =>
        t.services.transactions.deposit({
          clientId: s.clientId,
          userId: s.users[u] ?? "",
          requestId: tx.id,
          amount: money(cents),
          currency: "EUR",
          sourceMethod: {
            paymentMethodType: "CREDIT_CARD",
            cardNumber: card,
            expirationMonth: 12,
            expirationYear: 2031,
          },
        }),
    };
  } else {
    d = prepareWithdrawal(s, c.user, c.amount, false, "none");
    if (available(s, u, "EUR") < d.takes) return;
  }
  const held = t.services.sandboxGate.hold(op);
  let pending: Promise<Outcome<Transaction>> | undefined;
  try {
    pending = attempt(d.call);
    const deadline = Date.now() + 10_000;
    while (held.waiting() === 0) {
      if (Date.now() > deadline) throw new Error(`${op} of ${d.tx.id} never reached the provider`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const label = `${c.event} while ${op} of ${d.tx.id} is in flight`;
    const call =
      c.event === "CANCEL"
        ? () => t.services.transactions.cancel(s.clientId, d.tx.id)
        : () => t.services.transactions.feedback(s.clientId, d.tx.id, "ERROR");
    const during = await attempt(call);
    expect(during.ok, `${label} was allowed`).toBe(false);
    if (!during.ok) {
      refusal(s, label, during.error, ["CONFLICT/PROVIDER_CALL_IN_FLIGHT"]);
      expect(during.error.details?.retryable).toBe(true);
    }
  } finally {
    held.release();
  }
  const outcome = await pending;
  if (!outcome.ok) throw outcome.error;
  created(s, d.tx, outcome.value, d.expected);
}

/** A client event on a transaction while a recovery round runs: either order is fine, never both halves. */
async function raceCommand(s: Sequence, c: Extract<Command, { k: "race" }>) {
  const fitting = s.txs.filter((x) => typeof rule(x.kind, x.status, feedbackEvent(c.feedback)) === "object");
  const tx = fitting[c.pick % Math.max(1, fitting.length)];
  if (!tx) return;
  await fastForward(s.clientId);
  const [outcome] = await Promise.all([
    attempt(() => t.services.transactions.feedback(s.clientId, tx.id, c.feedback)),
    t.services.steps.runDue(100),
  ]);
  if (!outcome.ok)
    refusal(s, `${c.feedback} on ${tx.id} racing recovery`, outcome.error, [
      "CONFLICT/PROVIDER_CALL_IN_FLIGHT",
      "CONFLICT/TRANSITION_NOT_ALLOWED",
      "CONFLICT/REVERSAL_REFUSED",
    ]);
  stats.recoveries++;
  await refreshAll(s);
}

/** A client or staff event on a transaction: the model predicts the answer or the refusal. */
async function eventCommand(
  s: Sequence,
  tx: ModelTx,
  event: Event,
  crashed: Crash,
  call: () => Promise<Transaction>,
) {
  const r = rule(tx.kind, tx.status, event);
  const label = `${event} on ${tx.kind} ${tx.id} (${tx.status}) in ${s.clientId}`;
  if (r === undefined) {
    const outcome = await attempt(call);
    expect(outcome.ok, `${label} was allowed`).toBe(false);
    if (!outcome.ok) refusal(s, label, outcome.error, ["CONFLICT/TRANSITION_NOT_ALLOWED"]);
    return;
  }
  if (r === "repeat") {
    const outcome = await attempt(call);
    expect(outcome.ok, `${label}: said twice is a no-op`).toBe(true);
    if (outcome.ok) observe(s, tx, outcome.value, [tx.status]);
    return;
  }
  // Reversals need the money back from the wallet that got it.
  let reversalBlocked = false;
  if (event === "REFUND" || event === "CHARGEBACK") {
    const need = reversalNeeds(tx);
    if (need) reversalBlocked = available(s, need[0], need[1]) < need[2];
  }
  // Approving a move books it: the wallet needs amount + fee (a trade: amount) at that moment.
  let approveBlocked = false;
  if (event === "APPROVE" && (tx.kind === "TRANSFER" || tx.kind === "PAYMENT" || tx.kind === "TRADE"))
    approveBlocked =
      available(s, tx.user, tx.currency) < (tx.kind === "TRADE" ? tx.amount : tx.amount + tx.fee);
  let expected: Status[] = [r.to];
  if (event === "APPROVE" && tx.kind === "CARD") expected = chargeOutcomes(s, tx.card ?? "approved", crashed);
  if (event === "APPROVE" && tx.kind === "BANK") expected = ["AWAITING_PAYMENT"];
  if (event === "APPROVE" && tx.kind === "WITHDRAWAL") expected = payoutOutcomes(s, crashed, tx.payoutCard);
  const inFlightBefore = r.guarded ? await callInFlight(s, tx.id) : false;
  const outcome = await attempt(() => withCrash(s, crashed, tx.id, call));
  if (!outcome.ok) {
    if (outcome.error.code === "PROVIDER_CALL_IN_FLIGHT") {
      expect(r.guarded && inFlightBefore, `${label}: 409 in flight without a call in flight`).toBe(true);
      expect(outcome.error.details?.retryable).toBe(true);
    } else if (outcome.error.code === "REVERSAL_REFUSED") {
      expect(reversalBlocked, `${label}: reversal refused though the wallet has the money`).toBe(true);
    } else if (outcome.error.code === "INSUFFICIENT_FUNDS") {
      expect(approveBlocked, `${label}: approval refused though the wallet has the money`).toBe(true);
    }
    refusal(s, label, outcome.error, [
      "CONFLICT/PROVIDER_CALL_IN_FLIGHT",
      "CONFLICT/REVERSAL_REFUSED",
      "PAYMENT_FAILED/INSUFFICIENT_FUNDS",
    ]);
    observe(s, tx, await t.services.transactions.get(s.clientId, tx.id), [tx.status]);
    return;
  }
  expect(inFlightBefore, `${label}: allowed while a provider call was in flight`).toBe(false);
  expect(reversalBlocked, `${label}: reversal booked beyond the wallet's money`).toBe(false);
  expect(approveBlocked, `${label}: approval booked beyond the wallet's money`).toBe(false);
  observe(s, tx, outcome.value, expected);
}

/**
 * A new card deposit or withdrawal while a recovery round runs: the request's own run of the step
 * and the recovery loop may both reach for it; one performs it, the other leaves it alone.
 */
async function rushCommand(s: Sequence, c: Extract<Command, { k: "rush" }>) {
  let d: Debit;
  if (c.what === "card") {
    const u = c.user % (s.users.length - 1);
    let number = s.cards.get(u);
    if (!number) {
      number = approvedCard();
      s.cards.set(u, number);
    }
    const card = number;
    const cents = BigInt(c.amount);
    const tx = newTx(s, "CARD", {
      user: u,
      amount: cents,
      fee: feeOf(s.fees, "DEPOSIT", cents),
      card: "approved",
    });
    d = {
      tx,
      takes: 0n,
      hasWallet: true,
      expected: reviewed(s, "EUR", cents)
        ? ["MANUAL_REVIEW"]
        : [...chargeOutcomes(s, "approved", "none"), "PENDING"],
      call: () =>
        t.services.transactions.deposit({
          clientId: s.clientId,
          userId: s.users[u] ?? "",
          requestId: tx.id,
          amount: money(cents),
          currency: "EUR",
          sourceMethod: {
            paymentMethodType: "CREDIT_CARD",
            cardNumber: card,
            expirationMonth: 12,
            expirationYear: 2031,
          },
        }),
    };
  } else {
    d = prepareWithdrawal(s, c.user, c.amount, false, "none");
    if (!d.expected.includes("MANUAL_REVIEW")) d.expected = [...d.expected, "PENDING"];
  }
  await fastForward(s.clientId);
  const rush: Debit = {
    ...d,
    call: async () => (await Promise.all([d.call(), t.services.steps.runDue(100)]))[0],
  };
  stats.recoveries++;
  await debitCommand(s, rush, "none", true);
  await refreshAll(s);
}

/**
 * Two things happen to one transaction at once (a cancel and the money arriving, a refund and a
 * chargeback, staff approving while the client cancels, the 3-D Secure result and an error…):
 * each either applies or is refused, in some order; the model reads the outcome back.
 */
async function twiceCommand(s: Sequence, c: Extract<Command, { k: "twice" }>) {
  const tx = s.txs[c.pick % Math.max(1, s.txs.length)];
  if (!tx) return;
  const service = t.services.transactions;
  const admin = { kind: "admin" as const, id: "admin" };
  const feedbackOf: Partial<Record<Event, Feedback>> = {
    CANCEL: "CANCELLED",
    FAIL: "ERROR",
    SETTLE: "SETTLED",
    REFUND: "REFUNDED",
    CHARGEBACK: "CHARGED_BACK",
  };
  const calls = c.actions.map((action): (() => Promise<unknown>) => {
    if (action === "FUNDS" && tx.kind === "BANK" && tx.reference) {
      const reference = tx.reference;
      const transferId = `${reference}-${tx.transfers.length + 1}`;
      tx.transfers.push(transferId);
      return () => service.incomingBankTransfer(reference, money(tx.amount), "EUR", transferId);
    }
    if (
      (action === "CHALLENGE_OK" || action === "CHALLENGE_FAIL") &&
      tx.card === "challenge" &&
      tx.reference
    ) {
      const reference = tx.reference;
      tx.challenge = { approved: false, crashed: false, unknown: true };
      return () => service.completeChallenge(reference, action === "CHALLENGE_OK");
    }
    if (action === "APPROVE" || action === "DENY")
      return () => service.decideReview(s.clientId, tx.id, action, admin);
    const feedback = feedbackOf[action as Event] ?? "CANCELLED";
    return () => service.feedback(s.clientId, tx.id, feedback);
  });
  const outcomes = await Promise.all(calls.map((call) => attempt(call)));
  for (const [i, outcome] of outcomes.entries())
    if (!outcome.ok)
      refusal(
        s,
        `${c.actions[i]} on ${tx.kind} ${tx.id} (${tx.status}) at once with ${c.actions[1 - i]}`,
        outcome.error,
        [
          "CONFLICT/TRANSITION_NOT_ALLOWED",
          "CONFLICT/PROVIDER_CALL_IN_FLIGHT",
          "CONFLICT/REVERSAL_REFUSED",
          "PAYMENT_FAILED/INSUFFICIENT_FUNDS",
        ],
      );
  await refreshAll(s);
}

// ——— 1-Click flows (docs/oneclick-api.md) against a real operator server on loopback ———

/**
 * The operator platform's side: each callback is attributed to its flow (authorize, transfer and
 * cancel name the txId, signin its txRefId, verifyuser the user whose flow runs), answered as the
 * flow's fault says or accepted, and counted. `accepted`: transfers the operator credited and told
 * Ferry so in time — the credits a player sees (a slow answer Ferry gave up on is not counted: a
 * real operator credits by txId once, and only this test's count would double it).
 */
interface OperatorView {
  calls: string[];
  accepted: number;
  hits: Partial<Record<OcAction, number>>;
}
const operatorSide = new Map<string, OperatorView>();
/** verifyuser names the user only: the flow of that user now running (flows run one at a time). */
const flowOfUser = new Map<string, string>();
/** The fault each flow's callbacks meet (cleared when the operator is fixed). */
const faultOf = new Map<string, OcFault>();

function viewOf(txId: string): OperatorView {
  let v = operatorSide.get(txId);
  if (!v) {
    v = { calls: [], accepted: 0, hits: {} };
    operatorSide.set(txId, v);
  }
  return v;
}

function operatorBehaviour(action: string, body: Record<string, unknown>): OperatorAnswer {
  const txId =
    action === "signin"
      ? /A(\d+)$/.exec(String(body.txRefId ?? ""))?.[1]
      : action === "verifyuser"
        ? flowOfUser.get(String(body.userId))
        : String(body.txId ?? "");
  const personUser = action === "signin" ? `op-${String(body.personid)}` : undefined;
  const ok = (): OperatorAnswer => {
    const answer = accept(action, body);
    if (personUser && answer.body && typeof answer.body === "object")
      return { body: { ...(answer.body as object), userId: personUser } };
    return answer;
  };
  if (!txId) return ok();
  const view = viewOf(txId);
  view.calls.push(action);
  const fault = faultOf.get(txId);
  if (fault && fault.action === action) {
    const hits = view.hits[fault.action] ?? 0;
    if (fault.times === "always" || hits < fault.times) {
      view.hits[fault.action] = hits + 1;
      switch (fault.kind) {
        case "http500":
          return { status: 500, body: { error: "boom" } };
        case "notjson":
          return { body: "<html>oops</html>" };
        case "refuse":
          return {
            body: { success: false, userId: body.userId, errCode: "E42", errMsg: "refused by the operator" },
          };
        case "slow":
        case "lose": // the operator acts, its answer never reaches Ferry in time
          return { ...ok(), delayMs: OC_SLOW_MS };
      }
    }
  }
  if (action === "transfer") view.accepted++;
  return ok();
}

interface ModelFlow {
  txId: string;
  session: string;
  person: number;
  amount: bigint;
  fee: bigint;
  /** Status code and name as the model predicts them. */
  code: number;
  name: string;
  /** The operator callbacks this flow must have caused, in order. */
  calls: string[];
  /** The kinds of its steps left FAILED (for staff). */
  failed: string[];
  /** Staff retries (step.retried audit rows). */
  retries: number;
  /** Paid by the provider: amount − fee on the operator's settlement account. */
  booked: boolean;
  /** Transfers the operator accepted in time. */
  transferred: number;
  /** Whether the provider paid without Ferry hearing it (a lost answer, the step FAILED). */
  paidUnheard: boolean;
  /** What the model has already let the fault do, per action (the operator's own count must agree). */
  hits: Partial<Record<OcAction, number>>;
}

const OC = {
  SUCCESS: [0, "SUCCESS"],
  PUV: [203, "PROCESSING_USER_VERIFICATION"],
  PUA: [204, "PROCESSING_USER_AUTHORISATION"],
  MERCHANT: [201, "PROCESSING_MERCHANT"],
  REVIEW: [350, "WAITING_MANUAL_REVIEW"],
  READ_TIMEOUT: [400, "READ_TIMEOUT"],
  INCONSISTENT: [402, "INCONSISTENT_TRANSACTION"],
  UNKNOWN: [405, "UNKNOWN_RESPONSE"],
  FRAUD: [503, "FRAUD"],
  NO_FUNDS: [504, "NO_FUNDS"],
  NOT_AUTHENTICATED: [509, "NOT_AUTHENTICATED"],
  INVALID: [510, "INVALID_RESPONSE"],
  NOT_AUTHORIZED: [513, "NOT_AUTHORIZED"],
  OUT_OF_SERVICE: [520, "MERCHANT_OUT_OF_SERVICE"],
  CANCELLED_BY_USER: [600, "CANCELLED_BY_USER"],
} as const satisfies Record<string, readonly [number, string]>;
type OcStatus = (typeof OC)[keyof typeof OC];
const isInconsistent = (f: ModelFlow) => f.code >= 400 && f.code < 500;

/** Ferry's 1-Click settings for this test app: short timeouts and backoffs keep faults cheap. */
const OC_CALLBACK_ATTEMPTS = 3;
const OC_TRANSFER_ATTEMPTS = 4;
const OC_PAYMENT_ATTEMPTS = 5;
const OC_TIMEOUT_MS = 300;
const OC_SLOW_MS = 800;
const personId = (p: number) => `1990010100${String(11 + p)}`;

function setOc(f: ModelFlow, status: OcStatus) {
  [f.code, f.name] = status;
}

/**
 * Walks the flow from `from` as Ferry must: each callback answered as its fault says (a refusal
 * ends signin/verifyuser/authorize; anything else is a failed attempt, retried on the same txId
 * until the step's attempts are used up), the quote stage (review sequences hold ≥ 60 USD at 350),
 * the provider's payment (504.00: no funds; injected faults), the transfer. `claimed`: a crashed
 * process had claimed the first step (one attempt used without a call).
 */
function walk(
  s: Sequence,
  f: ModelFlow,
  from: "signin" | "authorize" | "pay" | "transfer",
  claimed: boolean,
) {
  let first = true;
  const attempts = (max: number) => {
    const n = max - (first && claimed ? 1 : 0);
    first = false;
    return n;
  };
  /** "ok", "refused", or the kind of the failure that used up the attempts. */
  const call = (action: Exclude<OcAction, "pay">, max: number): "ok" | "refused" | OcFaultKind => {
    const n = attempts(max);
    const fault = faultOf.get(f.txId);
    const mine = fault?.action === action ? fault : undefined;
    if (mine?.kind === "refuse" && action !== "transfer") {
      f.calls.push(action);
      f.hits[action] = (f.hits[action] ?? 0) + 1;
      return "refused";
    }
    const left = !mine
      ? 0
      : mine.times === "always"
        ? Number.POSITIVE_INFINITY
        : mine.times - (f.hits[action] ?? 0);
    const failures = Math.min(Math.max(left, 0), n);
    f.hits[action] = (f.hits[action] ?? 0) + failures;
    const made = failures === n ? n : failures + 1;
    for (let i = 0; i < made; i++) f.calls.push(action);
    return failures === n && mine ? (mine.kind === "lose" ? "slow" : mine.kind) : "ok";
  };
  const callbackFailed = (kind: OcFaultKind) => (kind === "notjson" ? OC.INVALID : OC.OUT_OF_SERVICE);
  const cancel = () => f.calls.push("cancel");
  let stage = from;
  if (stage === "signin") {
    if (!s.ocKnown.has(f.person)) {
      const r = call("signin", OC_CALLBACK_ATTEMPTS);
      if (r === "refused") return setOc(f, OC.NOT_AUTHENTICATED);
      if (r !== "ok") {
        f.failed.push("OC_SIGNIN");
        return setOc(f, callbackFailed(r));
      }
      s.ocKnown.add(f.person);
    }
    const r = call("verifyuser", OC_CALLBACK_ATTEMPTS);
    if (r === "refused") return setOc(f, OC.NOT_AUTHENTICATED);
    if (r !== "ok") {
      f.failed.push("OC_VERIFYUSER");
      return setOc(f, callbackFailed(r));
    }
    if (reviewed(s, "EUR", f.amount)) return setOc(f, OC.REVIEW);
    stage = "authorize";
  }
  if (stage === "authorize") {
    const r = call("authorize", OC_CALLBACK_ATTEMPTS);
    if (r === "refused") return setOc(f, OC.NOT_AUTHORIZED);
    if (r !== "ok") {
      f.failed.push("OC_AUTHORIZE");
      cancel();
      return setOc(f, callbackFailed(r));
    }
    stage = "pay";
  }
  if (stage === "pay") {
    const fault = faultOf.get(f.txId);
    const n = attempts(OC_PAYMENT_ATTEMPTS);
    if (fault?.action === "pay") {
      // The sandbox bank's gate: the failures this payment meets now (a lost answer: it paid).
      const left = fault.times === "always" ? n : Math.max(0, Math.min(n, fault.times - (f.hits.pay ?? 0)));
      f.hits.pay = (f.hits.pay ?? 0) + left;
      if (left > 0) {
        if (fault.kind === "lose") t.services.sandboxGate.loseAnswers("identity.pay", left);
        else t.services.sandboxGate.failNext("identity.pay", left);
        if (fault.kind === "lose") f.paidUnheard = true;
        stats.faultsInjected += left;
      }
      if (left === n) {
        f.failed.push("OC_PAYMENT");
        return setOc(f, OC.UNKNOWN);
      }
    }
    f.paidUnheard = false;
    if (f.amount === 50_400n) {
      cancel();
      return setOc(f, OC.NO_FUNDS);
    }
    f.booked = true;
    stage = "transfer";
  }
  const r = call("transfer", OC_TRANSFER_ATTEMPTS);
  if (r === "ok") {
    f.transferred++;
    return setOc(f, OC.SUCCESS);
  }
  f.failed.push("OC_TRANSFER");
  return setOc(f, r === "slow" ? OC.READ_TIMEOUT : OC.INCONSISTENT);
}

async function ensureOneClick(s: Sequence) {
  if (s.oc) return s.oc;
  const patched = await t.app.inject({
    method: "PATCH",
    url: `/admin/clients/${s.clientId}`,
    headers: t.adminAuth,
    payload: {
      oneClick: {
        redirectUris: [REDIRECT_URI],
        callbackUrl: `${operator.url}/api/{action}`,
        callbackAuth: { type: "basic", ...OPERATOR_AUTH },
      },
    },
  });
  expect(patched.statusCode, patched.body).toBe(200);
  const made = await t.app.inject({
    method: "POST",
    url: `/admin/clients/${s.clientId}/oauth-secret`,
    headers: t.adminAuth,
  });
  expect(made.statusCode, made.body).toBe(201);
  s.oc = { flows: [] };
  return s.oc;
}

const ocRow = (txId: string) => t.services.oneClick.get(txId);

/** The flow's status as Ferry keeps it, checked against the model's. */
async function expectOc(s: Sequence, f: ModelFlow, what: string) {
  const row = await ocRow(f.txId);
  expect(
    { code: row.status_code, name: row.status_name },
    `1-Click ${f.txId} ${what} in ${s.clientId} (fault ${JSON.stringify(faultOf.get(f.txId) ?? null)}, ops ${operatorSide.get(f.txId)?.calls.join(",")})`,
  ).toEqual({ code: f.code, name: f.name });
}

/** Where the browser is sent now: redirect_uri with a code (success, or the deposit in review) or with the error. */
async function expectBrowser(s: Sequence, f: ModelFlow) {
  const res = await t.app.inject({ method: "GET", url: `/oauth/wait/${f.session}` });
  expect(res.statusCode, `${f.txId}: ${res.body.slice(0, 200)}`).toBe(302);
  const back = new URL(String(res.headers.location));
  expect(back.origin + back.pathname).toBe(REDIRECT_URI);
  if (f.code === 0 || f.code === 350)
    expect(back.searchParams.get("code"), `${f.txId} code`).toMatch(/^[\w-]{43}$/);
  else
    expect(back.searchParams.get("error_description"), `${f.txId} in ${s.clientId}`).toBe(
      statusNameOf(f.code).toLowerCase(),
    );
}

/** Runs the client's steps to the end (time passing), as the recovery loop does: the core's too, read again. */
async function settle(s: Sequence) {
  stats.recoveries++;
  await drain(s);
  await refreshAll(s);
}

/**
 * A 1-Click sign-up and deposit: authorize, the provider page's decision (approve or deny; a crash
 * point after it committed), the callbacks and the payment with the flow's fault, then staff on an
 * INCONSISTENT flow at once (retry from either route once the operator is fixed, or resolve).
 */
async function oneClickCommand(s: Sequence, c: Extract<Command, { k: "oneclick" }>) {
  const oc = await ensureOneClick(s);
  const cents = c.noFunds ? 50_400n : BigInt(c.amount);
  const query = new URLSearchParams({
    client_id: s.clientId,
    redirect_uri: REDIRECT_URI,
    response_type: "code",
    state: "st",
    scope: "default",
    identity_provider: "sandbox-bankid",
    amount: money(cents),
    currency: "EUR",
  });
  const started = await t.app.inject({ method: "GET", url: `/oauth/authorize?${query}` });
  expect(started.statusCode, started.body).toBe(200);
  const answer = started.json();
  expect(answer.success, started.body).toBe(true);
  const path = new URL(answer.redirectOutput.url).pathname;
  const f: ModelFlow = {
    txId: String(answer.txId),
    session: path.split("/").pop() ?? "",
    person: c.person,
    amount: cents,
    fee: feeOf(s.fees, "DEPOSIT", cents),
    code: 300,
    name: "WAITING_IDENTITY_PROVIDER",
    calls: [],
    failed: [],
    retries: 0,
    booked: false,
    transferred: 0,
    paidUnheard: false,
    hits: {},
  };
  oc.flows.push(f);
  stats.ocFlows++;
  expect(BigInt((await ocRow(f.txId)).fee), `1-Click ${f.txId} fee`).toBe(f.fee);
  if (c.fault) faultOf.set(f.txId, c.fault);
  flowOfUser.set(`op-${personId(c.person)}`, f.txId);

  if (c.deny) setOc(f, OC.CANCELLED_BY_USER);
  else walk(s, f, "signin", c.crash === "claimed");
  const post = () =>
    t.app.inject({
      method: "POST",
      url: path,
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: new URLSearchParams({
        decision: c.deny ? "deny" : "approve",
        personid: personId(c.person),
        csrf: tokenFor(t, path),
      }).toString(),
    });
  // Racing a recovery round: the page's request and the claim loop may both reach for a step; one
  // performs it (the operator hears each callback as the model says, never twice).
  const racing = c.race && c.crash === "none";
  if (racing) {
    await fastForward(s.clientId);
    stats.recoveries++;
  }
  const decided = racing
    ? (await Promise.all([post(), t.services.steps.runDue(100)]))[0]
    : await withCrash(s, c.deny ? "none" : c.crash, `oc-${f.txId}`, post);
  expect(decided.statusCode, decided.body).toBe(302);
  if (c.crash !== "none" && !c.deny) {
    // The process died with the decision committed: the flow waits at 203 for its first callback.
    const row = await ocRow(f.txId);
    expect([row.status_code, row.status_name], `1-Click ${f.txId} after a crash`).toEqual([...OC.PUV]);
    expect(String(decided.headers.location)).toContain(`/oauth/wait/${f.session}`);
  }
  await settle(s);
  await expectOc(s, f, "after the decision");
  await expectBrowser(s, f);
  if (f.code === 350 && c.review !== "none") await ocStaffOn(s, f, c.review, true, c.crash);
  if (isInconsistent(f) && c.staff !== "none") await ocStaffOn(s, f, c.staff, true, "none");
}

/** Staff on a flow: review decisions, retry from either route, resolve — or the 409 where they do not apply. */
async function ocStaffOn(
  s: Sequence,
  f: ModelFlow,
  what: "APPROVE" | "DENY" | "steps" | "oneclick" | "resolve",
  fixed: boolean,
  crashed: Crash,
) {
  const base = `/admin/clients/${s.clientId}/oneclick/transactions/${f.txId}`;
  const label = `${what} on 1-Click ${f.txId} (${f.code} ${f.name}) in ${s.clientId}`;
  const post = (url: string, payload?: unknown) =>
    t.app.inject({ method: "POST", url, headers: t.adminAuth, ...(payload ? { payload } : {}) });
  const failedStep = async (kind?: string) =>
    db()
      .selectFrom("steps")
      .select(["id", "kind"])
      .where("client_id", "=", s.clientId)
      .where("process_id", "=", `oc-${f.txId}`)
      .where("status", "=", "FAILED")
      .$if(kind !== undefined, (q) => q.where("kind", "=", kind ?? ""))
      .executeTakeFirst();
  const refused = async (
    res: { statusCode: number; body: string; json(): { message?: string } },
    why: RegExp,
  ) => {
    expect(res.statusCode, `${label}: ${res.body}`).toBe(409);
    expect(res.json().message, label).toMatch(why);
    bump(stats.refused, `OC_${what}`);
    await expectOc(s, f, `after a refused ${what}`);
  };

  if (what === "APPROVE" || what === "DENY") {
    if (f.code !== 350)
      return refused(
        await post(`${base}/review`, { decision: what, note: "checked by the model" }),
        /is not waiting for review/,
      );
    if (what === "DENY") setOc(f, OC.FRAUD);
    else walk(s, f, "authorize", crashed === "claimed");
    const res = await withCrash(s, what === "APPROVE" ? crashed : "none", `oc-${f.txId}`, () =>
      post(`${base}/review`, { decision: what, note: "checked by the model" }),
    );
    expect(res.statusCode, `${label}: ${res.body}`).toBe(200);
    if (what === "APPROVE" && crashed !== "none") expect(res.json().statusCode, label).toBe(OC.PUA[0]);
    if (what === "DENY") expect(res.json().statusCode, label).toBe(OC.FRAUD[0]);
    bump(stats.ocStaff, what);
    await settle(s);
    return expectOc(s, f, `after ${what}`);
  }

  if (what === "resolve") {
    if (f.code === 400 || f.code === 402) {
      // "Not executed" is refused: the deposit was paid, the operator must take it.
      const step = await failedStep("OC_TRANSFER");
      expect(step, label).toBeDefined();
      const no = await post(`/admin/steps/${step?.id}/resolve`, {
        outcome: "NOT_EXECUTED",
        note: "never credited",
      });
      expect(no.statusCode, `${label}: ${no.body}`).toBe(409);
      expect(no.json().message, label).toMatch(/the operator must accept the transfer/);
      const res = await post(`${base}/resolve`, { note: "the operator credited it by hand" });
      expect(res.statusCode, `${label}: ${res.body}`).toBe(200);
      f.failed = f.failed.filter((k) => k !== "OC_TRANSFER");
      setOc(f, OC.SUCCESS);
      bump(stats.ocStaff, what);
      return expectOc(s, f, "after resolve");
    }
    // A payment without an answer is retried, never resolved; anything else is not INCONSISTENT.
    return refused(
      await post(`${base}/resolve`, { note: "the operator credited it by hand" }),
      f.code === 405 ? /outcome is unknown: retry it/ : /is not INCONSISTENT/,
    );
  }

  // Retry, from the 1-Click staff route or from /admin/steps/{id}/retry: one path.
  if (isInconsistent(f)) {
    const kind = f.code === 405 ? "OC_PAYMENT" : "OC_TRANSFER";
    const step = await failedStep(kind);
    expect(step, label).toBeDefined();
    if (fixed) faultOf.delete(f.txId);
    f.failed = f.failed.filter((k) => k !== kind);
    f.retries++;
    walk(s, f, kind === "OC_PAYMENT" ? "pay" : "transfer", crashed === "claimed");
    const res = await withCrash(s, crashed, `oc-${f.txId}`, () =>
      what === "steps" ? post(`/admin/steps/${step?.id}/retry`) : post(`${base}/retry`),
    );
    expect(res.statusCode, `${label}: ${res.body}`).toBe(200);
    if (crashed !== "none" && what === "oneclick")
      expect(res.json().statusCode, label).toBe(kind === "OC_PAYMENT" ? 200 : OC.MERCHANT[0]);
    bump(stats.ocStaff, `retry of ${kind} via ${what === "steps" ? "/admin/steps" : "1-Click"}`);
    await settle(s);
    return expectOc(s, f, `after a retry (${what}${fixed ? ", fixed" : ""})`);
  }
  const step = await failedStep();
  if (what === "steps" && step) {
    // A step whose failure ended the flow (signin, verifyuser, authorize) cannot be retried.
    const res = await post(`/admin/steps/${step.id}/retry`);
    await refused(res, /ended with this step's failure/);
    expect((await failedStep(step.kind))?.id).toBe(step.id);
    return;
  }
  return refused(await post(`${base}/retry`), /is not INCONSISTENT/);
}

async function ocStaffCommand(s: Sequence, c: Extract<Command, { k: "ocStaff" }>) {
  const flows = s.oc?.flows ?? [];
  if (flows.length === 0) return;
  // Mostly a flow the action applies to (else refusals crowd out the rest), sometimes any.
  const fits = (f: ModelFlow) =>
    c.what === "APPROVE" || c.what === "DENY"
      ? f.code === 350
      : c.what === "resolve"
        ? f.code === 400 || f.code === 402
        : isInconsistent(f);
  const fitting = flows.filter(fits);
  const f =
    c.pick % 4 !== 0 && fitting.length > 0 ? fitting[c.pick % fitting.length] : flows[c.pick % flows.length];
  if (f) await ocStaffOn(s, f, c.what, c.fixed, c.crash);
}

/** After the sequence: every flow as the model says, the operator's view, the steps, the audit, the money. */
async function verifyOneClick(s: Sequence, failed: { kind: string; process_id: string }[]) {
  const flows = s.oc?.flows ?? [];
  const rows = await db()
    .selectFrom("oneclick_transactions")
    .select(["tx_id", "status_code", "status_name"])
    .where("client_id", "=", s.clientId)
    .execute();
  expect(rows.length).toBe(flows.length);
  // No flow left processing (2xx) or waiting for the provider's page.
  expect(
    rows.filter((r) => r.status_code >= 100 && r.status_code < 350),
    `1-Click flows still processing in ${s.clientId}`,
  ).toEqual([]);
  let settlement = 0n;
  for (const f of flows) {
    bump(stats.ocFinal, f.name);
    await expectOc(s, f, "at the end");
    const label = `1-Click ${f.txId} (${f.name}) in ${s.clientId}`;
    const op = operatorSide.get(f.txId) ?? { calls: [], accepted: 0, hits: {} };
    expect(op.calls, `${label}: the operator's callbacks`).toEqual(f.calls);
    expect(op.accepted, `${label}: transfers credited at the operator`).toBe(f.transferred);
    expect(f.transferred, `${label}: credited more than once`).toBeLessThanOrEqual(1);
    if (f.code === 0 && f.transferred === 0)
      expect(f.booked, `${label}: SUCCESS without a transfer is a staff resolution of a paid one`).toBe(true);
    const failedKinds = failed
      .filter((x) => x.process_id === `oc-${f.txId}`)
      .map((x) => x.kind)
      .sort();
    expect(failedKinds, `${label}: FAILED steps`).toEqual([...f.failed].sort());
    const retried = await db()
      .selectFrom("audit_log")
      .select("id")
      .where("client_id", "=", s.clientId)
      .where("action", "=", "step.retried")
      .where("entity_id", "=", `oc-${f.txId}`)
      .execute();
    expect(retried.length, `${label}: step.retried audit rows`).toBe(f.retries);
    if (f.booked) settlement += f.amount - f.fee;
  }
  // The operator's money at Ferry: every paid deposit, net of its fee (SUCCESS, or paid and
  // INCONSISTENT), on the client's settlement account — the 1-Click deposits' part of it (the core
  // books a client-reported reversal there too).
  const settlementId =
    flows.length > 0 && (await ledger.findCurrency(db(), s.clientId, "EUR"))
      ? await ledger.systemAccountId(db(), { clientId: s.clientId, currency: "EUR", kind: "SETTLEMENT" })
      : undefined;
  const legs = await db()
    .selectFrom("ledger_transfers")
    .select(["operation_id", "debit_account_id", "credit_account_id", "amount", "status"])
    .where("client_id", "=", s.clientId)
    .where("operation_id", "like", "txn:oc-%")
    .execute();
  let booked = 0n;
  for (const f of flows) {
    const op = `txn:oc-${f.txId}`;
    const mine = legs.filter((l) => l.operation_id === op || l.operation_id.startsWith(`${op}:`));
    const net = mine.reduce(
      (sum, l) =>
        sum +
        (l.credit_account_id === settlementId ? BigInt(l.amount) : 0n) -
        (l.debit_account_id === settlementId ? BigInt(l.amount) : 0n),
      0n,
    );
    const label = `1-Click ${f.txId} (${f.name}) in ${s.clientId}`;
    expect(net, `${label}: on the settlement account`).toBe(f.booked ? f.amount - f.fee : 0n);
    expect(
      mine.reduce((sum, l) => sum + BigInt(l.amount), 0n),
      `${label}: booked in all (deposit and fee)`,
    ).toBe(f.booked ? f.amount : 0n);
    expect(mine.filter((l) => l.status !== "POSTED")).toEqual([]);
    booked += net;
  }
  expect(booked, `the operator's settlement account in ${s.clientId}`).toBe(settlement);
}

// ——— the Wallet API's requests that wait for staff, and Pay-in purchases ———

/**
 * A sequence's Wallet API client (docs/wallet-api.md), set up at its first Wallet API or Pay-in
 * command: an administrator, USD with an issuer and a bank, two accountants, a customer with a USD
 * account, and for Pay-in a customer at KYC_1 with a card. Its commands run with the sandbox gate
 * off and the client's steps run to the end at once, so the core's injected faults stay the core's.
 */
interface WalletRequest {
  rid: string;
  requestId: string;
  cents: bigint;
  state: "pending" | "accepted" | "declined";
}
interface PayinOffer {
  offerId: string;
  cents: bigint;
  /** The USDC the offer promises, in micro-units. */
  micro: bigint;
}
interface WalletWorld {
  clientId: string;
  admin: WalletCaller;
  accountants: [WalletCaller, WalletCaller];
  bankId: string;
  customer: WalletCaller;
  coin: string;
  /** Cents recorded by staff (top-ups). */
  toppedUp: bigint;
  requests: WalletRequest[];
  payin?: { customer: WalletCaller; cardId: string; offers: PayinOffer[] };
}

const wStats = {
  topUps: 0,
  requests: 0,
  races: 0,
  decisions: {} as Record<string, number>,
  purchases: 0,
  doublePays: 0,
};
const W_BANK = { fullName: "Anna Example", iban: "DE89370400440532013000", bic: "COBADEFFXXX" };

async function ensureWallet(s: Sequence): Promise<WalletWorld> {
  if (s.w) return s.w;
  const { clientId, admin } = await walletClient(t, {
    settings: { ...NO_KYC_LIMITS, monitoring: { velocityCount: 1000 } },
  });
  const { bankId } = await setUpUsd(admin);
  const accountants: [WalletCaller, WalletCaller] = [
    await staff(t, admin, "accountant"),
    await staff(t, admin, "accountant"),
  ];
  const customer = await registerCustomer(t, clientId);
  const coin = await openCoin(customer);
  s.w = { clientId, admin, accountants, bankId, customer, coin, toppedUp: 0n, requests: [] };
  await withGateOff(s.w, () => wTopUp(s, 10_000));
  return s.w;
}

async function ensurePayin(s: Sequence) {
  const w = await ensureWallet(s);
  if (w.payin) return w.payin;
  const customer = await registerCustomer(t, w.clientId);
  // KYC_1 (tier 2) as the sandbox KYC would assess it (test/payin.test.ts polls for it).
  await db()
    .updateTable("users")
    .set({ tier: 2 } as never)
    .where("client_id", "=", w.clientId)
    .where("id", "=", customer.userId)
    .execute();
  const added = await customer.call("POST", "/v3/payin/card", {
    cardNumber: approvedCard(),
    cardHolder: "Marie Curie",
    cardExpirationMonth: 12,
    cardExpirationYear: 2031,
    billingAddress: { address: "12 Rue de Rivoli", city: "Paris", countryCode: "FR", zip: "75001" },
  });
  expect(added.statusCode, added.body).toBe(200);
  w.payin = { customer, cardId: added.json().cardId, offers: [] };
  return w.payin;
}

/** Runs `fn` with the gate off, then the Wallet client's steps until none is open. */
async function withGateOff<T>(w: WalletWorld, fn: () => Promise<T>): Promise<T> {
  gateOff = true;
  try {
    const value = await fn();
    await drainWallet(w);
    return value;
  } finally {
    gateOff = false;
  }
}

/** Runs the Wallet client's own steps (by id: never another client's), time passing, until none is PENDING. */
async function drainWallet(w: WalletWorld) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    await fastForward(w.clientId);
    const open = await db()
      .selectFrom("steps")
      .select(["id", "kind"])
      .where("client_id", "=", w.clientId)
      .where("status", "=", "PENDING")
      .execute();
    if (open.length === 0) return;
    if (Date.now() > deadline) throw new Error(`steps still open in ${w.clientId}: ${JSON.stringify(open)}`);
    for (const { id } of open) await t.services.steps.run(id);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Cents held or paid out by requests: pending ones hold, accepted ones are paid. */
const wHeld = (w: WalletWorld) =>
  w.requests.filter((r) => r.state === "pending").reduce((sum, r) => sum + r.cents, 0n);
const wPaid = (w: WalletWorld) =>
  w.requests.filter((r) => r.state === "accepted").reduce((sum, r) => sum + r.cents, 0n);
const wAvailable = (w: WalletWorld) => w.toppedUp - wHeld(w) - wPaid(w);

async function wTopUp(s: Sequence, cents: number) {
  const w = s.w as WalletWorld;
  const answer = await w.accountants[0].call("POST", "/api/v1/bank-top-ups/with-bank", {
    coinSerial: w.coin,
    amount: money(cents),
    bankId: w.bankId,
    iban: W_BANK.iban,
    fullName: W_BANK.fullName,
  });
  expect(answer.statusCode, `staff top-up: ${answer.body}`).toBe(200);
  expect(answer.json().status).toBe("processed");
  w.toppedUp += BigInt(cents);
  wStats.topUps++;
}

/** One accountant's decision, or two at once: the answers as the model predicts; the request's new state. */
async function wDecide(w: WalletRequest, world: WalletWorld, verbs: WVerb[]) {
  if (verbs.length === 0) return;
  const answers = await Promise.all(
    verbs.map((verb, i) =>
      world.accountants[i === 0 ? 0 : 1].call("POST", `/api/v1/bank-withdrawals/${w.rid}/${verb}`),
    ),
  );
  const what = `${verbs.join("/")} of ${w.rid} (${w.state}) in ${world.clientId}: ${answers.map((a) => `${a.statusCode} ${a.body}`).join(" | ")}`;
  const done: Record<WVerb, "accepted" | "declined"> = { accept: "accepted", decline: "declined" };
  const codes = answers.map((a) => a.statusCode);
  if (w.state !== "pending") {
    // Decided already: the same decision answers the request as it is; the other is a 409.
    verbs.forEach((verb, i) => {
      expect(codes[i], what).toBe(done[verb] === w.state ? 200 : 409);
    });
  } else if (verbs.length === 2 && verbs[0] !== verbs[1]) {
    // Two different decisions at once: exactly one counts.
    wStats.races++;
    expect([...codes].sort(), what).toEqual([200, 409]);
    const winner = verbs[codes.indexOf(200)] as WVerb;
    w.state = done[winner];
  } else {
    if (verbs.length === 2) wStats.races++;
    for (const code of codes) expect(code, what).toBe(200);
    w.state = done[verbs[0] as WVerb];
  }
  for (const [i, a] of answers.entries()) {
    if (a.statusCode === 409) {
      expect(a.json().type, what).toBe("CONFLICT");
      bump(wStats.decisions, "409");
    } else {
      // Two accepts at once: both answer "processed", the one that lost the race too (it reads the
      // request accepted with its payout not yet sent).
      expect(a.json().status, what).toBe(w.state === "accepted" ? "processed" : "declined");
      bump(wStats.decisions, verbs[i] as string);
    }
  }
}

async function wWithdrawCommand(s: Sequence, c: Extract<Command, { k: "wWithdraw" }>) {
  const w = await ensureWallet(s);
  await withGateOff(w, async () => {
    const cents = BigInt(c.amount);
    const asked = await w.customer.call("POST", "/api/v1/bank-withdrawals/with-bank", {
      coinSerial: w.coin,
      amount: money(cents),
      bankDetails: W_BANK,
    });
    if (cents > wAvailable(w)) {
      expect(asked.statusCode, `withdrawal of ${money(cents)} > ${money(wAvailable(w))}: ${asked.body}`).toBe(
        402,
      );
      bump(stats.refused, "WALLET_INSUFFICIENT_FUNDS");
      return;
    }
    expect(asked.statusCode, asked.body).toBe(200);
    expect(asked.json().status).toBe("pending");
    const request: WalletRequest = {
      rid: String(asked.json().requestIdentifier),
      requestId: asked.json().process.id,
      cents,
      state: "pending",
    };
    w.requests.push(request);
    wStats.requests++;
    await wDecide(request, w, c.decide);
  });
}

async function wDecideCommand(s: Sequence, c: Extract<Command, { k: "wDecide" }>) {
  const w = await ensureWallet(s);
  const pending = w.requests.filter((r) => r.state === "pending");
  // Mostly a request still waiting, sometimes any (decided already: the same answer or a 409).
  const request =
    c.pick % 4 !== 0 && pending.length > 0
      ? pending[c.pick % pending.length]
      : w.requests[c.pick % Math.max(1, w.requests.length)];
  if (!request) return;
  await withGateOff(w, () => wDecide(request, w, c.decide));
}

async function piPayCommand(s: Sequence, c: Extract<Command, { k: "piPay" }>) {
  const p = await ensurePayin(s);
  const w = s.w as WalletWorld;
  await withGateOff(w, async () => {
    const made = await p.customer.call("POST", "/v3/payin/offer", {
      cardId: p.cardId,
      fromCurrency: "EUR",
      toCurrency: "USDC",
      amount: money(c.amount),
      operation: "PAYIN",
    });
    expect(made.statusCode, made.body).toBe(200);
    const offer = made.json();
    const cents = BigInt(c.amount);
    expect(offer).toMatchObject({ status: "OPEN" });
    // Amounts are JSON numbers written from the exact decimals: their digits, checked in the text.
    expect(made.body).toContain(`"amount":${money(cents)},`);
    // The fee: 1.5 % of the amount (to the cent); the rest at 1.08 USD/EUR, 1.00 USD/USDC, exact in micro-units.
    const fee = BigInt(Math.round(Number(offer.feeInfo[0].value) * 100));
    expect(
      Number(fee - (cents * 15n) / 1000n),
      `fee ${offer.feeInfo[0].value} of ${money(cents)}`,
    ).toBeLessThanOrEqual(1);
    const micro = (cents - fee) * 10_800n;
    const toAmount = `${micro / 1_000_000n}.${String(micro % 1_000_000n).padStart(6, "0")}`;
    expect(made.body).toContain(`"toAmount":${toAmount},`);
    const charges = await chargesOf(w.clientId);
    const paid = await Promise.all(
      Array.from({ length: c.twice ? 2 : 1 }, () =>
        p.customer.call("POST", `/v3/payin/pay/${offer.offerId}`, { cardCVV: "123" }),
      ),
    );
    // The payment that claimed the offer answers Approved; one at the same moment finds it Pending (in flight).
    for (const a of paid) {
      expect(a.statusCode, a.body).toBe(200);
      expect(a.json(), a.body).toMatchObject({ transactionAmount: money(cents) });
      expect(["Approved", "Pending"], a.body).toContain(a.json().transactionStatus);
    }
    expect(
      paid.some((a) => a.json().transactionStatus === "Approved"),
      paid.map((a) => a.body).join(" | "),
    ).toBe(true);
    const status = await p.customer.call("GET", `/v3/payin/pay-callback?offerId=${offer.offerId}`);
    expect(status.json(), status.body).toMatchObject({ status: "SUCCESS" });
    expect(status.body).toContain(`"amount":${money(cents)},`);
    expect(status.body).toContain(`"cryptoAmount":${toAmount},`);
    if (c.twice) wStats.doublePays++;
    expect(
      await chargesOf(w.clientId),
      `charges after paying ${offer.offerId}${c.twice ? " twice at once" : ""}`,
    ).toBe(charges + 1);
    p.offers.push({ offerId: offer.offerId, cents, micro });
    wStats.purchases++;
  });
}

async function piAgainCommand(s: Sequence, c: Extract<Command, { k: "piAgain" }>) {
  const p = await ensurePayin(s);
  const w = s.w as WalletWorld;
  const offer = p.offers[c.pick % Math.max(1, p.offers.length)];
  if (!offer) return;
  await withGateOff(w, async () => {
    const charges = await chargesOf(w.clientId);
    const again = await p.customer.call("POST", `/v3/payin/pay/${offer.offerId}`, { cardCVV: "123" });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json().transactionStatus, again.body).toBe("Approved");
    expect(await chargesOf(w.clientId)).toBe(charges);
  });
}

const chargesOf = async (clientId: string) =>
  (
    await db()
      .selectFrom("sandbox_acquirer_charges")
      .select("outcome")
      .where("idempotency_key", "like", `${clientId}:%`)
      .execute()
  ).length;

/** After each sequence that used them: the same checks as the core's, for the Wallet client. */
async function verifyWallet(s: Sequence) {
  const w = s.w;
  if (!w) return;
  await withGateOff(w, async () => {});
  const invariants = await ledger.checkInvariants(db(), w.clientId);
  expect(invariants.ok, JSON.stringify(invariants)).toBe(true);
  const requests = w.requests.map((r) => `${r.rid} ${money(r.cents)} ${r.state}`).join("; ");
  expect(await balances(w.customer, w.coin), `${w.clientId}: ${requests}`).toEqual({
    amount: money(w.toppedUp - wPaid(w)),
    available: money(wAvailable(w)),
    held: money(wHeld(w)),
  });
  if (w.payin) {
    const coins = (await w.payin.customer.call("GET", "/api/v1/coins")).json().coins as {
      currency: { code: string };
      amount: string;
    }[];
    const micro = w.payin.offers.reduce((sum, o) => sum + o.micro, 0n);
    const usdc = coins.find((x) => x.currency.code === "USDC");
    expect(usdc?.amount ?? "0.000000", `Pay-in USDC in ${w.clientId}`).toBe(
      `${micro / 1_000_000n}.${String(micro % 1_000_000n).padStart(6, "0")}`,
    );
    expect(await chargesOf(w.clientId)).toBe(w.payin.offers.length);
  }
  const steps = await db()
    .selectFrom("steps")
    .select(["kind", "status", "process_id"])
    .where("client_id", "=", w.clientId)
    .where("status", "in", ["PENDING", "FAILED"])
    .execute();
  expect(steps, `open or failed steps in ${w.clientId}`).toEqual([]);
  const report = await t.services.reconcile(w.clientId);
  expect(report.mismatches, `reconciliation of ${w.clientId}`).toEqual([]);
  // A pending hold only on a request still waiting for an accountant.
  const holds = await db()
    .selectFrom("ledger_transfers")
    .select(["id"])
    .where("client_id", "=", w.clientId)
    .where("type", "=", "PENDING")
    .where("status", "=", "PENDING")
    .execute();
  const waiting = new Set(w.requests.filter((r) => r.state === "pending").map((r) => r.requestId));
  for (const { id } of holds)
    expect(waiting.has(id.replace(/:hold(-fee)?$/, "")), `hold ${id} in ${w.clientId}: ${requests}`).toBe(
      true,
    );
}

async function execute(s: Sequence, c: Command) {
  const service = t.services.transactions;
  // Mostly a transaction the event applies to (else refusals crowd out the rest), sometimes any.
  const anyTx = (p: number, event: Event) => {
    const fitting = s.txs.filter((x) => typeof rule(x.kind, x.status, event) === "object");
    if (p % 4 !== 0 && fitting.length > 0) return fitting[p % fitting.length];
    return s.txs[p % Math.max(1, s.txs.length)];
  };
  switch (c.k) {
    case "card":
      return cardCommand(s, c);
    case "challenge":
      return challengeCommand(s, c);
    case "bank":
      return bankCommand(s, c);
    case "funds":
      return fundsCommand(s, c);
    case "withdraw":
      return debitCommand(s, prepareWithdrawal(s, c.user, c.amount, c.returned, c.crash), c.crash);
    case "cardWithdraw":
      return debitCommand(
        s,
        prepareWithdrawal(s, c.user, c.amount, false, c.crash, c.declined ? "declined" : "approved"),
        c.crash,
      );
    case "transfer":
    case "payment":
    case "trade":
      return debitCommand(s, prepareMove(s, c));
    case "double":
      return doubleCommand(s, c);
    case "held":
      return heldCommand(s, c);
    case "race":
      return raceCommand(s, c);
    case "twice":
      return twiceCommand(s, c);
    case "rush":
      return rushCommand(s, c);
    case "oneclick":
      return oneClickCommand(s, c);
    case "ocStaff":
      return ocStaffCommand(s, c);
    case "wTopUp": {
      const w = await ensureWallet(s);
      return withGateOff(w, () => wTopUp(s, c.amount));
    }
    case "wWithdraw":
      return wWithdrawCommand(s, c);
    case "wDecide":
      return wDecideCommand(s, c);
    case "piPay":
      return piPayCommand(s, c);
    case "piAgain":
      return piAgainCommand(s, c);
    case "cancel": {
      const tx = anyTx(c.pick, "CANCEL");
      if (tx) await eventCommand(s, tx, "CANCEL", "none", () => service.cancel(s.clientId, tx.id));
      return;
    }
    case "feedback": {
      const tx = anyTx(c.pick, feedbackEvent(c.feedback));
      if (tx)
        await eventCommand(s, tx, feedbackEvent(c.feedback), c.crash, () =>
          service.feedback(s.clientId, tx.id, c.feedback),
        );
      return;
    }
    case "review": {
      const tx = anyTx(c.pick, c.decision);
      if (tx)
        await eventCommand(s, tx, c.decision, c.crash, () =>
          service.decideReview(s.clientId, tx.id, c.decision, { kind: "admin", id: "admin" }),
        );
      return;
    }
    case "fault": {
      const times = c.times === "exhaust" ? KIND_OF_OP[c.op].maxAttempts + 2 : c.times;
      if (c.lose) t.services.sandboxGate.loseAnswers(c.op, times);
      else t.services.sandboxGate.failNext(c.op, times);
      s.injected[c.op] += times;
      stats.faultsInjected += times;
      return;
    }
    case "recover":
      stats.recoveries++;
      await fastForward(s.clientId);
      await t.services.steps.runDue(100);
      await refreshAll(s);
      return;
  }
}

/** Runs the claim loop, time passing between rounds, until no step of the client is PENDING. */
async function drain(s: Sequence) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    await fastForward(s.clientId);
    const claimed = await t.services.steps.runDue(100);
    const open = await db()
      .selectFrom("steps")
      .select(["kind", "attempts"])
      .where("client_id", "=", s.clientId)
      .where("status", "=", "PENDING")
      .execute();
    if (open.length === 0) return;
    if (Date.now() > deadline) throw new Error(`steps still open in ${s.clientId}: ${JSON.stringify(open)}`);
    if (claimed === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function setUp(people: number, fees: boolean, review: boolean): Promise<Sequence> {
  const clientId = `mm-${stats.sequences}-${Date.now().toString(36)}`;
  await createClient(db(), {
    id: clientId,
    name: clientId,
    settings: {
      // No velocity reviews (the model does not count them); a low amount threshold in review sequences.
      monitoring: {
        velocityCount: 1000,
        ...(review ? { singleAmountReviewUsd: Number(REVIEW_USD_CENTS / 100n) } : {}),
      },
      ...(fees ? { fees: FEE_SETTINGS } : {}),
    },
  });
  const hasUsd = new Set<number>();
  const users = [...Array.from({ length: people }, (_, i) => `person-${i}`), "shop-1"];
  for (const id of users) {
    const merchant = id === "shop-1";
    await db()
      .transaction()
      .execute((tx) =>
        t.services.users.create(tx, {
          clientId,
          id,
          type: merchant ? "BUSINESS" : "PERSON",
          info: merchant
            ? { businessName: "Corner Shop" }
            : {
                name: { firstName: "Ada", lastName: "Doe" },
                emails: ["ada@example.com"],
                addresses: [{ street: "1 Main St", city: "Berlin", postalCode: "10115", country: "DE" }],
                dateOfBirth: "1990-01-01",
              },
        }),
      );
  }
  await db()
    .updateTable("users")
    .set({ tier: 2, created_at: new Date(Date.now() - 7 * 86_400_000) } as never)
    .where("client_id", "=", clientId)
    .execute();
  const s: Sequence = {
    clientId,
    fees,
    review,
    users,
    txs: [],
    hasUsdWallet: hasUsd,
    ownerOfCard: new Map(),
    cards: new Map(),
    counter: 0,
    injected: Object.fromEntries(OPS.map((op) => [op, 0])) as Record<GatedOperation, number>,
    consumedAtStart: { ...consumed },
    timeoutsAtStart: timeouts,
    claimed: new Map(),
    ocKnown: new Set(),
  };
  if (KNOWN_DEFECTS.has("TWO_DEFAULT_WALLETS")) {
    // Every wallet a sequence can use exists already: two first credits at once cannot open two.
    await t.services.wallets.open(clientId, "shop-1", "EUR");
    for (let u = 0; u < people; u++) await t.services.wallets.open(clientId, users[u] ?? "", "USD");
    for (let u = 0; u < people; u++) hasUsd.add(u);
  }
  // Funding: 200.00 EUR each from the client's issuing account (not a transaction: reconciliation ignores it).
  for (let u = 0; u < people; u++) {
    const wallet = await t.services.wallets.open(clientId, users[u] ?? "", "EUR");
    const issuing = await ledger.openAccount(db(), { clientId, currency: "EUR", kind: "ISSUING" });
    const funded = await inTransaction(db(), (tx) =>
      ledger.applyInTransaction(tx, {
        clientId,
        legs: [
          {
            type: "SINGLE",
            id: `funding-${u}`,
            debitAccountId: issuing.id,
            creditAccountId: wallet.id,
            amount: FUNDING,
            currency: "EUR",
          },
        ],
      }),
    );
    expect(funded.ok).toBe(true);
  }
  return s;
}

async function verify(s: Sequence) {
  await drain(s);
  await refreshAll(s);
  for (const tx of s.txs) bump(stats.final, tx.status);

  // Ledger invariants.
  const invariants = await ledger.checkInvariants(db(), s.clientId);
  expect(invariants.ok, JSON.stringify(invariants)).toBe(true);

  // Every wallet as the model says.
  const model = modelBalances(s);
  for (const [u, userId] of s.users.entries()) {
    const wallets = await t.services.wallets.list(s.clientId, userId);
    for (const currency of ["EUR", "USD"] as const) {
      const found = wallets.filter((w) => w.currency === currency);
      expect(found.length, `${userId} has ${found.length} ${currency} wallets`).toBeLessThanOrEqual(1);
      const figures = found[0] ? accountFigures(found[0]) : { balance: 0n, available: 0n };
      expect(
        { total: figures.balance, available: figures.available },
        `${userId} ${currency} in ${s.clientId}: ${s.txs.map((x) => `${x.id} ${x.kind} ${x.seen.join(">")}`).join("; ")}`,
      ).toEqual(model[u]?.[currency]);
    }
  }

  // Steps: none open; FAILED only where injected failures (and crashed claims) used up the attempts.
  const steps = await db()
    .selectFrom("steps")
    .select(["kind", "status", "attempts", "max_attempts", "last_error", "process_id"])
    .where("client_id", "=", s.clientId)
    .execute();
  expect(steps.filter((x) => x.status === "PENDING")).toEqual([]);
  const failed = steps.filter((x) => x.status === "FAILED");
  stats.stepsFailed += failed.length;
  for (const op of OPS) {
    const { kind } = KIND_OF_OP[op];
    const ofKind = failed.filter((x) => x.kind === kind);
    const hits = consumed[op] - s.consumedAtStart[op];
    const natural = op === "acquirer.charge" ? timeouts - s.timeoutsAtStart : 0;
    const budget = hits + natural + (s.claimed.get(kind) ?? 0);
    const used = ofKind.reduce((sum, x) => sum + Number(x.max_attempts), 0);
    expect(used, `${kind}: ${ofKind.length} FAILED with ${hits} injected failures`).toBeLessThanOrEqual(
      budget,
    );
    for (const x of ofKind) {
      expect(Number(x.attempts)).toBe(Number(x.max_attempts));
      expect(x.last_error ?? "", `${kind} of ${x.process_id} failed for real`).toMatch(
        /injected|AcquirerTimeoutError/,
      );
    }
  }
  expect(
    failed.filter((x) => !x.kind.startsWith("OC_") && !OPS.some((op) => KIND_OF_OP[op].kind === x.kind)),
    "a FAILED step of a kind no fault reaches",
  ).toEqual([]);
  // 1-Click: every flow as the model says (its FAILED steps among it).
  await verifyOneClick(s, failed);

  // Reconciliation: clean, except where a step was left FAILED for staff.
  const report = await t.services.reconcile(s.clientId);
  const failedProcesses = new Set(failed.map((x) => x.process_id));
  expect(
    report.mismatches.filter((m) => !failedProcesses.has(m.requestId)),
    `reconciliation of ${s.clientId}`,
  ).toEqual([]);
  // 1-Click: clean, but for a payment the bank made whose answer never came (405, for staff).
  expect(
    report.mismatches
      .filter((m) => m.requestId.startsWith("oc-"))
      .map((m) => m.requestId)
      .sort(),
    `1-Click reconciliation of ${s.clientId}`,
  ).toEqual(
    (s.oc?.flows ?? [])
      .filter((f) => f.code === 405 && f.paidUnheard)
      .map((f) => `oc-${f.txId}`)
      .sort(),
  );
  expect(report.ok).toBe(report.mismatches.length === 0);

  // The Wallet API's requests and Pay-in's purchases, in their own client.
  await verifyWallet(s);

  // A pending hold only on a withdrawal still in review or in flight.
  const holds = await db()
    .selectFrom("ledger_transfers")
    .select(["id"])
    .where("client_id", "=", s.clientId)
    .where("type", "=", "PENDING")
    .where("status", "=", "PENDING")
    .execute();
  for (const { id } of holds) {
    const requestId = id.replace(/:hold(-fee)?$/, "");
    const tx = s.txs.find((x) => x.id === requestId);
    expect(tx?.kind, `hold ${id}`).toBe("WITHDRAWAL");
    expect(IN_FLIGHT_HOLD, `hold ${id} on a ${tx?.status} withdrawal`).toContain(tx?.status);
  }
}

it("random interleavings of money operations, faults and crashes keep the ledger, the balances and the providers in agreement", async () => {
  await fc.assert(
    fc.asyncProperty(scenario, async ({ people, fees, review, commands: list }) => {
      stats.sequences++;
      t.services.sandboxGate.releaseAll();
      const s = await setUp(people, fees, review);
      let ok = false;
      try {
        for (const c of list) {
          stats.commands++;
          const began = Date.now();
          await execute(s, c);
          if (DEBUG) console.info(`${Date.now() - began} ms ${JSON.stringify(c)}`);
        }
        await verify(s);
        ok = true;
      } finally {
        t.services.sandboxGate.releaseAll();
        Reflect.deleteProperty(t.services.steps, "run");
        // A failed sequence's open steps must not run inside the next one (shrinking replays).
        if (!ok)
          await db()
            .updateTable("steps")
            .set({ status: "CANCELED" })
            .where("client_id", "=", s.clientId)
            .where("status", "=", "PENDING")
            .execute();
      }
    }),
    {
      numRuns: RUNS,
      ...(SEED === undefined ? {} : { seed: SEED }),
      ...(PATH ? { path: PATH } : {}),
      // FERRY_PROPERTY_NO_SHRINK=1: report the first failure as found (shrinking replays sequences for long).
      ...(process.env.FERRY_PROPERTY_NO_SHRINK === "1" ? { endOnFailure: true } : {}),
    },
  );
  const byStatus = Object.entries(stats.final)
    .sort()
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  const refused = Object.entries(stats.refused)
    .sort()
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  console.info(
    `money model: ${stats.sequences} sequences, ${stats.commands} commands; final statuses: ${byStatus}; ` +
      `refused as predicted: ${refused}; ${stats.faultsInjected} faults injected, ` +
      `${Object.values(consumed).reduce((a, b) => a + b, 0)} hit; ${stats.crashes} crashes, ` +
      `${stats.recoveries} recovery rounds; ${stats.stepsFailed} steps FAILED; ` +
      `1-Click: ${stats.ocFlows} flows, staff ${Object.entries(stats.ocStaff)
        .sort()
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}, final ${Object.entries(stats.ocFinal)
        .sort()
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}; Wallet API: ${wStats.topUps} staff top-ups, ${wStats.requests} withdrawal requests, ` +
      `${wStats.races} decided by two at once, answers ${Object.entries(wStats.decisions)
        .sort()
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}; Pay-in: ${wStats.purchases} purchases (${wStats.doublePays} paid twice at once)` +
      (KNOWN_DEFECTS.size > 0
        ? `; known defects tolerated: ${[...KNOWN_DEFECTS]
            .map((d) =>
              d === "TWO_DEFAULT_WALLETS" ? `${d} (wallets opened up front)` : `${d} ${tolerated[d] ?? 0}`,
            )
            .join(", ")}`
        : ""),
  );
}, 600_000);
