import type { LightMyRequestResponse } from "fastify";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STAFF_ROLES } from "../src/modules/logins/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { tokenFor } from "./page-forms.ts";
import { logIn, registerCustomer, staff, type WalletCaller, walletClient } from "./wallet.ts";

/**
 * Every Pay-in route (`/v3/payin`, `/v2/customer`, and the sandbox KYC page): 401 without a valid
 * token, 403 for each staff role, 422 below the KYC level, 400 on bad input with nothing changed, 404
 * across users and clients (never another's data). A test fails when a route has no cases here, or
 * when this table names a route that is gone.
 */

let t: TestApp;
const served: string[] = [];
const FACES = ["/v3/payin", "/v2/customer", "/sandbox/kyc/"];

type StaffRole = (typeof STAFF_ROLES)[number];

/** Client A: staff of each role, and customers at each KYC level; client C: another customer. */
interface World {
  clientId: string;
  staff: Record<StaffRole, WalletCaller>;
  /** KYC_1, makes the valid and the bad requests. */
  vic: WalletCaller;
  vicCard: string;
  /** KYC_1: the one others reach for (a card and an open offer, never paid). */
  alice: WalletCaller;
  aliceNumber: string;
  aliceCard: string;
  aliceOffer: string;
  /** KYC_1, same client as Alice. */
  bob: WalletCaller;
  bobOffer: string;
  /** KYC_0 (tier 1) with a card and an offer. */
  zoe: WalletCaller;
  zoeOffer: string;
  /** Tier 0 who holds a card and an offer (made at KYC_0, then the tier dropped). */
  drop: WalletCaller;
  dropCard: string;
  dropOffer: string;
  /** Tier 0, nothing at all. */
  nina: WalletCaller;
  /** A token of Vic's, revoked by DELETE /api/v1/authorization. */
  revoked: string;
}
let A: World;
let C: { clientId: string; carl: WalletCaller; carlOffer: string };

let cards = 0;
/** A Luhn-valid card number the sandbox approves, distinct per call (a card belongs to one user). */
function approvedCard(): string {
  const body = `41111100${String(++cards).padStart(7, "0")}`;
  for (let d = 0; d <= 9; d++) {
    const n = `${body}${d}`;
    let sum = 0;
    for (let i = 0; i < n.length; i++) {
      let digit = Number(n[n.length - 1 - i]);
      if (i % 2 === 1) digit = digit * 2 > 9 ? digit * 2 - 9 : digit * 2;
      sum += digit;
    }
    if (sum % 10 === 0) return n;
  }
  throw new Error("no Luhn digit");
}

const billingAddress = { address: "12 Rue de Rivoli", city: "Paris", countryCode: "FR", zip: "75001" };
const cardBody = (cardNumber = approvedCard()) => ({
  cardNumber,
  cardHolder: "Marie Curie",
  cardExpirationMonth: 12,
  cardExpirationYear: 2031,
  billingAddress,
});

const tierOf = async (c: WalletCaller) =>
  (await t.services.users.get(t.database.db, c.clientId, c.userId)).tier;

/** A registered customer brought to `tier` through the core (1: KYC_0; 2: KYC_1, with an ID document). */
async function customerAt(clientId: string, tier: 0 | 1 | 2, lastName: string): Promise<WalletCaller> {
  const customer = await registerCustomer(t, clientId);
  if (tier === 0) return customer;
  await t.services.users.update({ clientId, actor: { kind: "user", id: customer.userId } }, customer.userId, {
    mode: "merge",
    info: {
      name: { firstName: "Test", lastName },
      dateOfBirth: "1990-01-01",
      countryOfResidence: "FR",
      addresses: [
        { type: "HOME", street: "12 Rue de Rivoli", city: "Paris", postalCode: "75001", country: "FR" },
      ],
      ...(tier === 2 ? { idDocument: { type: "PASSPORT", number: `X${lastName}`, country: "FR" } } : {}),
    },
  });
  await t.services.kyc.start({ clientId, userId: customer.userId });
  for (let i = 0; (await tierOf(customer)) < tier; i++) {
    if (i > 500) throw new Error(`the sandbox KYC never granted tier ${tier}`);
    await t.services.steps.runDue(50);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  expect(await tierOf(customer)).toBe(tier);
  return customer;
}

/**
 * The core's id behind a number the face showed (cards and offers are shown by Vault-style integers;
 * the face takes Ferry's own ids too, which this file uses throughout, and the database has them).
 */
async function coreId(kind: "CARD" | "OFFER", number: number): Promise<string> {
  expect(Number.isSafeInteger(number), `${kind} shown by ${number}`).toBe(true);
  const { rows } = await sql<{ ref: string }>`
    SELECT ref FROM payin_numbers WHERE kind = ${kind} AND number = ${number}`.execute(t.database.db);
  expect(rows).toHaveLength(1);
  return (rows[0] as { ref: string }).ref;
}

async function addCard(customer: WalletCaller, cardNumber = approvedCard()): Promise<string> {
  const added = await customer.call("POST", "/v3/payin/card", cardBody(cardNumber));
  expect(added.statusCode, added.body).toBe(200);
  const ref = await coreId("CARD", added.json().cardId);
  shownAs.set(ref, added.json().cardId);
  return ref;
}

/** The number each card was shown by: offers name their card by it, as Vault's clients do. */
const shownAs = new Map<string, number>();

const offerBody = (cardId: string) => ({
  cardId: shownAs.get(cardId) ?? cardId,
  fromCurrency: "EUR",
  toCurrency: "USDC",
  amount: "100.00",
  operation: "PAYIN",
});

async function makeOffer(customer: WalletCaller, cardId: string): Promise<string> {
  const made = await customer.call("POST", "/v3/payin/offer", offerBody(cardId));
  expect(made.statusCode, made.body).toBe(200);
  return coreId("OFFER", made.json().offerId);
}

/** A fresh open offer of Vic's (offers hold 20 s). */
const vicOffer = () => makeOffer(A.vic, A.vicCard);

/** Zoe's open sandbox verification page (KYC_0 may start the KYC_1 check). */
async function zoePage(): Promise<string> {
  const started = await A.zoe.call("POST", "/v2/customer/kyc/start");
  expect(started.statusCode, started.body).toBe(200);
  return new URL(started.json().verificationUrl).pathname;
}

beforeAll(async () => {
  t = await startTestApp({ settings: { sandboxKycDelayMs: 0 } });
  served.push(
    ...t.app.routeTable
      .filter((r) => FACES.some((prefix) => r.url.startsWith(prefix)))
      .map((r) => `${r.method} ${r.url}`),
  );

  const a = await walletClient(t);
  const staffOf = {} as Record<StaffRole, WalletCaller>;
  staffOf.administrator = a.admin;
  for (const role of STAFF_ROLES) if (role !== "administrator") staffOf[role] = await staff(t, a.admin, role);
  const [vic, alice, bob, zoe, drop, nina] = await Promise.all([
    customerAt(a.clientId, 2, "Tor"),
    customerAt(a.clientId, 2, "Liddell"),
    customerAt(a.clientId, 2, "Builder"),
    customerAt(a.clientId, 1, "Zeta"),
    customerAt(a.clientId, 1, "Dropped"),
    customerAt(a.clientId, 0, ""),
  ]);
  const vicCard = await addCard(vic);
  const aliceNumber = approvedCard();
  const aliceCard = await addCard(alice, aliceNumber);
  const bobCard = await addCard(bob);
  const zoeCard = await addCard(zoe);
  const dropCard = await addCard(drop);
  const dropOffer = await makeOffer(drop, dropCard);
  await t.database.db
    .updateTable("users")
    .set({ tier: 0 })
    .where("client_id", "=", a.clientId)
    .where("id", "=", drop.userId)
    .execute();

  const again = await logIn(t, a.clientId, vic.login);
  const out = await again.call("DELETE", "/api/v1/authorization");
  expect(out.statusCode, out.body).toBe(200);

  const c = await walletClient(t);
  const carl = await customerAt(c.clientId, 2, "Carlsen");
  C = { clientId: c.clientId, carl, carlOffer: await makeOffer(carl, await addCard(carl)) };
  A = {
    clientId: a.clientId,
    staff: staffOf,
    vic,
    vicCard,
    alice,
    aliceNumber,
    aliceCard,
    aliceOffer: await makeOffer(alice, aliceCard),
    bob,
    bobOffer: await makeOffer(bob, bobCard),
    zoe,
    zoeOffer: await makeOffer(zoe, zoeCard),
    drop,
    dropCard,
    dropOffer,
    nina,
    revoked: again.token,
  };
});
afterAll(async () => {
  await t?.close();
});

// ——— requests ———

interface Req {
  method: string;
  url: string;
  body?: unknown;
  /** Sent as it is instead of `body` (broken JSON, another content type). */
  raw?: string;
  headers?: Record<string, string>;
}

function send(req: Req, authorization?: string): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { ...req.headers };
  if (authorization !== undefined) headers.authorization = authorization;
  const payload = req.raw ?? (req.body === undefined ? undefined : JSON.stringify(req.body));
  if (payload !== undefined) headers["content-type"] ??= "application/json";
  return t.app.inject({
    method: req.method as "GET",
    url: req.url,
    headers,
    ...(payload === undefined ? {} : { payload }),
  });
}

const as = (who: WalletCaller, req: Req) => send(req, `Bearer ${who.token}`);
const req = (method: string, url: string, body?: unknown): Req => ({
  method,
  url,
  ...(body === undefined ? {} : { body }),
});
const describeReq = (r: Req) =>
  `${r.method} ${r.url.slice(0, 100)} ${(r.raw ?? JSON.stringify(r.body) ?? "").slice(0, 200)}`;

// ——— bad input ———

const HUGE = "x".repeat(100_000);
const LONG = "x".repeat(5_000);
const FORTY_DIGITS = "9".repeat(40);
const BAD_AMOUNTS: unknown[] = [
  "0",
  "-1",
  "1.001",
  FORTY_DIGITS,
  "ten",
  "",
  0,
  -1,
  1.001,
  1e40,
  "9.99",
  "5000.01",
];
const BAD_UUIDS = [
  "not-a-uuid",
  "0",
  "-1",
  "1.5",
  "9".repeat(300),
  "%20",
  "00000000-0000-0000-0000-00000000000g",
];
const BAD_CARD_IDS = [
  "not-a-card",
  "pm_1234",
  `pm_${"x".repeat(36)}`,
  "12345678-1234-4234-8234-123456789012",
];

function withValue(body: unknown, path: string, value: unknown): unknown {
  const copy = structuredClone(body) as Record<string, unknown>;
  const keys = path.split(".");
  let node = copy;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[keys[keys.length - 1] as string] = value;
  return copy;
}

/** Every value inside `body`, with its path. */
function nodes(body: unknown, prefix = ""): { path: string; value: unknown }[] {
  if (body === null || typeof body !== "object") return [];
  return Object.entries(body).flatMap(([key, value]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return [{ path, value }, ...nodes(value, path)];
  });
}

const wrongType = (value: unknown): unknown =>
  Array.isArray(value)
    ? "a list"
    : typeof value === "string"
      ? 12345
      : typeof value === "number"
        ? "7"
        : typeof value === "object"
          ? "an object"
          : null;

interface BadSpec {
  /** String fields: 100,000 and 5,000 characters. */
  strings?: string[];
  /** Amount fields: each of BAD_AMOUNTS (and `true`). */
  amounts?: string[];
  /** `{}` is a valid body. */
  allOptional?: boolean;
  more?: unknown[];
}

/** Bad bodies from a good one: unknown fields (strict), wrong types, broken JSON, oversize strings, amounts. */
function badBodies(base: Req, spec: BadSpec = {}): Req[] {
  const good = base.body as Record<string, unknown>;
  const withBody = (body: unknown): Req => ({ ...base, body });
  const out: Req[] = [
    withBody({ ...good, surprise: "field" }),
    { ...base, body: undefined, raw: "{" },
    { ...base, body: undefined, raw: '{"a": ' },
    withBody([]),
    withBody("text"),
    withBody(null),
    { ...base, body: undefined, raw: "a=1", headers: { "content-type": "text/plain" } },
  ];
  if (!spec.allOptional) out.push(withBody({}));
  for (const { path, value } of nodes(good)) {
    out.push(withBody(withValue(good, path, spec.amounts?.includes(path) ? true : wrongType(value))));
    if (value !== null && typeof value === "object")
      out.push(withBody(withValue(good, path, { ...value, surprise: 1 })));
  }
  for (const path of spec.strings ?? [])
    out.push(withBody(withValue(good, path, HUGE)), withBody(withValue(good, path, LONG)));
  for (const path of spec.amounts ?? [])
    for (const a of BAD_AMOUNTS) out.push(withBody(withValue(good, path, a)));
  for (const body of spec.more ?? []) out.push(withBody({ ...good, ...(body as object) }));
  return out;
}

/** Bad path parameters (with a good body), and broken JSON at a good address. */
function badParams(url: (id: string) => string, good: string, values: string[], body?: unknown): Req[] {
  return [
    ...values.map((v) => ({ method: "POST", url: url(v), ...(body === undefined ? {} : { body }) })),
    { method: "POST", url: url(good), raw: "{" },
  ];
}

// ——— the table ———

interface Level {
  who: () => WalletCaller;
  req: () => Req | Promise<Req>;
  requiredTier: number;
  currentTier: number;
  /** MIN_INFO_MISSING (the profile lacks fields) instead of MIN_ASSESSMENT_MISSING. */
  infoMissing?: boolean;
}

interface Foreign {
  who: () => WalletCaller;
  req: () => Req;
  /** Default 404 (in the envelope); otherwise the status and a check that none of Alice's is in it. */
  status?: number;
  check?: (body: Record<string, unknown>) => void;
}

interface RouteCases {
  /** A customer route (token, customers only); false: the sandbox page (the id is the capability). */
  token: boolean;
  /** Who makes the valid and the bad requests (default Vic). */
  caller?: () => WalletCaller;
  valid: () => Req | Promise<Req>;
  validStatus?: number;
  /** Each a 400 in the envelope that changes nothing. */
  invalid: () => Req[] | Promise<Req[]>;
  /** Below the KYC level: 422 with the assessment. */
  levels?: () => Level[];
  /** Other users (same client) and other clients with Alice's ids. */
  foreign?: () => Foreign[];
}

const bobAndCarl = (req: () => Req): Foreign[] => [
  { who: () => A.bob, req },
  { who: () => C.carl, req },
];

const PROFILE = {
  firstName: "Test",
  lastName: "Tor",
  primaryCurrency: "EUR",
  residenceCountry: "FRA",
  residenceCity: "Paris",
  residenceStreet: "12 Rue de Rivoli",
  residenceZipCode: "75001",
  dateOfBirth: "1990-01-01",
};

const PATCH_CHANGES = {
  ...PROFILE,
  residenceCity: "Lyon",
  residenceZipCode: "69001",
  primaryCurrency: "USD",
};

const billingUrl = (cardId: string) => `/v3/payin/card/${cardId}/billing-address`;
const putUrl = (offerId: string) => `/v3/payin/offer/${offerId}`;
const payUrl = (offerId: string) => `/v3/payin/pay/${offerId}`;
const callbackUrl = (offerId: string) => `/v3/payin/pay-callback?offerId=${offerId}`;
const PUT_BODY = { amount: "50", fromCurrency: "EUR", toCurrency: "USDC", operation: "PAYIN" };
const PAY_BODY = { cardCVV: "123", successUrl: "https://shop.example/ok" };

const routes: Record<string, RouteCases> = {
  // ——— /v2/customer ———
  "GET /v2/customer/profile": {
    token: true,
    valid: () => req("GET", "/v2/customer/profile"),
    invalid: () => [],
    foreign: () =>
      [A.bob, C.carl].map((who) => ({
        who: () => who,
        req: () => req("GET", "/v2/customer/profile"),
        status: 200,
        check: (body) => expect(body.lastName).toBe(who === A.bob ? "Builder" : "Carlsen"),
      })),
  },
  "PATCH /v2/customer/profile": {
    token: true,
    // Vic's profile as it is (a KYC_1 customer may send the same names again).
    valid: () => req("PATCH", "/v2/customer/profile", PROFILE),
    validStatus: 204,
    invalid: () =>
      // Each bad body also carries real changes (city, zip, currency): none of them may be written.
      badBodies(req("PATCH", "/v2/customer/profile", PATCH_CHANGES), {
        allOptional: true,
        strings: ["firstName", "lastName", "residenceCity", "residenceStreet", "residenceZipCode"],
        more: [
          { firstName: "" },
          { firstName: "   " },
          { firstName: "M4rie" },
          { lastName: "<b>Tor</b>" },
          // Vic is at KYC_1: the names are locked.
          { firstName: "Other" },
          { lastName: "Other" },
          { primaryCurrency: "eur" },
          { primaryCurrency: "E" },
          { residenceCountry: "XX" },
          { residenceCountry: "FRAN" },
          { residenceCountry: "F1" },
          { residenceCity: "Paris<" },
          { residenceCity: "" },
          { residenceStreet: "1; DROP TABLE users" },
          { residenceZipCode: "75_001" },
          { dateOfBirth: "2020-01-01" },
          { dateOfBirth: "1990-13-01" },
          { dateOfBirth: "01/01/1990" },
          { dateOfBirth: "1800-01-01" },
          { firstName: null },
        ],
      }),
  },
  "GET /v2/customer/kyc/data": {
    token: true,
    valid: () => req("GET", "/v2/customer/kyc/data"),
    invalid: () => [],
    foreign: () =>
      [A.bob, C.carl].map((who) => ({
        who: () => who,
        req: () => req("GET", "/v2/customer/kyc/data"),
        status: 200,
        check: (body) => expect(body.kycLevel).toBe("KYC_1"),
      })),
  },
  "POST /v2/customer/kyc/start": {
    token: true,
    caller: () => A.zoe,
    valid: () => req("POST", "/v2/customer/kyc/start"),
    invalid: () => [
      { method: "POST", url: "/v2/customer/kyc/start", raw: "{" },
      { method: "POST", url: "/v2/customer/kyc/start", raw: HUGE },
    ],
    levels: () => [
      // A complete profile not (or no longer) accepted: the assessment is missing.
      {
        who: () => A.drop,
        req: () => req("POST", "/v2/customer/kyc/start"),
        requiredTier: 1,
        currentTier: 0,
      },
      // An empty profile: the fields are missing.
      {
        who: () => A.nina,
        req: () => req("POST", "/v2/customer/kyc/start"),
        requiredTier: 1,
        currentTier: 0,
        infoMissing: true,
      },
    ],
  },

  // ——— /v3/payin ———
  "POST /v3/payin/card": {
    token: true,
    valid: () => req("POST", "/v3/payin/card", cardBody()),
    invalid: () =>
      badBodies(req("POST", "/v3/payin/card", cardBody()), {
        strings: [
          "cardNumber",
          "cardHolder",
          "billingAddress.address",
          "billingAddress.city",
          "billingAddress.zip",
        ],
        more: [
          { cardNumber: "4111111111111112" },
          { cardNumber: "4111x11111111111" },
          { cardNumber: "41111" },
          { cardExpirationMonth: 0 },
          { cardExpirationMonth: 13 },
          { cardExpirationMonth: 1.5 },
          { cardExpirationYear: 2020 },
          { cardExpirationYear: 99999 },
          { cardHolder: "R2D2" },
          { cardHolder: "" },
          { billingAddress: { ...billingAddress, countryCode: "fr" } },
          { billingAddress: { ...billingAddress, countryCode: "FRA" } },
          { billingAddress: { ...billingAddress, zip: "75$01" } },
          { billingAddress: { ...billingAddress, address: "<script>" } },
          { billingAddress: { ...billingAddress, state: "" } },
          { billingAddress: { city: "Paris", countryCode: "FR", zip: "75001" } },
        ],
      }),
    levels: () => [
      {
        who: () => A.nina,
        req: () => req("POST", "/v3/payin/card", cardBody()),
        requiredTier: 1,
        currentTier: 0,
      },
    ],
    foreign: () => [
      // Alice's card number (bob holds none of it): a 409 that says nothing of Alice.
      {
        who: () => A.bob,
        req: () => req("POST", "/v3/payin/card", cardBody(A.aliceNumber)),
        status: 409,
      },
    ],
  },
  "POST /v3/payin/card/:cardId/billing-address": {
    token: true,
    valid: () => req("POST", billingUrl(A.vicCard), billingAddress),
    invalid: () => [
      ...badParams(billingUrl, A.vicCard, BAD_CARD_IDS, billingAddress),
      ...badBodies(req("POST", billingUrl(A.vicCard), billingAddress), {
        strings: ["address", "city", "zip"],
        more: [
          { countryCode: "fr" },
          { countryCode: "F" },
          { zip: "75$01" },
          { city: "Paris;" },
          { state: "<NY>" },
          { address: "" },
        ],
      }),
    ],
    levels: () => [
      {
        who: () => A.drop,
        req: () => req("POST", billingUrl(A.dropCard), billingAddress),
        requiredTier: 1,
        currentTier: 0,
      },
    ],
    foreign: () => bobAndCarl(() => req("POST", billingUrl(A.aliceCard), billingAddress)),
  },
  "GET /v3/payin/data": {
    token: true,
    valid: () => req("GET", "/v3/payin/data"),
    invalid: () => [],
    levels: () => [
      { who: () => A.nina, req: () => req("GET", "/v3/payin/data"), requiredTier: 1, currentTier: 0 },
    ],
    foreign: () =>
      [A.bob, C.carl].map((who) => ({
        who: () => who,
        req: () => req("GET", "/v3/payin/data"),
        status: 200,
        check: (body) => {
          const ids = (body.cards as { cardId: string }[]).map((c) => c.cardId);
          expect(ids).toHaveLength(1);
          expect(ids).not.toContain(A.aliceCard);
        },
      })),
  },
  "GET /v3/payin/fiat-rates": {
    token: true,
    valid: () => req("GET", "/v3/payin/fiat-rates"),
    invalid: () => [],
    levels: () => [
      { who: () => A.nina, req: () => req("GET", "/v3/payin/fiat-rates"), requiredTier: 1, currentTier: 0 },
    ],
    // Rates are no one's own: another customer sees the same kind of answer, nothing of A's.
    foreign: () =>
      [A.bob, C.carl].map((who) => ({
        who: () => who,
        req: () => req("GET", "/v3/payin/fiat-rates"),
        status: 200,
        check: (body) => {
          expect(JSON.stringify(body)).not.toContain(A.aliceCard);
        },
      })),
  },
  "POST /v3/payin/offer": {
    token: true,
    valid: () => req("POST", "/v3/payin/offer", offerBody(A.vicCard)),
    invalid: () =>
      badBodies(req("POST", "/v3/payin/offer", offerBody(A.vicCard)), {
        strings: ["cardId"],
        amounts: ["amount"],
        more: [
          ...BAD_CARD_IDS.map((cardId) => ({ cardId })),
          { toCurrency: "DOGE" },
          { toCurrency: "usdc" },
          { fromCurrency: "GBP" },
          { fromCurrency: "USDC" },
          { operation: "PAYOUT" },
          { operation: "payin" },
          { walletAddress: "not-an-address" },
          { walletAddress: "" },
          { walletAddress: HUGE },
          { walletAddress: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq" },
          { toCurrency: "BTC", walletAddress: `0x${"ab".repeat(20)}` },
          { successUrl: "not a url" },
          { successUrl: "javascript:alert(1)" },
          { failUrl: "data:text/html,hi" },
          { successUrl: `https://shop.example/${LONG}` },
          { failUrl: 42 },
        ],
      }),
    levels: () => [
      {
        who: () => A.drop,
        req: () => req("POST", "/v3/payin/offer", offerBody(A.dropCard)),
        requiredTier: 1,
        currentTier: 0,
      },
    ],
    foreign: () => bobAndCarl(() => req("POST", "/v3/payin/offer", offerBody(A.aliceCard))),
  },
  "PUT /v3/payin/offer/:offerId": {
    token: true,
    valid: async () => req("PUT", putUrl(await vicOffer()), PUT_BODY),
    invalid: async () => {
      const offerId = await vicOffer();
      return [
        ...badParams(putUrl, offerId, BAD_UUIDS, PUT_BODY).map((r) => ({ ...r, method: "PUT" })),
        ...badBodies(req("PUT", putUrl(offerId), PUT_BODY), {
          amounts: ["amount"],
          more: [
            { toCurrency: "DOGE" },
            { fromCurrency: "GBP" },
            { operation: "PAYOUT" },
            { cardId: A.vicCard },
            { walletAddress: `0x${"ab".repeat(20)}` },
          ],
        }),
      ];
    },
    levels: () => [
      {
        who: () => A.drop,
        req: async () => {
          // Held open: the level is what this call lacks.
          await t.database.db
            .updateTable("payin_offers")
            .set({ expires_at: new Date(Date.now() + 20_000) })
            .where("id", "=", A.dropOffer)
            .execute();
          return req("PUT", putUrl(A.dropOffer), PUT_BODY);
        },
        requiredTier: 1,
        currentTier: 0,
      },
    ],
    foreign: () => bobAndCarl(() => req("PUT", putUrl(A.aliceOffer), PUT_BODY)),
  },
  "POST /v3/payin/pay/:offerId": {
    token: true,
    valid: async () => req("POST", payUrl(await vicOffer()), PAY_BODY),
    invalid: async () => {
      const offerId = await vicOffer();
      return [
        ...badParams(payUrl, offerId, BAD_UUIDS, PAY_BODY),
        ...badBodies(req("POST", payUrl(offerId), PAY_BODY), {
          strings: ["cardCVV", "successUrl"],
          more: [
            { cardCVV: "12" },
            { cardCVV: "12345" },
            { cardCVV: "12a" },
            { cardCVV: "" },
            { successUrl: "not a url" },
            { successUrl: "javascript:alert(1)" },
            { failUrl: "javascript" },
            { fingerprint: "a string" },
            { fingerprint: { [LONG]: 1 } },
          ],
        }),
      ];
    },
    levels: () => [
      {
        who: () => A.zoe,
        req: () => req("POST", payUrl(A.zoeOffer), { cardCVV: "123" }),
        requiredTier: 2,
        currentTier: 1,
      },
      {
        who: () => A.drop,
        req: () => req("POST", payUrl(A.dropOffer), { cardCVV: "123" }),
        requiredTier: 2,
        currentTier: 0,
      },
    ],
    foreign: () => bobAndCarl(() => req("POST", payUrl(A.aliceOffer), { cardCVV: "123" })),
  },
  "GET /v3/payin/pay-callback": {
    token: true,
    valid: async () => req("GET", callbackUrl(await vicOffer())),
    invalid: async () => {
      const offerId = await vicOffer();
      return [
        ...BAD_UUIDS.map((id) => req("GET", callbackUrl(id))),
        req("GET", "/v3/payin/pay-callback"),
        req("GET", "/v3/payin/pay-callback?offerId="),
        req("GET", `${callbackUrl(offerId)}&surprise=1`),
        req("GET", `${callbackUrl(offerId)}&offerId=${offerId}`),
        req("GET", `/v3/payin/pay-callback?offerid=${offerId}`),
        req("GET", callbackUrl(HUGE)),
      ];
    },
    levels: () => [
      { who: () => A.zoe, req: () => req("GET", callbackUrl(A.zoeOffer)), requiredTier: 2, currentTier: 1 },
    ],
    foreign: () => bobAndCarl(() => req("GET", callbackUrl(A.aliceOffer))),
  },

  // ——— the sandbox KYC page (no token: the id is the capability) ———
  "GET /sandbox/kyc/verification/:id": {
    token: false,
    valid: async () => req("GET", await zoePage()),
    invalid: () => BAD_UUIDS.map((id) => req("GET", `/sandbox/kyc/verification/${id}`)),
  },
  "POST /sandbox/kyc/verification/:id": {
    token: false,
    valid: async () => {
      const path = await zoePage();
      return req("POST", path, { decision: "cancel", csrf: tokenFor(t, path) });
    },
    invalid: async () => {
      const path = await zoePage();
      const form = (payload: string): Req => ({
        method: "POST",
        url: path,
        raw: payload,
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
      return [
        ...BAD_UUIDS.map((id) => req("POST", `/sandbox/kyc/verification/${id}`, { decision: "cancel" })),
        ...badBodies(req("POST", path, { decision: "submit" }), {
          strings: ["decision"],
          more: [{ decision: "approve" }, { decision: "SUBMIT" }],
        }),
        form("decision=approve"),
        form(""),
        form(`decision=${HUGE}`),
      ];
    },
  },
};

// ——— checks ———

function expectEnvelope(response: LightMyRequestResponse, type: string, code: number, what: string) {
  expect(response.headers["content-type"], what).toMatch(/^application\/json/);
  const body = response.json();
  expect(body, what).toMatchObject({ type, code, message: expect.any(String), traceId: expect.any(String) });
  return body;
}

/** Row counts and the rows' contents that bad input must leave as they were. */
async function fingerprint(): Promise<Record<string, unknown>> {
  const { rows } = await sql<Record<string, string>>`
    SELECT
      (SELECT concat_ws('/', count(*), string_agg(concat_ws(',', id, status, amount, to_amount, from_currency,
                          to_currency, request_id, expires_at, updated_at), ';' ORDER BY id)) FROM payin_offers) AS offers,
      (SELECT concat_ws('/', count(*), string_agg(concat_ws(',', id, user_id, sealed_details), ';' ORDER BY id))
         FROM payment_methods) AS methods,
      (SELECT concat_ws('/', count(*), max(updated_at), string_agg(status, ',' ORDER BY number)) FROM transactions) AS transactions,
      (SELECT count(*)::text FROM sandbox_acquirer_charges) AS charges,
      (SELECT concat_ws('/', count(*), string_agg(concat_ws(',', id, status, updated_at), ';' ORDER BY id))
         FROM sandbox_kyc_verifications) AS verifications,
      (SELECT string_agg(concat_ws(',', user_id, ciphertext, updated_at), ';' ORDER BY user_id) FROM user_pii) AS pii,
      (SELECT string_agg(concat_ws(',', id, tier, updated_at), ';' ORDER BY id) FROM users) AS users,
      (SELECT string_agg(concat_ws(',', id, primary_currency, updated_at), ';' ORDER BY id) FROM logins) AS logins,
      (SELECT count(*)::text FROM user_assessments) AS assessments`.execute(t.database.db);
  return rows[0] ?? {};
}

const callerOf = (c: RouteCases) => (c.caller ?? (() => A.vic))();

describe("every Pay-in route", () => {
  it("has cases here, and every route here exists", () => {
    expect(served.length).toBeGreaterThan(0);
    expect([...served].sort()).toEqual(Object.keys(routes).sort());
  });

  it("agrees with the OpenAPI document: customer routes need walletToken; routes with input have bad-input cases", async () => {
    const doc = (await t.app.inject({ method: "GET", url: "/openapi.json" })).json();
    for (const [name, c] of Object.entries(routes)) {
      const [method = "", path = ""] = name.split(" ");
      const operation = doc.paths[path.replace(/:(\w+)/g, "{$1}")]?.[method.toLowerCase()];
      expect(operation, name).toBeDefined();
      const security = (operation.security ?? []) as Record<string, unknown>[];
      expect(
        security.some((s) => "walletToken" in s),
        name,
      ).toBe(c.token);
      const inputs = (operation.parameters ?? []).filter(
        (p: { in: string }) => p.in === "path" || p.in === "query",
      );
      if (operation.requestBody || inputs.length > 0)
        expect((await c.invalid()).length, `${name}: bad-input cases`).toBeGreaterThan(0);
    }
  });

  for (const [name, c] of Object.entries(routes)) {
    if (c.token) {
      it(`${name}: 401 without a token, with garbage, with a revoked token; 403 for every staff role`, async () => {
        const request = await c.valid();
        for (const authorization of [
          undefined,
          "",
          "Bearer garbage-garbage-garbage-garbage",
          "Bearer x",
          `Bearer ${A.revoked}`,
          `Basic ${Buffer.from(`${A.vic.login}:x`).toString("base64")}`,
        ]) {
          const response = await send(request, authorization);
          const what = `${name} with ${String(authorization).slice(0, 40)}: ${response.body}`;
          expect(response.statusCode, what).toBe(401);
          expect(response.headers["www-authenticate"], what).toMatch(/^Bearer realm="ferry-wallet"/);
          expectEnvelope(response, "UNAUTHORIZED", 2001, what);
        }
        for (const role of STAFF_ROLES) {
          const response = await as(A.staff[role], request);
          const what = `${name} as ${role}: ${response.body}`;
          expect(response.statusCode, what).toBe(403);
          expect(expectEnvelope(response, "FORBIDDEN", 4001, what).message, what).toMatch(
            new RegExp(`^the role ${role} may not do this`),
          );
        }
      });
    }

    it(`${name}: a valid request → ${c.validStatus ?? 200}`, async () => {
      const request = await c.valid();
      const response = c.token ? await as(callerOf(c), request) : await send(request);
      expect(response.statusCode, `${describeReq(request)}: ${response.body}`).toBe(c.validStatus ?? 200);
    });

    it(`${name}: bad input → 400 in the envelope, nothing changed`, async () => {
      const requests = await c.invalid();
      const authorization = c.token ? `Bearer ${callerOf(c).token}` : undefined;
      const before = await fingerprint();
      const profile = c.token
        ? (await as(callerOf(c), req("GET", "/v2/customer/profile"))).json()
        : undefined;
      const failures: string[] = [];
      for (const request of requests) {
        const response = await send(request, authorization);
        const json = response.headers["content-type"]?.toString().startsWith("application/json");
        const body = json ? response.json() : {};
        if (
          response.statusCode !== 400 ||
          body.type !== "INVALID_REQUEST" ||
          body.code !== 1000 ||
          typeof body.message !== "string" ||
          typeof body.traceId !== "string"
        )
          failures.push(`${describeReq(request)} → ${response.statusCode} ${response.body.slice(0, 300)}`);
      }
      expect(failures, failures.join("\n")).toEqual([]);
      expect(await fingerprint()).toEqual(before);
      if (profile)
        expect((await as(callerOf(c), req("GET", "/v2/customer/profile"))).json()).toEqual(profile);
    });

    if (c.levels)
      it(`${name}: below the KYC level → 422 with the assessment, nothing changed`, async () => {
        for (const level of c.levels?.() ?? []) {
          const request = await level.req();
          const before = await fingerprint();
          const response = await as(level.who(), request);
          const what = `${describeReq(request)}: ${response.body}`;
          expect(response.statusCode, what).toBe(422);
          if (level.infoMissing)
            expect(expectEnvelope(response, "MIN_INFO_MISSING", 1001, what).fields, what).toEqual(
              expect.arrayContaining([expect.any(String)]),
            );
          else
            expect(expectEnvelope(response, "MIN_ASSESSMENT_MISSING", 1002, what).assessment, what).toEqual({
              requiredTier: level.requiredTier,
              currentTier: level.currentTier,
            });
          expect(await fingerprint(), what).toEqual(before);
        }
      });
  }

  // Source bug: POST /v3/payin/offer looks the card up (and checks walletAddress) before the level,
  // unlike POST /v3/payin/card/:cardId/billing-address; a tier-0 customer, who cannot add a card
  // here, gets a 404 "no card" where the spec says "a call without the level → 422".
  it("POST /v3/payin/offer at tier 0 with a card the customer does not hold → 422 (the level), not 404", async () => {
    const response = await as(A.nina, req("POST", "/v3/payin/offer", offerBody(A.vicCard)));
    expect(response.statusCode, response.body).toBe(422);
    expect(response.json().assessment).toEqual({ requiredTier: 1, currentTier: 0 });
  });
});

describe("across users and clients: Bob (Alice's client) and Carl (client C) with Alice's ids", () => {
  /** Alice's offer and card rows, her charges and purchases, as they were. */
  async function aliceState() {
    const db = t.database.db;
    return {
      offer: await db
        .selectFrom("payin_offers")
        .selectAll()
        .where("id", "=", A.aliceOffer)
        .executeTakeFirst(),
      card: await db
        .selectFrom("payment_methods")
        .selectAll()
        .where("id", "=", A.aliceCard)
        .executeTakeFirst(),
      purchases: await db
        .selectFrom("transactions")
        .select(["request_id", "status"])
        .where("client_id", "=", A.clientId)
        .where("user_id", "=", A.alice.userId)
        .execute(),
    };
  }
  let before: Record<string, unknown>;
  let alice: Awaited<ReturnType<typeof aliceState>>;
  beforeAll(async () => {
    before = await fingerprint();
    alice = await aliceState();
    expect(alice.offer).toMatchObject({ status: "OPEN", request_id: null });
    expect(alice.purchases).toEqual([]);
  });

  for (const [name, c] of Object.entries(routes)) {
    if (!c.foreign) continue;
    it(`${name}: another user's or client's ids → 404, never Alice's data`, async () => {
      for (const f of c.foreign?.() ?? []) {
        const request = f.req();
        const response = await as(f.who(), request);
        const what = `${describeReq(request)} as ${f.who().login}: ${response.statusCode} ${response.body}`;
        expect(response.statusCode, what).toBe(f.status ?? 404);
        if (f.status === undefined) expectEnvelope(response, "NOT_FOUND", 4004, what);
        f.check?.(response.json());
        for (const secret of [A.alice.login, A.alice.userId, "Liddell", `******${A.aliceNumber.slice(-4)}`])
          expect(response.body, what).not.toContain(secret);
      }
    });
  }

  it("paying another user's or client's offer → 404, not a charge; their offers stay open", async () => {
    const db = t.database.db;
    const offers = () =>
      db.selectFrom("payin_offers").selectAll().where("id", "in", [A.bobOffer, C.carlOffer]).execute();
    const theirs = await offers();
    for (const offerId of [A.bobOffer, C.carlOffer]) {
      const paid = await as(A.alice, req("POST", payUrl(offerId), { cardCVV: "123" }));
      expect(paid.statusCode, paid.body).toBe(404);
      expectEnvelope(paid, "NOT_FOUND", 4004, paid.body);
      const status = await as(A.alice, req("GET", callbackUrl(offerId)));
      expect(status.statusCode, status.body).toBe(404);
    }
    expect(await offers()).toEqual(theirs);
  });

  it("nothing changed: Alice's offer is open and unpaid, her card as it was, no charge anywhere", async () => {
    expect(await fingerprint()).toEqual(before);
    expect(await aliceState()).toEqual(alice);
    const status = await as(A.alice, req("GET", callbackUrl(A.aliceOffer)));
    expect(status.statusCode, status.body).toBe(200);
    expect(status.json()).toMatchObject({ transactionDate: null });
    expect(await coreId("OFFER", status.json().offerId)).toBe(A.aliceOffer);
    expect(status.json().status).not.toBe("SUCCESS");
  });
});
