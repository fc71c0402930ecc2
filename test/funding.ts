import { expect, vi } from "vitest";
import { luhnValid } from "../src/modules/payment-methods/validation.ts";
import type { TestApp } from "./harness.ts";
import { createTestClient, createUser, type TestClient } from "./platform.ts";

/** Shared set-up of money tests: a client, users with a tier and history, funded by card deposits. */

export const GOOD_IBAN = "DE89370400440532013000";
/** Last four digits 0000: the sandbox bank returns the payout. */
export const RETURNED_IBAN = "DE94370400440532010000";

let cardCounter = 0;

/** `partial` (15 digits) with the Luhn check digit that makes it a valid card number. */
export function withLuhnDigit(partial: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(`${partial}${d}`)) return `${partial}${d}`;
  throw new Error(`no Luhn digit for ${partial}`);
}

/** A valid German IBAN (mod 97) for a bank code and a 10-digit account number. */
export function germanIban(account: string, bankCode = "37040044"): string {
  const bban = `${bankCode}${account.padStart(10, "0")}`;
  const check = 98n - (BigInt(`${bban}131400`) % 97n); // "DE00" → D=13 E=14 00
  return `DE${String(check).padStart(2, "0")}${bban}`;
}

/**
 * A Luhn-valid card the sandbox approves, distinct per call (a card belongs to one user per
 * client). Numbers start 4111 11, away from the sandbox's special 4000 0000 0000 … test cards.
 */
export function distinctCard(): string {
  return withLuhnDigit(`${4_111_110_000_000_000n + BigInt(++cardCounter) * 10n}`.slice(0, 15));
}

export async function fundedClient(
  t: TestApp,
  options: { settings?: Record<string, unknown>; users: [string, string?][]; webhookUrl?: string },
): Promise<TestClient> {
  const client = await createTestClient(t, { settings: options.settings, webhookUrl: options.webhookUrl });
  for (const [userId, funding] of options.users) {
    await createUser(t, client, userId, "Doe");
    await t.database.db
      .updateTable("users")
      .set({ tier: 2, created_at: new Date(Date.now() - 7 * 86_400_000) } as never)
      .where("client_id", "=", client.clientId)
      .where("id", "=", userId)
      .execute();
    if (funding) {
      const response = await cardDeposit(client, userId, funding, `fund-${userId}`, distinctCard());
      expect(response.statusCode, response.body).toBe(201);
    }
  }
  return client;
}

export function cardDeposit(
  client: TestClient,
  userId: string,
  amount: string,
  requestId: string,
  cardNumber: string,
) {
  return client.request(
    "POST",
    "/v1/transactions/deposits",
    {
      userId,
      amount,
      currency: "EUR",
      sourceMethod: {
        paymentMethodType: "CREDIT_CARD",
        cardNumber,
        expirationMonth: 12,
        expirationYear: 2031,
      },
    },
    { "x-request-id": requestId },
  );
}

export function withdrawal(
  client: TestClient,
  userId: string,
  amount: string,
  requestId: string,
  iban = GOOD_IBAN,
) {
  return client.request(
    "POST",
    "/v1/transactions/withdrawals",
    {
      userId,
      amount,
      currency: "EUR",
      destinationMethod: { paymentMethodType: "ACH", iban, accountHolderName: "Ada Doe" },
    },
    { "x-request-id": requestId },
  );
}

export async function balances(client: TestClient, userId: string) {
  const records = (await client.request("GET", `/v1/users/${userId}/wallets`)).json().records as {
    currency: string;
    totalBalance: string;
    availableBalance: string;
  }[];
  return Object.fromEntries(records.map((w) => [w.currency, `${w.totalBalance}/${w.availableBalance}`]));
}

export const statusOf = async (client: TestClient, requestId: string) =>
  (await client.request("GET", `/v1/transactions/${requestId}`)).json().status as string;

/** Runs the step runner's claim loop until `requestId` reaches `status` (no background workers in these tests). */
export async function driveUntil(
  t: TestApp,
  client: TestClient,
  requestId: string,
  status: string,
  timeout = 8000,
) {
  await vi.waitFor(
    async () => {
      await t.services.steps.runDue(50);
      expect(await statusOf(client, requestId)).toBe(status);
    },
    { timeout, interval: 50 },
  );
}

/** Runs the claim loop until no step of this client is open. */
export async function drainSteps(t: TestApp, clientId: string, timeout = 8000) {
  await vi.waitFor(
    async () => {
      await t.services.steps.runDue(50);
      const open = await t.database.db
        .selectFrom("steps")
        .select("id")
        .where("client_id", "=", clientId)
        .where("status", "=", "PENDING")
        .execute();
      expect(open).toEqual([]);
    },
    { timeout, interval: 50 },
  );
}
