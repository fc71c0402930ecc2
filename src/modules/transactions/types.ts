import type { Selectable } from "kysely";
import type { TransactionsTable } from "../../db/schema.ts";
import { DomainError } from "../../lib/errors.ts";
import type { MonitoringResult } from "../monitoring/rules.ts";
import type { UserInfo } from "../users/schemas.ts";

export const TRANSACTION_STATUSES = [
  "PENDING",
  "MANUAL_REVIEW",
  "REFUSED",
  "AWAITING_PAYMENT",
  "AUTHORIZED",
  "CAPTURED",
  "SETTLED",
  "CANCELED",
  "REFUNDED",
  "CHARGED_BACK",
  "ERROR",
] as const;
export type TransactionStatus = (typeof TRANSACTION_STATUSES)[number];
export type TransactionType = "DEPOSIT" | "WITHDRAWAL" | "TRANSFER" | "TRADE" | "PAYMENT";

/** A transaction as the faces see it. */
export interface Transaction {
  clientId: string;
  requestId: string;
  type: TransactionType;
  userId: string;
  status: TransactionStatus;
  amount: bigint;
  currency: string;
  scale: number;
  fee: bigint;
  walletId: string | null;
  counterpartyUserId: string | null;
  /** Trades: what the user got, at which rate (source USD price / target USD price). */
  target: { currency: string; amount: bigint; scale: number; rate: string | null } | null;
  paymentMethod: { type: string; last4?: string | null; paymentInformationId?: string } | null;
  monitoring: MonitoringResult | null;
  statusDetail: { responseCode: string; responseCategory: string; message?: string } | null;
  redirectUrl: string | null;
  /** Bank deposits: where and with which reference to pay. */
  paymentInstructions: { iban: string; reference: string } | null;
  /** A number people can read out, unique per client (the Wallet API's requestIdentifier). */
  number: string;
  /** The face's view of the operation (transactions.process). */
  process: Record<string, unknown> | null;
  /** A person's decision on it (accept / decline), kept with it. */
  decision: Record<string, unknown> | null;
  /** A purchase sent on the chain: the chain's transaction hash. */
  chainTxHash: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** The stored row. */
export type Row = Selectable<TransactionsTable>;

export class TransactionError extends DomainError {}

export const notFound = (requestId: string) =>
  new TransactionError("NOT_FOUND", "TRANSACTION_NOT_FOUND", `no transaction ${requestId}`);

export const requestIdUsed = (requestId: string) =>
  new TransactionError(
    "CONFLICT",
    "REQUEST_ID_USED",
    `request id ${requestId} was already used`,
    "X-Request-Id",
  );

/**
 * A currency of the client's own that has no USD rate yet: a set-up step (409), not bad input.
 * Money does not move in it until staff or the platform admin set its rate, because monitoring and
 * the KYC gate value every amount in USD and would otherwise see nothing (docs/wallet-api.md).
 */
export const usdRateNotSet = (currency: string, field: string) =>
  new TransactionError(
    "CONFLICT",
    "USD_RATE_NOT_SET",
    `${currency} has no USD rate yet: staff set it before money moves in it (monitoring and KYC limits value every amount in USD)`,
    field,
  );

export const insufficientFunds = () =>
  new TransactionError(
    "PAYMENT_FAILED",
    "INSUFFICIENT_FUNDS",
    "the wallet's available balance is too low for amount + fee",
  );

export const json = <T>(v: unknown): T | null =>
  v === null || v === undefined ? null : ((typeof v === "string" ? JSON.parse(v) : v) as T);

export type Feedback =
  | "SETTLED"
  | "ACCEPTED"
  | "CANCELLED"
  | "REJECTED"
  | "REFUNDED"
  | "CHARGED_BACK"
  | "ERROR";

export interface CardSource {
  paymentMethodType: "CREDIT_CARD";
  paymentInformationId?: string | undefined;
  cardNumber?: string | undefined;
  expirationMonth?: number | undefined;
  expirationYear?: number | undefined;
  cvv?: string | undefined;
  cardHolder?: string | undefined;
  billingAddress?:
    | { street: string; city: string; country: string; postalCode?: string | undefined }
    | undefined;
}

export interface BankDestination {
  paymentMethodType: "ACH" | "WIRE";
  paymentInformationId?: string | undefined;
  iban?: string | undefined;
  bankAccountNumber?: string | undefined;
  accountHolderName?: string | undefined;
  bankSwiftCode?: string | undefined;
  bankRoutingNumber?: string | undefined;
}

interface Common {
  clientId: string;
  userId: string;
  requestId: string;
  amount: string | number;
  currency: string;
  scenarioId?: string | undefined;
  suppressWebhook?: boolean | undefined;
  /** A face that prices the operation itself (the Wallet API's commissions): the fee in minor units. */
  fee?: bigint | undefined;
  /** Wait for a person (staff accept or decline) even when monitoring accepts: recorded in MANUAL_REVIEW. */
  awaitApproval?: boolean | undefined;
  /** The face's view of the operation, kept with the transaction (transactions.process). */
  process?: Record<string, unknown> | undefined;
}

/** A crypto purchase (the Pay-in API): the card's fiat converted at a quoted rate, and sent on. */
export interface Purchase {
  currency: string;
  /** Minor units of `currency` the user gets (at the quote's rate, net of the fee). */
  amount: bigint;
  /** The quote's rate, as the core keeps rates: `<source USD price>/<target USD price>`. */
  rate: string;
  /** Where the crypto goes on the chain once credited (none: it stays in the user's account). */
  address?: string | undefined;
}

export interface DepositInput extends Common {
  sourceMethod: CardSource;
  /** The card's money buys crypto (credited to the user's account in that currency). */
  purchase?: Purchase | undefined;
  destinationWalletId?: string | undefined;
  /** Information the end user gave with the deposit: merged into the user where it changed. */
  pii?: UserInfo | undefined;
}

export interface BankDepositInput extends Common {
  paymentMethodType: "ACH" | "WIRE";
  destinationWalletId?: string | undefined;
  pii?: UserInfo | undefined;
}

/** A payout to a card (the Wallet API's card withdrawal). */
export interface CardDestination {
  paymentMethodType: "CREDIT_CARD";
  paymentInformationId?: string | undefined;
  cardNumber?: string | undefined;
  expirationMonth?: number | undefined;
  expirationYear?: number | undefined;
  cardHolder?: string | undefined;
}

export interface WithdrawalInput extends Common {
  sourceWalletId?: string | undefined;
  destinationMethod: BankDestination | CardDestination;
}

export interface TransferInput extends Common {
  kind: "TRANSFER" | "PAYMENT";
  destinationUserId: string;
  sourceWalletId?: string | undefined;
  /** One of the destination user's wallets (default: their first in the currency). */
  destinationWalletId?: string | undefined;
}

export interface TradeInput extends Common {
  targetCurrency: string;
  sourceWalletId?: string | undefined;
}

export const INCOMING_BANK = "sandbox-bank-incoming";
/** The sandbox's transit account that bank deposits are paid to. */
export const SANDBOX_TRANSIT_IBAN = "DE02100100100006820101";

/**
 * What the payer gives in all. A deposit's and a trade's fee comes out of the amount (the wallet
 * gets, or the exchange converts, amount − fee), so their total is the amount; a withdrawal's,
 * transfer's and payment's fee is on top of the amount.
 */
export function totalOf(type: string, amount: bigint, fee: bigint): bigint {
  return type === "DEPOSIT" || type === "TRADE" ? amount : amount + fee;
}
