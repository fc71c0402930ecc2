// Over 400 lines on purpose: the three parts of a client's set-up (currencies, issuers, the bank
// catalog), each short and read together; currencies' USD rates live in modules/rates.
import { randomInt } from "node:crypto";
import { announceChange } from "../../db/cache.ts";
import type { Db } from "../../db/database.ts";
import { PgErrorCode, pgErrorCode } from "../../db/errors.ts";
import { inTransaction } from "../../db/transaction.ts";
import type { RequestContext } from "../../lib/context.ts";
import { DomainError } from "../../lib/errors.ts";
import { newId, UUID } from "../../lib/ids.ts";
import { writeAudit } from "../audit/service.ts";
import { type CurrencyRates, parseUsdRate, RateError } from "../rates/service.ts";

/**
 * A client's set-up for its wallets: currencies with the details people see (the ledger itself
 * needs only code and scale), the issuers that issue them (and prefix their accounts' serials),
 * and the catalog of banks money comes from and goes to.
 */
export class CatalogError extends DomainError {}

export interface CurrencyDetails {
  id: string;
  code: string;
  digitalCode: string | null;
  symbol: string | null;
  name: string | null;
  description: string | null;
  fraction: number;
  /** Its USD rate in force (the provider's or the client's own), when the caller asked for it; null: none yet. */
  usdRate?: string | null;
}

export interface Issuer {
  id: string;
  sn: string;
  currency: string;
  name: string;
  description: string | null;
  snPrefix: string;
  active: boolean;
  createdAt: Date;
}

export interface Bank {
  id: string;
  name: string;
  bic: string;
  swift: string;
  address: string | null;
  city: string | null;
  zipCode: string | null;
  createdAt: Date;
}

type CurrencyRow = {
  id: string;
  code: string;
  scale: number;
  digital_code: string | null;
  symbol: string | null;
  name: string | null;
  description: string | null;
};

const toCurrency = (r: CurrencyRow): CurrencyDetails => ({
  id: r.id,
  code: r.code,
  digitalCode: r.digital_code,
  symbol: r.symbol,
  name: r.name,
  description: r.description,
  fraction: r.scale,
});

const CURRENCY_COLUMNS = ["id", "code", "scale", "digital_code", "symbol", "name", "description"] as const;

/** The client's currencies; with `rates`, each with its USD rate in force. */
export async function listCurrencies(
  db: Db,
  clientId: string,
  rates?: CurrencyRates,
): Promise<CurrencyDetails[]> {
  const rows = await db
    .selectFrom("ledger_currencies")
    .select(CURRENCY_COLUMNS)
    .where("client_id", "=", clientId)
    .orderBy("code")
    .execute();
  const currencies = rows.map(toCurrency);
  if (!rates) return currencies;
  const inForce = await rates.inForceAll(
    clientId,
    currencies.map((c) => c.code),
  );
  return currencies.map((c) => ({ ...c, usdRate: inForce.get(c.code)?.rate ?? null }));
}

export async function findCurrencyById(
  db: Db,
  clientId: string,
  id: string,
): Promise<CurrencyDetails | undefined> {
  if (!UUID.test(id)) return undefined;
  const row = await db
    .selectFrom("ledger_currencies")
    .select(CURRENCY_COLUMNS)
    .where("client_id", "=", clientId)
    .where("id", "=", id)
    .executeTakeFirst();
  return row ? toCurrency(row) : undefined;
}

export async function findCurrencyDetails(
  db: Db,
  clientId: string,
  code: string,
): Promise<CurrencyDetails | undefined> {
  const row = await db
    .selectFrom("ledger_currencies")
    .select(CURRENCY_COLUMNS)
    .where("client_id", "=", clientId)
    .where("code", "=", code)
    .executeTakeFirst();
  return row ? toCurrency(row) : undefined;
}

/**
 * Adds a currency to the client's ledger with its details. A code taken already is a 409, unless
 * the ledger opened it on its own (a first wallet through the Platform API: no details yet) with
 * the same scale — then the details are filled in.
 *
 * `usdRate` (optional) records the currency's first USD rate in the same transaction. Without it, a
 * currency the rates provider does not price has no value until staff set one, and money does not
 * move in it until then (a 409 USD_RATE_NOT_SET): see docs/wallet-api.md, "Currency rates".
 */
export async function createCurrency(
  db: Db,
  context: RequestContext,
  input: {
    code: string;
    digitalCode?: string | undefined;
    symbol?: string | undefined;
    name: string;
    description?: string | undefined;
    fraction: number;
    usdRate?: unknown;
  },
  rates: CurrencyRates,
): Promise<CurrencyDetails> {
  const { clientId } = context;
  const usdRate = input.usdRate === undefined ? undefined : parseUsdRate(input.usdRate);
  if (usdRate !== undefined && (await rates.providerPrices(input.code)))
    throw new RateError(
      "CONFLICT",
      "RATE_FROM_PROVIDER",
      `${input.code} is priced by the rates provider; leave usdRate out`,
      "usdRate",
    );
  return inTransaction(db, async (tx) => {
    const details = {
      digital_code: input.digitalCode ?? null,
      symbol: input.symbol ?? null,
      name: input.name,
      description: input.description ?? null,
    };
    const inserted = await tx
      .insertInto("ledger_currencies")
      .values({ client_id: clientId, code: input.code, scale: input.fraction, ...details })
      .onConflict((oc) => oc.columns(["client_id", "code"]).doNothing())
      .returning(CURRENCY_COLUMNS)
      .executeTakeFirst();
    let row = inserted;
    if (!row) {
      row = await tx
        .updateTable("ledger_currencies")
        .set(details)
        .where("client_id", "=", clientId)
        .where("code", "=", input.code)
        .where("name", "is", null)
        .where("scale", "=", input.fraction)
        .returning(CURRENCY_COLUMNS)
        .executeTakeFirst();
      if (!row)
        throw new CatalogError(
          "CONFLICT",
          "CURRENCY_EXISTS",
          `currency ${input.code} exists already`,
          "code",
        );
    }
    await announceChange(tx, "currency", [clientId, input.code].join("\u0000"));
    await writeAudit(tx, context, {
      action: "currency.created",
      entityType: "currency",
      entityId: input.code,
      after: { fraction: input.fraction, name: input.name },
    });
    const first =
      usdRate === undefined
        ? undefined
        : await rates.record(tx, context, { currency: input.code, rate: usdRate, effectiveFrom: new Date() });
    return {
      ...toCurrency(row),
      usdRate: first?.recorded.rate ?? (await rates.inForce(clientId, input.code, tx))?.rate ?? null,
    };
  });
}

// ——— issuers ———

type IssuerRow = {
  id: string;
  sn: string;
  currency: string;
  name: string;
  description: string | null;
  sn_prefix: string;
  active: boolean;
  created_at: Date;
};

const toIssuer = (r: IssuerRow): Issuer => ({
  id: r.id,
  sn: r.sn,
  currency: r.currency,
  name: r.name,
  description: r.description,
  snPrefix: r.sn_prefix,
  active: r.active,
  createdAt: new Date(r.created_at),
});

export async function createIssuer(
  db: Db,
  context: RequestContext,
  input: {
    currencyCode: string;
    name: string;
    description?: string | undefined;
    snPrefix?: string | undefined;
  },
): Promise<Issuer> {
  const { clientId } = context;
  if (!(await findCurrencyDetails(db, clientId, input.currencyCode)))
    throw new CatalogError(
      "NOT_FOUND",
      "CURRENCY_NOT_FOUND",
      `no currency ${input.currencyCode}`,
      "currencyCode",
    );
  return inTransaction(db, async (tx) => {
    const row = await tx
      .insertInto("issuers")
      .values({
        client_id: clientId,
        id: newId(),
        sn: digits(12),
        currency: input.currencyCode,
        name: input.name,
        description: input.description ?? null,
        sn_prefix: input.snPrefix ?? "",
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await writeAudit(tx, context, {
      action: "issuer.created",
      entityType: "issuer",
      entityId: row.id,
      after: { currency: input.currencyCode, snPrefix: row.sn_prefix },
    });
    return toIssuer(row);
  });
}

export async function listIssuers(db: Db, clientId: string, currency?: string): Promise<Issuer[]> {
  let query = db.selectFrom("issuers").selectAll().where("client_id", "=", clientId);
  if (currency !== undefined) query = query.where("currency", "=", currency);
  return (await query.orderBy("created_at").orderBy("id").execute()).map(toIssuer);
}

export async function getIssuer(db: Db, clientId: string, id: string): Promise<Issuer> {
  const row = UUID.test(id)
    ? await db
        .selectFrom("issuers")
        .selectAll()
        .where("client_id", "=", clientId)
        .where("id", "=", id)
        .executeTakeFirst()
    : undefined;
  if (!row) throw new CatalogError("NOT_FOUND", "ISSUER_NOT_FOUND", `no issuer ${id}`, "issuerId");
  return toIssuer(row);
}

/** The issuer of a new account in `currency`: the one named, or the currency's first active one. */
export async function issuerFor(
  db: Db,
  clientId: string,
  currency: string,
  issuerId?: string,
): Promise<Issuer | undefined> {
  if (issuerId !== undefined) {
    const issuer = await getIssuer(db, clientId, issuerId);
    if (issuer.currency !== currency)
      throw new CatalogError(
        "INVALID",
        "ISSUER_CURRENCY",
        `issuer ${issuerId} issues ${issuer.currency}, not ${currency}`,
        "issuerId",
      );
    if (!issuer.active)
      throw new CatalogError("CONFLICT", "ISSUER_NOT_ACTIVE", `issuer ${issuerId} is not active`, "issuerId");
    return issuer;
  }
  const row = await db
    .selectFrom("issuers")
    .selectAll()
    .where("client_id", "=", clientId)
    .where("currency", "=", currency)
    .where("active", "=", true)
    .orderBy("created_at")
    .orderBy("id")
    .limit(1)
    .executeTakeFirst();
  return row ? toIssuer(row) : undefined;
}

// ——— bank catalog ———

type BankRow = {
  id: string;
  name: string;
  bic: string;
  swift: string;
  address: string | null;
  city: string | null;
  zip_code: string | null;
  created_at: Date;
};

const toBank = (r: BankRow): Bank => ({
  id: r.id,
  name: r.name,
  bic: r.bic,
  swift: r.swift,
  address: r.address,
  city: r.city,
  zipCode: r.zip_code,
  createdAt: new Date(r.created_at),
});

export async function createBank(
  db: Db,
  context: RequestContext,
  input: {
    name: string;
    bic: string;
    swift: string;
    address?: string | undefined;
    city?: string | undefined;
    zipCode?: string | undefined;
  },
): Promise<Bank> {
  const { clientId } = context;
  try {
    return await inTransaction(db, async (tx) => {
      const row = await tx
        .insertInto("bank_catalog")
        .values({
          client_id: clientId,
          id: newId(),
          name: input.name,
          bic: input.bic,
          swift: input.swift,
          address: input.address ?? null,
          city: input.city ?? null,
          zip_code: input.zipCode ?? null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await writeAudit(tx, context, {
        action: "bank.created",
        entityType: "bank",
        entityId: row.id,
        after: { bic: row.bic, swift: row.swift },
      });
      return toBank(row);
    });
  } catch (error) {
    if (pgErrorCode(error) === PgErrorCode.uniqueViolation) {
      const constraint = (error as { constraint?: string }).constraint ?? "";
      const field = constraint.includes("swift") ? "swift" : "bic";
      throw new CatalogError(
        "CONFLICT",
        "BANK_EXISTS",
        `a bank with this ${field.toUpperCase()} is in the catalog already`,
        field,
      );
    }
    throw error;
  }
}

export async function listBanks(db: Db, clientId: string, page: { offset: number; limit: number }) {
  const query = db.selectFrom("bank_catalog").where("client_id", "=", clientId);
  const [rows, count] = await Promise.all([
    query.selectAll().orderBy("created_at").orderBy("id").offset(page.offset).limit(page.limit).execute(),
    query.select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow(),
  ]);
  return { banks: rows.map(toBank), total: Number(count.n) };
}

export async function getBank(db: Db, clientId: string, id: string): Promise<Bank> {
  const row = UUID.test(id)
    ? await db
        .selectFrom("bank_catalog")
        .selectAll()
        .where("client_id", "=", clientId)
        .where("id", "=", id)
        .executeTakeFirst()
    : undefined;
  if (!row) throw new CatalogError("NOT_FOUND", "BANK_NOT_FOUND", `no bank ${id} in the catalog`, "bankId");
  return toBank(row);
}

/** `n` random decimal digits (crypto-strength). */
export function digits(n: number): string {
  let out = "";
  for (let i = 0; i < n; i++) out += String(randomInt(0, 10));
  return out;
}
