import { sql } from "kysely";
import type { Db } from "../../db/database.ts";
import { DomainError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import type { Sealer } from "../../lib/sealer.ts";
import type { Acquirer } from "../../providers/acquirer/interface.ts";
import { getClientMode } from "../clients/service.ts";
import { assertActive, requireActiveUser, type User } from "../users/service.ts";
import { cardBrand, cardExpired, ibanValid, luhnValid, normalizeIban } from "./validation.ts";

export type NewPaymentMethod =
  | {
      type: "CREDIT_CARD";
      cardNumber: string;
      expirationMonth: number;
      expirationYear: number;
      cardHolder?: string | undefined;
      billingAddress?: unknown;
    }
  | {
      type: "BANK_ACCOUNT";
      iban?: string | undefined;
      bankAccountNumber?: string | undefined;
      accountHolderName: string;
      bankSwiftCode?: string | undefined;
      bankRoutingNumber?: string | undefined;
    }
  | { type: "CRYPTO"; currency: string; address: string };

/** What Ferry shows of a saved method: never the card or account number. */
export interface PaymentMethod {
  id: string;
  userId: string;
  type: "CREDIT_CARD" | "BANK_ACCOUNT" | "CRYPTO";
  last4: string | null;
  bin: string | null;
  brand: string | null;
  expirationMonth: number | null;
  expirationYear: number | null;
  bankCode: string | null;
  currency: string | null;
  createdAt: Date;
}

const kinds = {
  INVALID_PAYMENT_METHOD: "INVALID",
  PAYMENT_METHOD_TAKEN: "CONFLICT",
  PAYMENT_METHOD_NOT_FOUND: "NOT_FOUND",
} as const;

export class PaymentMethodError extends DomainError {
  constructor(code: keyof typeof kinds, message: string, field?: string) {
    super(kinds[code], code, message, field);
  }
}

type Row = {
  client_id: string;
  id: string;
  user_id: string;
  type: string;
  last4: string | null;
  bin: string | null;
  brand: string | null;
  exp_month: number | null;
  exp_year: number | null;
  bank_code: string | null;
  currency: string | null;
  created_at: Date;
  sealed_details: string;
};

function toMethod(row: Row): PaymentMethod {
  return {
    id: row.id,
    userId: row.user_id,
    type: row.type as PaymentMethod["type"],
    last4: row.last4,
    bin: row.bin,
    brand: row.brand,
    expirationMonth: row.exp_month === null ? null : Number(row.exp_month),
    expirationYear: row.exp_year === null ? null : Number(row.exp_year),
    bankCode: row.bank_code,
    currency: row.currency,
    createdAt: new Date(row.created_at),
  };
}

const aad = (clientId: string, id: string) => `payment-method:${clientId}:${id}`;

/** What the module asks of the card acquirer: which numbers are its test cards. */
export type TestCards = Pick<Acquirer, "isTestCard">;

/**
 * Saved cards, bank accounts and crypto addresses. Numbers are checked (Luhn, expiry, IBAN mod-97)
 * before anything is stored, sealed at rest, and found again by a keyed fingerprint: a card
 * belongs to one user of a client (another user adding it: 409; the same user again: the one saved).
 * The acquirer's test cards are the exception, as in every acquirer's test mode: in a sandbox
 * client any number of users may each save one (a row of their own); a live client takes none (400).
 * Only an ACTIVE user of the client is given payment information (404 / 403 otherwise).
 */
export class PaymentMethods {
  constructor(
    private readonly db: Db,
    private readonly sealer: Sealer,
    private readonly testCards: TestCards,
  ) {}

  /**
   * Saves a method as the user's. `user`: the user as the caller's request already read them (a
   * transaction's), so that their status is not read again; otherwise it is read here.
   */
  async add(
    clientId: string,
    userId: string,
    input: NewPaymentMethod,
    user?: Pick<User, "id" | "status">,
  ): Promise<{ method: PaymentMethod; created: boolean }> {
    const prepared = this.prepare(input);
    if (user?.id === userId) assertActive(user);
    else await requireActiveUser(this.db, clientId, userId);
    const testCard = input.type === "CREDIT_CARD" && this.testCards.isTestCard(prepared.identity);
    if (testCard && (await getClientMode(this.db, clientId)) === "live")
      throw new PaymentMethodError(
        "INVALID_PAYMENT_METHOD",
        "this is a test card number: a live client takes real cards only",
        "cardNumber",
      );
    const fingerprint = this.sealer.fingerprint(`${input.type}:${prepared.identity}`);
    const saved = () => {
      let query = this.db
        .selectFrom("payment_methods")
        .selectAll()
        .where("client_id", "=", clientId)
        .where("type", "=", input.type)
        .where("fingerprint", "=", fingerprint);
      // A test card: the user's own copy (a row saved before issue 17.8 may not be marked as one).
      query = testCard ? query.where("user_id", "=", userId) : query.where("test_card", "=", false);
      return query.executeTakeFirst();
    };
    if (testCard) {
      const own = await saved();
      if (own) return { method: toMethod(own as Row), created: false };
    }
    const id = `pm_${newId()}`;
    const row = await this.db
      .insertInto("payment_methods")
      .values({
        client_id: clientId,
        id,
        user_id: userId,
        type: input.type,
        fingerprint,
        test_card: testCard,
        sealed_details: this.sealer.seal(JSON.stringify(prepared.secret), aad(clientId, id)),
        ...prepared.visible,
      })
      .onConflict((oc) =>
        testCard
          ? oc
              .columns(["client_id", "user_id", "type", "fingerprint"])
              .where(sql<boolean>`test_card`)
              .doNothing()
          : oc.columns(["client_id", "type", "fingerprint"]).where(sql<boolean>`NOT test_card`).doNothing(),
      )
      .returningAll()
      .executeTakeFirst();
    if (row) return { method: toMethod(row as Row), created: true };
    const existing = await saved();
    if (!existing) throw new Error("payment method: a conflicting row that cannot be found");
    if (existing.user_id !== userId) {
      throw new PaymentMethodError(
        "PAYMENT_METHOD_TAKEN",
        "this payment method belongs to another user",
        "paymentInformation",
      );
    }
    return { method: toMethod(existing as Row), created: false };
  }

  /** Checks a method's details (Luhn, expiry, IBAN…) without saving it: 400 before anything else happens. */
  check(input: NewPaymentMethod): void {
    this.prepare(input);
  }

  async list(clientId: string, userId: string): Promise<PaymentMethod[]> {
    const rows = await this.db
      .selectFrom("payment_methods")
      .selectAll()
      .where("client_id", "=", clientId)
      .where("user_id", "=", userId)
      .orderBy("created_at")
      .execute();
    return rows.map((r) => toMethod(r as Row));
  }

  /** A saved method with its sealed details opened, for the provider call that needs them. */
  async reveal(
    clientId: string,
    userId: string,
    id: string,
  ): Promise<{ method: PaymentMethod; details: Record<string, unknown> }> {
    const row = await this.db
      .selectFrom("payment_methods")
      .selectAll()
      .where("client_id", "=", clientId)
      .where("user_id", "=", userId)
      .where("id", "=", id)
      .executeTakeFirst();
    if (!row) throw new PaymentMethodError("PAYMENT_METHOD_NOT_FOUND", `no payment information ${id}`);
    return {
      method: toMethod(row as Row),
      details: JSON.parse(this.sealer.open(row.sealed_details, aad(clientId, id))),
    };
  }

  /** Changes what is sealed with one of the user's methods (a card's billing address), keeping the rest. */
  async updateDetails(
    clientId: string,
    userId: string,
    id: string,
    patch: Record<string, unknown>,
  ): Promise<PaymentMethod> {
    const { method, details } = await this.reveal(clientId, userId, id);
    await this.db
      .updateTable("payment_methods")
      .set({ sealed_details: this.sealer.seal(JSON.stringify({ ...details, ...patch }), aad(clientId, id)) })
      .where("client_id", "=", clientId)
      .where("user_id", "=", userId)
      .where("id", "=", id)
      .execute();
    return method;
  }

  private prepare(input: NewPaymentMethod) {
    if (input.type === "CREDIT_CARD") {
      const digits = input.cardNumber.replace(/[\s-]/g, "");
      if (!luhnValid(digits))
        throw new PaymentMethodError(
          "INVALID_PAYMENT_METHOD",
          "the card number is not valid (Luhn)",
          "cardNumber",
        );
      if (cardExpired(input.expirationMonth, input.expirationYear)) {
        throw new PaymentMethodError("INVALID_PAYMENT_METHOD", "the card has expired", "expirationYear");
      }
      return {
        identity: digits,
        secret: {
          cardNumber: digits,
          cardHolder: input.cardHolder ?? null,
          billingAddress: input.billingAddress ?? null,
        },
        visible: {
          last4: digits.slice(-4),
          bin: digits.slice(0, 6),
          brand: cardBrand(digits),
          exp_month: input.expirationMonth,
          exp_year: input.expirationYear < 100 ? 2000 + input.expirationYear : input.expirationYear,
        },
      };
    }
    if (input.type === "BANK_ACCOUNT") {
      let account: string;
      if (input.iban !== undefined) {
        if (!ibanValid(input.iban))
          throw new PaymentMethodError("INVALID_PAYMENT_METHOD", "the IBAN is not valid (mod 97)", "iban");
        account = normalizeIban(input.iban);
      } else if (input.bankAccountNumber !== undefined) {
        account = input.bankAccountNumber.replace(/\s+/g, "");
        if (!/^[0-9A-Za-z]{4,34}$/.test(account)) {
          throw new PaymentMethodError(
            "INVALID_PAYMENT_METHOD",
            "the account number is not valid",
            "bankAccountNumber",
          );
        }
        if (!input.bankRoutingNumber && !input.bankSwiftCode) {
          throw new PaymentMethodError(
            "INVALID_PAYMENT_METHOD",
            "an account number needs bankRoutingNumber or bankSwiftCode",
            "bankRoutingNumber",
          );
        }
      } else {
        throw new PaymentMethodError(
          "INVALID_PAYMENT_METHOD",
          "a bank account needs iban or bankAccountNumber",
          "iban",
        );
      }
      const bankCode = input.bankSwiftCode ?? input.bankRoutingNumber ?? null;
      return {
        identity: `${account}:${bankCode ?? ""}`,
        secret: { account, accountHolderName: input.accountHolderName },
        visible: { last4: account.slice(-4), bank_code: bankCode },
      };
    }
    return {
      identity: `${input.currency}:${input.address}`,
      secret: { address: input.address },
      visible: { last4: input.address.slice(-4), currency: input.currency },
    };
  }
}
