import { randomInt } from "node:crypto";
import { sql } from "kysely";
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import type { RequestContext } from "../../lib/context.ts";
import { newId } from "../../lib/ids.ts";
import { formatAmount } from "../../lib/money.ts";
import type { Sealer } from "../../lib/sealer.ts";
import { writeAudit } from "../audit/service.ts";
import * as ledger from "../ledger/service.ts";
import { luhnValid } from "../payment-methods/validation.ts";
import { requireActiveUser } from "../users/service.ts";
import { type Coin, walletFigures } from "../wallets/service.ts";

/**
 * Smart cards: a card number issued on one of its holder's accounts, usable as a transfer's
 * destination. The number is shown in full once, when the card is made; it is kept sealed, with a
 * keyed fingerprint to find the card by number, and shown masked from then on.
 */
export interface SmartCardView {
  id: string;
  name: string;
  active: boolean;
  cardNumber: string;
  expirationDate: string;
  expirationStatus: "ACTIVE" | "EXPIRED";
  associatedCoinSerial: string;
  currencyCode: string;
  availableAmount: string;
}

/** The card range smart cards are numbered from (not a payment network's). */
const SMART_CARD_BIN = "990001";

export class SmartCards {
  constructor(
    private readonly db: Db,
    private readonly sealer: Sealer,
  ) {}

  private fingerprint(clientId: string, number: string) {
    return this.sealer.fingerprint(`smart-card\u0000${clientId}\u0000${number}`);
  }

  /**
   * Issues a card on `coin` (the caller checked it is the user's): the answer carries the full
   * number. A user who is not ACTIVE is issued none (403).
   */
  async issue(context: RequestContext, userId: string, coin: Coin, name: string): Promise<SmartCardView> {
    const { clientId } = context;
    await requireActiveUser(this.db, clientId, userId);
    const number = newCardNumber();
    const expires = new Date();
    expires.setUTCFullYear(expires.getUTCFullYear() + 3, expires.getUTCMonth() + 1, 0);
    const expirationDate = expires.toISOString().slice(0, 10);
    const id = newId();
    await inTransaction(this.db, async (tx) => {
      await tx
        .insertInto("smart_cards")
        .values({
          client_id: clientId,
          id,
          user_id: userId,
          account_id: coin.account.id,
          name,
          fingerprint: this.fingerprint(clientId, number),
          sealed_number: this.sealer.seal(number, `smart-card:${clientId}:${id}`),
          last4: number.slice(-4),
          bin: number.slice(0, 6),
          expiration_date: expirationDate,
        })
        .execute();
      await writeAudit(tx, context, {
        action: "smart_card.issued",
        entityType: "smart_card",
        entityId: id,
        after: { account: coin.serial, last4: number.slice(-4) },
      });
    });
    const scale = (await ledger.getCurrency(this.db, clientId, coin.account.currency)).scale;
    return {
      id,
      name,
      active: true,
      cardNumber: number,
      expirationDate,
      expirationStatus: "ACTIVE",
      associatedCoinSerial: coin.serial,
      currencyCode: coin.account.currency,
      availableAmount: formatAmount(walletFigures(coin.account).availableBalance, scale),
    };
  }

  async list(clientId: string, userId: string): Promise<SmartCardView[]> {
    const rows = await this.db
      .selectFrom("smart_cards as s")
      .innerJoin("coins as c", "c.account_id", "s.account_id")
      .select(["s.id", "s.name", "s.active", "s.bin", "s.last4", "s.account_id", "c.serial"])
      .select(sql<string>`to_char(s.expiration_date, 'YYYY-MM-DD')`.as("expiration_date"))
      .where("s.client_id", "=", clientId)
      .where("s.user_id", "=", userId)
      .orderBy("s.created_at")
      .execute();
    const views: SmartCardView[] = [];
    for (const row of rows) {
      const account = await ledger.getAccount(this.db, row.account_id, clientId);
      const scale = (await ledger.getCurrency(this.db, clientId, account.currency)).scale;
      const expirationDate = row.expiration_date;
      views.push({
        id: row.id,
        name: row.name,
        active: row.active,
        cardNumber: `${row.bin}******${row.last4}`,
        expirationDate,
        expirationStatus: expirationDate < new Date().toISOString().slice(0, 10) ? "EXPIRED" : "ACTIVE",
        associatedCoinSerial: row.serial,
        currencyCode: account.currency,
        availableAmount: formatAmount(walletFigures(account).availableBalance, scale),
      });
    }
    return views;
  }

  /** The card with this number (any holder's of the client), with its account's serial. */
  async findByNumber(clientId: string, number: string) {
    const digits = number.replace(/[\s-]/g, "");
    if (!/^[0-9]{12,19}$/.test(digits)) return undefined;
    const row = await this.db
      .selectFrom("smart_cards as s")
      .innerJoin("coins as c", "c.account_id", "s.account_id")
      .select(["s.id", "s.user_id", "s.active", "c.serial"])
      .select(sql<string>`to_char(s.expiration_date, 'YYYY-MM-DD')`.as("expiration_date"))
      .where("s.client_id", "=", clientId)
      .where("s.fingerprint", "=", this.fingerprint(clientId, digits))
      .executeTakeFirst();
    if (!row) return undefined;
    const expirationDate = row.expiration_date;
    return {
      id: row.id,
      userId: row.user_id,
      serial: row.serial,
      active: row.active && expirationDate >= new Date().toISOString().slice(0, 10),
    };
  }
}

function newCardNumber(): string {
  let body = SMART_CARD_BIN;
  while (body.length < 15) body += String(randomInt(0, 10));
  for (let d = 0; d <= 9; d++) if (luhnValid(`${body}${d}`)) return `${body}${d}`;
  throw new Error("no Luhn digit");
}
