import type { Db } from "../../db/database.ts";
import { AmountError, parsePositiveAmount } from "../../lib/money.ts";
import { KNOWN_SCALES } from "../../providers/rates/interface.ts";
import { type Client, findClient } from "../clients/service.ts";
import * as ledger from "../ledger/service.ts";
import { hasOAuthSecret, type OneClickSettings, oneClickOf } from "../oauth/clients.ts";

/**
 * The client's own rules on an authorization request (the face parses the OAuth wire format;
 * these are what the client's set-up and Ferry's money rules allow): which client may start a
 * flow, which identity providers it may use, which deposits the bank rail takes.
 */

/** A refusal the browser's redirect_uri hears (RFC 6749 §4.1.2.1 `error`, `error_description`). */
export class AuthorizeRefusal extends Error {
  constructor(
    readonly error: "invalid_request" | "unauthorized_client",
    readonly description: string,
  ) {
    super(description);
    this.name = "AuthorizeRefusal";
  }
}

/** The client an authorization request names, when it may start a 1-Click flow (active, set up). */
export async function authorizationTarget(
  db: Db,
  clientId: string,
): Promise<{ client: Client; settings: OneClickSettings } | undefined> {
  const client = await findClient(db, clientId);
  const settings = client && client.status === "ACTIVE" ? await oneClickOf(db, client.id) : undefined;
  return client && settings ? { client, settings } : undefined;
}

/**
 * A deposit's amount and currency as the bank rail takes them: a fiat currency the client's ledger
 * has (or joins with its usual scale), a positive decimal at that scale. The currency joins the
 * client's ledger only once the whole request is valid (`admitCurrency`).
 */
export async function depositOf(
  db: Db,
  clientId: string,
  amountText: string | undefined,
  currencyCode: string | undefined,
): Promise<{ amount: bigint; currency: string } | undefined> {
  if (amountText === undefined && currencyCode === undefined) return undefined;
  if (amountText === undefined || currencyCode === undefined)
    throw new AuthorizeRefusal("invalid_request", "a deposit needs both amount and currency");
  const known = /^[A-Z]{3}$/.test(currencyCode) && (KNOWN_SCALES[currencyCode] ?? 0) <= 3;
  const found = known ? await ledger.findCurrency(db, clientId, currencyCode) : undefined;
  const scale = found?.scale ?? (known ? KNOWN_SCALES[currencyCode] : undefined);
  if (scale === undefined || scale > 3)
    throw new AuthorizeRefusal(
      "invalid_request",
      `currency ${currencyCode} is not a fiat currency Ferry takes bank payments in`,
    );
  if (!/^\d{1,30}(\.\d{1,18})?$/.test(amountText))
    throw new AuthorizeRefusal("invalid_request", "amount must be a decimal string such as 100.00");
  try {
    return { amount: parsePositiveAmount(amountText, scale), currency: currencyCode };
  } catch (error) {
    if (!(error instanceof AmountError)) throw error;
    throw new AuthorizeRefusal("invalid_request", `amount: ${error.message}`);
  }
}

/** The currency on the client's ledger (a request that was refused adds nothing). */
export async function admitCurrency(db: Db, clientId: string, currency: string): Promise<void> {
  if (await ledger.findCurrency(db, clientId, currency)) return;
  const scale = KNOWN_SCALES[currency];
  if (scale !== undefined)
    await ledger.createCurrency(db, { clientId, code: currency, scale }).catch(() => undefined);
}

/** The client has an OAuth secret (its backend can exchange the code). */
export async function mustHaveSecret(db: Db, clientId: string): Promise<void> {
  if (!(await hasOAuthSecret(db, clientId)))
    throw new AuthorizeRefusal("unauthorized_client", "the client has no OAuth client secret yet");
}
