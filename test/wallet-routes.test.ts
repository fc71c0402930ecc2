import type { LightMyRequestResponse } from "fastify";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PERMISSIONS, type Permission } from "../src/http/wallet-session.ts";
import { ROLES, type Role } from "../src/modules/logins/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import {
  balances,
  lastOtp,
  logIn,
  NO_KYC_LIMITS,
  openCoin,
  PASSWORD,
  registerCustomer,
  setUpUsd,
  staff,
  topUp,
  uniqueLogin,
  type WalletCaller,
  walletClient,
} from "./wallet.ts";

/**
 * Every /api/v1 route: the token (401), the role (403, from PERMISSIONS), a valid request, bad input
 * (400 in the envelope, nothing changed) and tenancy (client B never reaches client A's data: 404).
 * A test fails when a /api/v1 route has no cases here, or when this table names a route that is gone.
 */

let t: TestApp;
const served: string[] = [];

interface World {
  clientId: string;
  bankId: string;
  issuerId: string;
  systemOrganizationId: string;
  roles: Record<Role, WalletCaller>;
  /** The client's individual customer (roles.individual) and another one, each with a USD account. */
  anna: WalletCaller;
  ben: WalletCaller;
  annaCoin: string;
  benCoin: string;
}

interface Extras {
  /** A customer whose country of residence the AML check reviews: each of its requests is held. */
  risky: WalletCaller;
  riskyCoin: string;
  /** Anna's transfer to Ben (a business process id), a template saved from it, a smart card of Anna's. */
  transferId: string;
  templateId: string;
  cardNumber: string;
  /** Anna's pending top-up request, her pending withdrawal, and the risky customer's held withdrawal. */
  topUpRid: number;
  withdrawalRid: number;
  cardWithdrawalRid: number;
  heldRid: number;
  /** A staff user the PATCH /users/:userId cases may change. */
  spare: WalletCaller;
  /** The id of a currency of client A's own (client B has no currency of that code). */
  onlyACurrencyId: string;
}

let A: World & Extras;
let B: World;
/** A token of each role of client A, revoked by DELETE /api/v1/authorization. */
const revoked = {} as Record<Role, string>;

/** Money may move at tier 0, and the AML check reviews nothing for its amount or its pace. */
const SETTINGS = {
  ...NO_KYC_LIMITS,
  monitoring: {
    singleAmountReviewUsd: 1e12,
    dailyTotalReviewUsd: 1e12,
    newUserFirstAmountReviewUsd: 1e12,
    velocityCount: 1_000_000,
  },
};

async function world(): Promise<World> {
  const { clientId, admin } = await walletClient(t, { settings: SETTINGS });
  const { bankId } = await setUpUsd(admin);
  // The client's own points, valued at one cent each.
  const points = await admin.call("POST", "/api/v1/currencies", {
    code: "PTS",
    name: "Points",
    fraction: 0,
    usdRate: "0.01",
  });
  expect(points.statusCode, points.body).toBe(201);
  const accountant = await staff(t, admin, "accountant");
  const compliance = await staff(t, admin, "compliance_officer");
  const support = await staff(t, admin, "support");
  const anna = await registerCustomer(t, clientId);
  const merchant = await registerCustomer(t, clientId, "merchant");
  const ben = await registerCustomer(t, clientId);
  const annaCoin = await openCoin(anna);
  const benCoin = await openCoin(ben);
  for (let i = 0; i < 4; i++) await topUp(accountant, bankId, annaCoin, "250.00");
  const issuers = await admin.call("GET", "/api/v1/issuers");
  expect(issuers.statusCode, issuers.body).toBe(200);
  const organizations = await admin.call("POST", "/api/v1/organizations", { filter: { types: ["system"] } });
  expect(organizations.statusCode, organizations.body).toBe(200);
  return {
    clientId,
    bankId,
    issuerId: issuers.json().records[0].id,
    systemOrganizationId: organizations.json().records[0].id,
    roles: {
      administrator: admin,
      accountant,
      compliance_officer: compliance,
      support,
      individual: anna,
      merchant,
    },
    anna,
    ben,
    annaCoin,
    benCoin,
  };
}

/** A valid German IBAN of its own for each payee (an IBAN belongs to one user). */
let ibans = 0;
const ibanOwners = new Map<string, string>();
function ibanOf(userId: string): string {
  const known = ibanOwners.get(userId);
  if (known) return known;
  const bban = `3704004405320${String(++ibans).padStart(5, "0")}`;
  const check = String(98n - (BigInt(`${bban}131400`) % 97n)).padStart(2, "0");
  const iban = `DE${check}${bban}`;
  ibanOwners.set(userId, iban);
  return iban;
}
const bankDetailsOf = (customer: WalletCaller) => ({
  fullName: "Anna Example",
  iban: ibanOf(customer.userId),
  bic: "COBADEFFXXX",
});
const card = {
  cardNumber: "4242424242424242",
  expirationMonth: 12,
  expirationYear: 2031,
  cvv: "123",
  cardHolder: "Anna Example",
};

async function withdrawal(customer: WalletCaller, serial: string, amount = "1.00") {
  const response = await customer.call("POST", "/api/v1/bank-withdrawals/with-bank", {
    coinSerial: serial,
    amount,
    bankDetails: bankDetailsOf(customer),
  });
  expect(response.statusCode, response.body).toBe(200);
  return response.json() as { requestIdentifier: number; status: string };
}

const payoutCard = {
  cardNumber: "5555555555554444",
  expirationMonth: 12,
  expirationYear: 2031,
  cardHolder: "Anna Example",
};

async function cardWithdrawal(customer: WalletCaller, serial: string, amount = "1.00") {
  const response = await customer.call("POST", "/api/v1/card-withdrawals", {
    coinSerial: serial,
    amount,
    card: payoutCard,
  });
  expect(response.statusCode, response.body).toBe(200);
  return response.json() as { requestIdentifier: number; status: string };
}

async function topUpRequest(customer: WalletCaller, serial: string) {
  const response = await customer.call("POST", "/api/v1/bank-top-ups/create-request/with-bank", {
    coinSerial: serial,
    amount: "5.00",
  });
  expect(response.statusCode, response.body).toBe(200);
  return response.json() as { requestIdentifier: number; status: string };
}

beforeAll(async () => {
  t = await startTestApp();
  served.push(
    // (The CORS preflight, OPTIONS /api/v1/*, has its own test: token-cors.test.ts.)
    ...t.app.routeTable
      .filter((r) => r.url.startsWith("/api/v1") && r.method !== "OPTIONS")
      .map((r) => `${r.method} ${r.url}`),
  );
  const a = await world();
  B = await world();

  const risky = await registerCustomer(t, a.clientId);
  const riskyCoin = await openCoin(risky);
  await topUp(a.roles.accountant, a.bankId, riskyCoin, "200.00");
  // Resident in a country of the default high-risk list: the AML check holds each request for review.
  const profile = await risky.call("PATCH", "/api/v1/profile", { countryOfResidence: "VE" });
  expect(profile.statusCode, profile.body).toBe(200);
  const held = await withdrawal(risky, riskyCoin);
  expect(held.status).toBe("waiting_for_approval");

  const sent = await a.anna.call("POST", "/api/v1/transfers", {
    paymentTool: { type: "COIN", srcValue: a.annaCoin, destValue: a.benCoin },
    amount: "10.00",
  });
  expect(sent.statusCode, sent.body).toBe(200);
  const transferId = sent.json().process.id;
  const saved = await a.anna.call("POST", `/api/v1/templates/transfer/operation/${transferId}`, {
    name: "To Ben",
  });
  expect(saved.statusCode, saved.body).toBe(201);
  const issued = await a.anna.call("POST", "/api/v1/smart-cards/my", {
    name: "Anna's card",
    associatedCoinSerial: a.annaCoin,
  });
  expect(issued.statusCode, issued.body).toBe(201);

  const onlyA = await a.roles.administrator.call("POST", "/api/v1/currencies", {
    code: "ONLYA",
    name: "Client A's own",
    fraction: 2,
  });
  expect(onlyA.statusCode, onlyA.body).toBe(201);

  A = {
    ...a,
    onlyACurrencyId: onlyA.json().id,
    risky,
    riskyCoin,
    transferId,
    templateId: saved.json().template.id,
    cardNumber: issued.json().smartCard.cardNumber,
    topUpRid: (await topUpRequest(a.anna, a.annaCoin)).requestIdentifier,
    withdrawalRid: (await withdrawal(a.anna, a.annaCoin)).requestIdentifier,
    cardWithdrawalRid: (await cardWithdrawal(a.anna, a.annaCoin)).requestIdentifier,
    heldRid: held.requestIdentifier,
    spare: await staff(t, a.roles.administrator, "support"),
  };

  for (const role of ROLES) {
    const again = await logIn(t, A.clientId, A.roles[role].login);
    const out = await again.call("DELETE", "/api/v1/authorization");
    expect(out.statusCode, out.body).toBe(200);
    revoked[role] = again.token;
  }
});
afterAll(async () => {
  await t.close();
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

const post = (url: string, body?: unknown, headers?: Record<string, string>): Req => ({
  method: "POST",
  url,
  ...(body === undefined ? {} : { body }),
  ...(headers ? { headers } : {}),
});
/** A call made before there is a token: it names client A with X-Client-Id. */
const pre = (url: string, body: unknown): Req => post(url, body, { "x-client-id": A.clientId });

const describeReq = (r: Req) =>
  `${r.method} ${r.url.slice(0, 120)} ${(r.raw ?? JSON.stringify(r.body) ?? "").slice(0, 400)} ${JSON.stringify(
    r.headers ?? {},
  ).slice(0, 120)}`;

// ——— bad input ———

const HUGE = "x".repeat(100_000);
const LONG = "x".repeat(5_000);
const FORTY_DIGITS = "9".repeat(40);
/** Not USD rates: zero, negative, more than 12 decimals or 15 digits, not decimal, not exact. */
const BAD_RATES: unknown[] = [
  "0",
  "0.000",
  "-1",
  "1.0000000000001",
  "1234567890123456",
  "ten",
  "",
  " 1",
  "1e3",
  0,
  -1,
  1e-7,
  1e40,
];
/** Amounts no route may take: zero, negative, beyond USD's scale, 40 digits, not numbers. */
const BAD_AMOUNTS: unknown[] = ["0", "-1", "1.001", FORTY_DIGITS, "ten", "", "1e3", 0, -1, 1.001, 1e40];

type Path = string;

function withValue(body: unknown, path: Path, value: unknown): unknown {
  const copy = structuredClone(body) as Record<string, unknown>;
  const keys = path.split(".");
  let node = copy;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[keys[keys.length - 1] as string] = value;
  return copy;
}

/** Every value inside `body` (not the root), with its path. */
function nodes(body: unknown, prefix = ""): { path: Path; value: unknown }[] {
  if (body === null || typeof body !== "object") return [];
  return Object.entries(body).flatMap(([key, value]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return [{ path, value }, ...nodes(value, path)];
  });
}

function wrongType(value: unknown, amount: boolean): unknown {
  if (amount) return true;
  if (Array.isArray(value)) return "a list";
  switch (typeof value) {
    case "string":
      return 12345;
    case "number":
      return "7";
    case "boolean":
      return "yes";
    case "object":
      return "an object";
    default:
      return null;
  }
}

interface BadSpec {
  /** String fields: 100,000 and 5,000 characters. */
  strings?: Path[];
  /** Amount fields, with the amounts to try (default BAD_AMOUNTS). */
  amounts?: Path[];
  amountCases?: unknown[];
  /** Every field is optional: `{}` is a valid body. */
  allOptional?: boolean;
  /** The route takes an Idempotency-Key. */
  idempotent?: boolean;
  more?: unknown[];
}

/**
 * Bad bodies for a route from a good one: an unknown field (bodies are strict) at the top and in each
 * nested object, each field of the wrong type, broken JSON, not an object, another content type,
 * nothing at all, oversize strings, bad amounts.
 */
function badBodies(base: Req, spec: BadSpec = {}): Req[] {
  const good = base.body as Record<string, unknown>;
  const amounts = spec.amounts ?? [];
  const withBody = (body: unknown): Req => ({ ...base, body });
  const out: Req[] = [
    withBody({ ...good, surprise: "field" }),
    { ...base, body: undefined, raw: "{" },
    { ...base, body: undefined, raw: '{"a": ' },
    withBody([]),
    withBody("text"),
    withBody(null),
    { ...base, body: undefined, raw: "a=1", headers: { ...base.headers, "content-type": "text/plain" } },
  ];
  if (!spec.allOptional) out.push(withBody({}));
  for (const { path, value } of nodes(good)) {
    out.push(withBody(withValue(good, path, wrongType(value, amounts.includes(path)))));
    if (value !== null && typeof value === "object" && !Array.isArray(value))
      out.push(withBody(withValue(good, path, { ...value, surprise: 1 })));
  }
  for (const path of spec.strings ?? [])
    out.push(withBody(withValue(good, path, HUGE)), withBody(withValue(good, path, LONG)));
  for (const path of amounts)
    for (const amount of spec.amountCases ?? BAD_AMOUNTS) out.push(withBody(withValue(good, path, amount)));
  for (const body of spec.more ?? []) out.push(withBody(body));
  if (spec.idempotent) out.push({ ...base, headers: { ...base.headers, "idempotency-key": "no" } });
  return out;
}

/** Bad path parameters for a route whose parameter is replaced in `url(x)`; a broken JSON body too. */
function badParams(url: (value: string) => string, values: string[], method = "POST"): Req[] {
  return [...values.map((v) => ({ method, url: url(v) })), { method, url: url(values[0] ?? "x"), raw: "{" }];
}
const BAD_REQUEST_IDENTIFIERS = ["abc", "-1", "1.5", "0x10", "1234567890123456789", "9".repeat(300), "%20"];
const BAD_UUIDS = ["not-a-uuid", "1234", "9".repeat(300), "%20"];
const BAD_PROCESS_IDS = ["ab", "bad%20id", "x".repeat(300), "a.b.c", "%00abc"];

const pageCases = (url: string): Req[] =>
  ["pageSize=0", "pageSize=101", "pageNumber=-1", "pageSize=abc", "pageNumber=1.5", "surprise=1"].map(
    (q) => ({ method: "GET", url: `${url}?${q}` }),
  );

let unique = 0;
const next = () => (++unique).toString(36).toUpperCase().padStart(2, "0");

// ——— the table ———

interface Foreign {
  /** Client B's caller. */
  as: () => WalletCaller;
  req: Req;
  /** For lists: what the answer must (not) hold; otherwise the answer must be a 404. */
  check?: (body: { records?: { id?: string }[] }) => void;
}

interface RouteCases {
  /** What the route needs (null: a call made before there is a token, with X-Client-Id). */
  permission: Permission | null;
  /** A valid request, made fresh each time (it may create what it needs first). */
  valid: () => Req | Promise<Req>;
  /** The status of the valid request (default: any 2xx). */
  validStatus?: number;
  /** Bad input: each a 400 in the envelope that changes nothing. */
  invalid: () => Req[] | Promise<Req[]>;
  /** Money routes: the balances must not move on bad input. */
  money?: boolean;
  /** The request ends the caller's token: every call logs in anew. */
  fresh?: boolean;
  /** Client B reaching for client A's data. */
  foreign?: () => Foreign[];
}

/** Who makes the valid request of a permission. */
const HOLDER: Record<Permission, Role> = {
  "setup.write": "administrator",
  "setup.read": "support",
  "rates.write": "administrator",
  "rates.read": "support",
  "users.write": "administrator",
  "users.read": "support",
  "money.record": "accountant",
  "money.decide": "accountant",
  "review.decide": "compliance_officer",
  own: "individual",
  "processes.read": "individual",
  session: "individual",
};

async function twoFactorLogin(): Promise<string> {
  const login = uniqueLogin("twofa");
  const made = await A.roles.administrator.call("POST", "/api/v1/users", {
    login,
    role: "support",
    password: PASSWORD,
    twoFactor: true,
  });
  expect(made.statusCode, made.body).toBe(201);
  const started = await send(pre("/api/v1/authorization", { login, password: PASSWORD }));
  expect(started.json()).toEqual({ action: "OTP_SENT" });
  return login;
}

async function startRegistration(): Promise<string> {
  const login = uniqueLogin("reg");
  const started = await send(pre("/api/v1/registration", { login, role: "individual" }));
  expect(started.statusCode, started.body).toBe(200);
  return login;
}

async function startRecovery(): Promise<{ login: string; otp: string }> {
  const customer = await registerCustomer(t, A.clientId);
  const started = await send(pre("/api/v1/password/recovery", { login: customer.login }));
  expect(started.statusCode, started.body).toBe(200);
  return { login: customer.login, otp: await lastOtp(t, A.clientId, customer.login) };
}

const calculateRoute = (path: string): RouteCases => ({
  permission: "processes.read",
  valid: () => post(path, { coinSerial: A.annaCoin, amount: "10.00" }),
  invalid: () =>
    badBodies(post(path, { coinSerial: A.annaCoin, amount: "10.00" }), {
      strings: ["coinSerial"],
      amounts: ["amount"],
      more: [{ coinSerial: "12345", amount: "1" }, { amount: "1" }],
    }),
  money: true,
  foreign: () => [
    { as: () => B.anna, req: post(path, { coinSerial: A.annaCoin, amount: "10.00" }) },
    { as: () => B.roles.administrator, req: post(path, { coinSerial: A.annaCoin, amount: "10.00" }) },
  ],
});

function decideRoute(
  kind: "bank-top-ups" | "bank-withdrawals" | "card-withdrawals",
  verb: string,
): RouteCases {
  const url = (rid: string | number) => `/api/v1/${kind}/${rid}/${verb}`;
  return {
    permission: "money.decide",
    valid: async () => {
      if (kind === "bank-top-ups")
        return post(url((await topUpRequest(A.anna, A.annaCoin)).requestIdentifier));
      if (kind === "card-withdrawals")
        return post(url((await cardWithdrawal(A.anna, A.annaCoin)).requestIdentifier));
      return post(url((await withdrawal(A.anna, A.annaCoin)).requestIdentifier));
    },
    invalid: () => badParams(url, BAD_REQUEST_IDENTIFIERS),
    money: true,
    foreign: () => [
      { as: () => B.roles.accountant, req: post(url(A.topUpRid)) },
      { as: () => B.roles.accountant, req: post(url(A.withdrawalRid)) },
      { as: () => B.roles.accountant, req: post(url(A.cardWithdrawalRid)) },
      { as: () => B.roles.administrator, req: post(url(A.heldRid)) },
    ],
  };
}

function amlRoute(verb: "clear" | "reject"): RouteCases {
  const url = (rid: string | number) => `/api/v1/aml-reviews/${rid}/${verb}`;
  return {
    permission: "review.decide",
    valid: async () => {
      const held = await withdrawal(A.risky, A.riskyCoin);
      expect(held.status).toBe("waiting_for_approval");
      return post(url(held.requestIdentifier));
    },
    invalid: () => badParams(url, BAD_REQUEST_IDENTIFIERS),
    money: true,
    foreign: () => [
      { as: () => B.roles.compliance_officer, req: post(url(A.heldRid)) },
      { as: () => B.roles.administrator, req: post(url(A.heldRid)) },
    ],
  };
}

const routes: Record<string, RouteCases> = {
  // ——— access ———
  "POST /api/v1/authorization": {
    permission: null,
    valid: () => pre("/api/v1/authorization", { login: A.roles.support.login, password: PASSWORD }),
    invalid: () => {
      const base = pre("/api/v1/authorization", { login: A.roles.support.login, password: PASSWORD });
      return [
        ...badBodies(base, { strings: ["login", "password"], more: [{ login: "ab", password: PASSWORD }] }),
        { ...base, headers: { "x-client-id": "bad id!" } },
        { ...base, headers: { "x-client-id": "x".repeat(300) } },
      ];
    },
  },
  "POST /api/v1/authorization/confirm": {
    permission: null,
    valid: async () => {
      const login = await twoFactorLogin();
      return pre("/api/v1/authorization/confirm", { login, otp: await lastOtp(t, A.clientId, login) });
    },
    invalid: () =>
      badBodies(pre("/api/v1/authorization/confirm", { login: "someone@example.com", otp: "123456" }), {
        strings: ["login", "otp"],
        more: [
          { login: "someone@example.com", otp: "12345" },
          { login: "someone@example.com", otp: "abcdef" },
          { login: "someone@example.com", otp: "1234567" },
        ],
      }),
  },
  "POST /api/v1/authorization/resend-otp": {
    permission: null,
    valid: async () => pre("/api/v1/authorization/resend-otp", { login: await twoFactorLogin() }),
    invalid: () =>
      badBodies(pre("/api/v1/authorization/resend-otp", { login: "someone@example.com" }), {
        strings: ["login"],
      }),
  },
  "DELETE /api/v1/authorization": {
    permission: "session",
    fresh: true,
    valid: () => ({ method: "DELETE", url: "/api/v1/authorization" }),
    invalid: () => [{ method: "DELETE", url: "/api/v1/authorization", raw: "{" }],
  },
  "POST /api/v1/password/change": {
    permission: "session",
    valid: () => post("/api/v1/password/change", { oldPassword: PASSWORD, newPassword: PASSWORD }),
    invalid: () =>
      badBodies(post("/api/v1/password/change", { oldPassword: PASSWORD, newPassword: PASSWORD }), {
        strings: ["oldPassword", "newPassword"],
        more: [
          { oldPassword: PASSWORD, newPassword: "weak" },
          { oldPassword: PASSWORD, newPassword: "nouppercase1#" },
        ],
      }),
  },
  "POST /api/v1/registration": {
    permission: null,
    valid: () => pre("/api/v1/registration", { login: uniqueLogin("reg"), role: "individual" }),
    invalid: () =>
      badBodies(
        pre("/api/v1/registration", {
          login: "new-person@example.com",
          role: "individual",
          legalType: "individual",
        }),
        {
          strings: ["login"],
          more: [
            { login: "new-person@example.com", role: "administrator" },
            { login: "new-person@example.com", role: "individual", legalType: "robot" },
            { login: "not a login", role: "individual" },
          ],
        },
      ),
  },
  "POST /api/v1/registration/confirm": {
    permission: null,
    valid: async () => {
      const login = await startRegistration();
      return pre("/api/v1/registration/confirm", {
        login,
        otp: await lastOtp(t, A.clientId, login),
        password: PASSWORD,
      });
    },
    invalid: async () => {
      const login = await startRegistration();
      const otp = await lastOtp(t, A.clientId, login);
      return [
        ...badBodies(
          pre("/api/v1/registration/confirm", {
            login: "someone@example.com",
            otp: "123456",
            password: PASSWORD,
          }),
          { strings: ["login", "otp", "password"] },
        ),
        // A real code with a password that breaks a rule: 400 saying which, and nothing is made.
        ...["Sh0rt#", "alllowercase1#", "ALLUPPERCASE1#", "NoDigits#Here", "NoSpecial1Here"].map((password) =>
          pre("/api/v1/registration/confirm", { login, otp, password }),
        ),
      ];
    },
  },
  "POST /api/v1/registration/resend-otp": {
    permission: null,
    valid: async () => pre("/api/v1/registration/resend-otp", { login: await startRegistration() }),
    invalid: () =>
      badBodies(pre("/api/v1/registration/resend-otp", { login: "someone@example.com" }), {
        strings: ["login"],
      }),
  },
  "POST /api/v1/password/recovery": {
    permission: null,
    valid: async () =>
      pre("/api/v1/password/recovery", { login: (await registerCustomer(t, A.clientId)).login }),
    invalid: () =>
      badBodies(pre("/api/v1/password/recovery", { login: "someone@example.com" }), { strings: ["login"] }),
  },
  "POST /api/v1/password/recovery/confirm": {
    permission: null,
    valid: async () => {
      const { login, otp } = await startRecovery();
      return pre("/api/v1/password/recovery/confirm", { login, otp, password: "N3w#Password" });
    },
    invalid: async () => {
      const { login, otp } = await startRecovery();
      return [
        ...badBodies(
          pre("/api/v1/password/recovery/confirm", {
            login: "someone@example.com",
            otp: "123456",
            password: PASSWORD,
          }),
          { strings: ["login", "otp", "password"] },
        ),
        pre("/api/v1/password/recovery/confirm", { login, otp, password: "weak" }),
        pre("/api/v1/password/recovery/confirm", { login, otp, password: "nouppercase1#" }),
      ];
    },
  },

  // ——— users ———
  "PATCH /api/v1/profile": {
    permission: "own",
    valid: () => ({ method: "PATCH", url: "/api/v1/profile", body: { name: { firstName: "Anna" } } }),
    invalid: () =>
      badBodies(
        {
          method: "PATCH",
          url: "/api/v1/profile",
          body: {
            name: { firstName: "Anna", lastName: "Example" },
            emails: ["anna@example.com"],
            dateOfBirth: "1990-01-01",
            countryOfResidence: "DE",
            sourceOfFunds: "salary",
          },
        },
        {
          allOptional: true,
          strings: ["name.firstName", "sourceOfFunds", "emails.0"],
          more: [
            { dateOfBirth: "1990-13-45" },
            { countryOfResidence: "Germany" },
            { emails: ["not-an-email"] },
            { phones: ["call me"] },
            { piis: [{ type: "PASSPORT", value: "1" }] },
            { name: { firstName: "" } },
          ],
        },
      ),
  },
  "POST /api/v1/organizations": {
    permission: "users.read",
    valid: () =>
      post("/api/v1/organizations", { pageNumber: 0, pageSize: 10, filter: { types: ["system"] } }),
    invalid: () =>
      badBodies(
        post("/api/v1/organizations", { pageNumber: 0, pageSize: 10, filter: { types: ["system"] } }),
        {
          allOptional: true,
          more: [
            { pageSize: 0 },
            { pageSize: 101 },
            { pageNumber: -1 },
            { pageNumber: 1.5 },
            { filter: { types: ["robots"] } },
            { sort: { createdAt: "up" } },
          ],
        },
      ),
  },
  "POST /api/v1/users": {
    permission: "users.write",
    valid: () => post("/api/v1/users", { login: uniqueLogin("made"), role: "support", password: PASSWORD }),
    invalid: () =>
      badBodies(
        post("/api/v1/users", {
          login: "made-by-admin@example.com",
          role: "support",
          password: PASSWORD,
          name: "Made",
          twoFactor: false,
        }),
        {
          strings: ["login", "password", "name"],
          more: [
            { login: "made-by-admin@example.com", role: "root" },
            { login: "made-by-admin@example.com", role: "support", organizationId: "not-a-uuid" },
            { login: "made-by-admin@example.com", role: "support", password: "weak" },
            {
              login: "made-by-admin@example.com",
              role: "individual",
              organizationId: "01900000-0000-7000-8000-000000000000",
            },
            { login: "made-by-admin@example.com", role: "support", legalType: "robot" },
          ],
        },
      ),
    foreign: () => [
      {
        as: () => B.roles.administrator,
        req: post("/api/v1/users", {
          login: uniqueLogin("foreign"),
          role: "support",
          password: PASSWORD,
          organizationId: A.systemOrganizationId,
        }),
      },
    ],
  },
  "PATCH /api/v1/users/:userId": {
    permission: "users.write",
    valid: () => ({ method: "PATCH", url: `/api/v1/users/${A.spare.userId}`, body: { twoFactor: false } }),
    invalid: () => [
      ...badBodies(
        { method: "PATCH", url: `/api/v1/users/${A.spare.userId}`, body: { active: true, twoFactor: false } },
        { allOptional: true },
      ),
      ...badParams((id) => `/api/v1/users/${id}`, ["x".repeat(300)], "PATCH"),
    ],
    foreign: () => [
      {
        as: () => B.roles.administrator,
        req: { method: "PATCH", url: `/api/v1/users/${A.anna.userId}`, body: { active: false } },
      },
      {
        as: () => B.roles.administrator,
        req: {
          method: "PATCH",
          url: `/api/v1/users/${A.roles.administrator.userId}`,
          body: { twoFactor: true },
        },
      },
    ],
  },
  "POST /api/v1/users/view": {
    permission: "users.read",
    valid: () => post("/api/v1/users/view", { filter: { roles: ["individual"] } }),
    invalid: () =>
      badBodies(
        post("/api/v1/users/view", {
          pageNumber: 0,
          pageSize: 10,
          filter: {
            ids: ["someone"],
            email: "someone@example.com",
            phone: "491701234567",
            text: "some",
            roles: ["support"],
            active: true,
            organizationIds: ["x"],
          },
        }),
        {
          allOptional: true,
          strings: [
            "filter.ids.0",
            "filter.email",
            "filter.phone",
            "filter.text",
            "filter.organizationIds.0",
          ],
          more: [
            { filter: { roles: ["root"] } },
            { filter: { ids: Array.from({ length: 101 }, (_, i) => `id-${i}`) } },
            { pageSize: 1000 },
          ],
        },
      ),
    foreign: () =>
      [
        { ids: [A.anna.userId, A.roles.administrator.userId] },
        { organizationIds: [A.systemOrganizationId] },
        { email: A.anna.login },
        { text: A.anna.login },
      ].map((filter) => ({
        as: () => B.roles.administrator,
        req: post("/api/v1/users/view", { filter }),
        check: (body) => {
          expect(body.records).toEqual([]);
        },
      })),
  },

  // ——— set-up ———
  "POST /api/v1/currencies": {
    permission: "setup.write",
    valid: () => post("/api/v1/currencies", { code: `R${next()}`, name: "Route coin", fraction: 2 }),
    invalid: () =>
      badBodies(
        post("/api/v1/currencies", {
          code: "RTE",
          digitalCode: "999",
          symbol: "R",
          name: "Route coin",
          description: "for tests",
          fraction: 2,
          usdRate: "0.5",
        }),
        {
          strings: ["code", "digitalCode", "symbol", "name", "description"],
          amounts: ["usdRate"],
          amountCases: BAD_RATES,
          more: [
            { code: "rte", name: "x", fraction: 2 },
            { code: "RTE", name: "x", fraction: 19 },
            { code: "RTE", name: "x", fraction: -1 },
            { code: "RTE", name: "x", fraction: 1.5 },
            { code: "RTE", name: "   ", fraction: 2 },
            { code: "RTE", fraction: 2 },
          ],
        },
      ),
  },
  "GET /api/v1/currencies": {
    permission: "setup.read",
    valid: () => ({ method: "GET", url: "/api/v1/currencies" }),
    invalid: () => [],
    foreign: () => [
      {
        as: () => B.roles.administrator,
        req: { method: "GET", url: "/api/v1/currencies" },
        check: (body) => {
          expect(body.records?.map((r) => r.id)).not.toContain(A.onlyACurrencyId);
        },
      },
    ],
  },
  "POST /api/v1/exchange-rates/view": {
    permission: "setup.read",
    valid: () =>
      post("/api/v1/exchange-rates/view", { ratePairs: [{ inCurrencyId: "PTS", outCurrencyId: "USD" }] }),
    invalid: () =>
      badBodies(
        post("/api/v1/exchange-rates/view", {
          inCurrencyId: "PTS",
          outCurrencyId: "USD",
          ratePairs: [{ inCurrencyId: "PTS", outCurrencyId: "USD" }],
        }),
        {
          allOptional: true,
          strings: ["inCurrencyId", "outCurrencyId", "ratePairs.0.inCurrencyId"],
          more: [
            { outCurrencyId: "EUR" },
            { inCurrencyId: "PTS", outCurrencyId: "PTS" },
            { ratePairs: [{ inCurrencyId: "PTS", outCurrencyId: "EUR" }] },
            { ratePairs: [{ inCurrencyId: "PTS" }] },
            { ratePairs: Array.from({ length: 101 }, () => ({ inCurrencyId: "PTS", outCurrencyId: "USD" })) },
          ],
        },
      ),
    foreign: () => [
      {
        as: () => B.roles.administrator,
        req: post("/api/v1/exchange-rates/view", {
          ratePairs: [{ inCurrencyId: A.onlyACurrencyId, outCurrencyId: "USD" }],
        }),
      },
      { as: () => B.anna, req: post("/api/v1/exchange-rates/view", { inCurrencyId: A.onlyACurrencyId }) },
      {
        as: () => B.roles.administrator,
        req: post("/api/v1/exchange-rates/view", {}),
        check: (body) => {
          expect(body.records?.map((r) => r.id)).not.toContain(A.onlyACurrencyId);
        },
      },
    ],
  },
  "POST /api/v1/exchange-rates/rate": {
    permission: "rates.write",
    valid: () =>
      post("/api/v1/exchange-rates/rate", {
        rate: "0.01",
        inCurrencyId: "PTS",
        outCurrencyId: "USD",
        direction: "sell",
        active: true,
      }),
    invalid: () =>
      badBodies(
        post("/api/v1/exchange-rates/rate", {
          rate: "0.02",
          inCurrencyId: "PTS",
          outCurrencyId: "USD",
          direction: "sell",
          active: true,
          effectiveFrom: new Date(Date.now() + 86_400_000).toISOString(),
        }),
        {
          strings: ["inCurrencyId", "outCurrencyId", "direction"],
          amounts: ["rate"],
          amountCases: BAD_RATES,
          more: [
            { rate: "0.02", inCurrencyId: "PTS", outCurrencyId: "USD", active: false },
            { rate: "0.02", inCurrencyId: "PTS", outCurrencyId: "EUR" },
            { rate: "0.02", inCurrencyId: "PTS" },
            { rate: "0.02", outCurrencyId: "USD" },
            { inCurrencyId: "PTS", outCurrencyId: "USD" },
            { rate: "0.02", inCurrencyId: "PTS", outCurrencyId: "USD", effectiveFrom: "tomorrow" },
            {
              rate: "0.02",
              inCurrencyId: "PTS",
              outCurrencyId: "USD",
              effectiveFrom: new Date(Date.now() - 3_600_000).toISOString(),
            },
            {
              rate: "0.02",
              inCurrencyId: "PTS",
              outCurrencyId: "USD",
              effectiveFrom: new Date(Date.now() + 400 * 86_400_000).toISOString(),
            },
          ],
        },
      ),
    foreign: () => [
      {
        as: () => B.roles.administrator,
        req: post("/api/v1/exchange-rates/rate", {
          rate: "5",
          inCurrencyId: A.onlyACurrencyId,
          outCurrencyId: "USD",
        }),
      },
      {
        as: () => B.roles.administrator,
        req: post("/api/v1/exchange-rates/rate", { rate: "5", inCurrencyId: "ONLYA", outCurrencyId: "USD" }),
      },
    ],
  },
  "GET /api/v1/currencies/:code/rates": {
    permission: "rates.read",
    valid: () => ({ method: "GET", url: "/api/v1/currencies/PTS/rates" }),
    invalid: () => [
      ...pageCases("/api/v1/currencies/PTS/rates"),
      ...["pts", "P", "X".repeat(300), "%20", "P-T"].map((code) => ({
        method: "GET",
        url: `/api/v1/currencies/${code}/rates`,
      })),
    ],
    foreign: () => [
      { as: () => B.roles.administrator, req: { method: "GET", url: "/api/v1/currencies/ONLYA/rates" } },
    ],
  },
  "POST /api/v1/issuers": {
    permission: "setup.write",
    valid: () => post("/api/v1/issuers", { currencyCode: "USD", name: `Issuer ${next()}`, snPrefix: "55" }),
    invalid: () =>
      badBodies(
        post("/api/v1/issuers", { currencyCode: "USD", name: "Second", description: "x", snPrefix: "55" }),
        {
          strings: ["currencyCode", "name", "description", "snPrefix"],
          more: [
            { currencyCode: "usd", name: "x" },
            { currencyCode: "USD", name: "x", snPrefix: "abc" },
            { currencyCode: "USD", name: "x", snPrefix: "123456789" },
          ],
        },
      ),
  },
  "GET /api/v1/issuers": {
    permission: "setup.read",
    valid: () => ({ method: "GET", url: "/api/v1/issuers?currencyCode=USD" }),
    invalid: () =>
      ["currencyCode=usd", "surprise=1", `currencyCode=${"X".repeat(300)}`].map((q) => ({
        method: "GET",
        url: `/api/v1/issuers?${q}`,
      })),
  },
  "POST /api/v1/bank-catalog": {
    permission: "setup.write",
    valid: () => {
      const n = next();
      return post("/api/v1/bank-catalog", { name: "Route bank", bic: `ROUTDE${n}`, swift: `RSWTDE${n}XXX` });
    },
    invalid: () =>
      badBodies(
        post("/api/v1/bank-catalog", {
          name: "Route bank",
          bic: "ROUTDEZZ",
          swift: "RSWTDEZZXXX",
          address: "Main street 1",
          city: "Berlin",
          zipCode: "10115",
        }),
        {
          strings: ["name", "bic", "swift", "address", "city", "zipCode"],
          more: [
            { name: "x", bic: "nope", swift: "RSWTDEZZXXX" },
            { name: "x", bic: "routdezz", swift: "RSWTDEZZXXX" },
            { name: "x", bic: "ROUTDEZZ", swift: "RSWTDEZZXXXX" },
          ],
        },
      ),
  },
  "GET /api/v1/bank-catalog": {
    permission: "setup.read",
    valid: () => ({ method: "GET", url: "/api/v1/bank-catalog?pageSize=5" }),
    invalid: () => pageCases("/api/v1/bank-catalog"),
  },
  "POST /api/v1/commission-profiles": {
    permission: "setup.write",
    valid: () =>
      post("/api/v1/commission-profiles", {
        operation: "EXCHANGE",
        currency: "USD",
        feeDirection: "OUT",
        rules: [{ beginAmount: "0", type: "fixed", valueFixed: "0.10" }],
      }),
    invalid: () => {
      const good = {
        operation: "EXCHANGE",
        currency: "USD",
        feeDirection: "OUT",
        rules: [
          {
            beginAmount: "0",
            endAmount: "100.00",
            type: "fixed_and_percent",
            valueFixed: "0.10",
            valuePercent: "1.5",
          },
        ],
        beginDate: "2020-01-01T00:00:00Z",
        endDate: "2090-01-01T00:00:00Z",
      };
      return badBodies(post("/api/v1/commission-profiles", good), {
        strings: ["currency", "rules.0.beginAmount", "beginDate", "rules.0.valuePercent"],
        amounts: ["rules.0.valueFixed", "rules.0.endAmount"],
        amountCases: ["-1", "1.001", FORTY_DIGITS, "ten", "", -1, 1.001, 1e40],
        more: [
          { ...good, operation: "GIFT" },
          { ...good, feeDirection: "UP" },
          { ...good, rules: [{ ...good.rules[0], type: "magic" }] },
          { ...good, rules: [{ ...good.rules[0], valuePercent: "101" }] },
          { ...good, rules: [{ ...good.rules[0], valuePercent: "1000" }] },
          { ...good, rules: [{ ...good.rules[0], valuePercent: "abc" }] },
          { ...good, rules: [{ ...good.rules[0], valuePercent: "1,5" }] },
          { ...good, rules: [{ ...good.rules[0], valuePercent: "1.23456" }] },
          { ...good, beginDate: "tomorrow" },
          { ...good, beginDate: "2090-01-01T00:00:00Z", endDate: "2020-01-01T00:00:00Z" },
          { ...good, rules: [{ ...good.rules[0], beginAmount: "100.00", endAmount: "1.00" }] },
          { ...good, rules: Array.from({ length: 51 }, () => good.rules[0]) },
        ],
      });
    },
  },
  "GET /api/v1/commission-profiles": {
    permission: "setup.read",
    valid: () => ({ method: "GET", url: "/api/v1/commission-profiles?operation=EXCHANGE&currency=USD" }),
    invalid: () => [
      ...pageCases("/api/v1/commission-profiles"),
      { method: "GET", url: "/api/v1/commission-profiles?operation=GIFT" },
      { method: "GET", url: "/api/v1/commission-profiles?currency=usd" },
    ],
  },

  // ——— accounts ———
  "GET /api/v1/coins": {
    permission: "own",
    valid: () => ({ method: "GET", url: "/api/v1/coins" }),
    invalid: () => [],
  },
  "POST /api/v1/coins": {
    permission: "own",
    valid: () => post("/api/v1/coins", { name: `Spare ${next()}`, currencyCode: "USD" }),
    invalid: () =>
      badBodies(post("/api/v1/coins", { name: "Spare", currencyCode: "USD", issuerId: A.issuerId }), {
        strings: ["name", "currencyCode"],
        more: [
          { name: "Spare", currencyCode: "usd" },
          { name: "Spare", currencyCode: "USD", issuerId: "not-a-uuid" },
          { name: "  ", currencyCode: "USD" },
        ],
      }),
    money: true,
    foreign: () => [
      {
        as: () => B.anna,
        req: post("/api/v1/coins", { name: "Theirs", currencyCode: "USD", issuerId: A.issuerId }),
      },
    ],
  },
  "POST /api/v1/coins/validate": {
    permission: "processes.read",
    valid: () => post("/api/v1/coins/validate", { serial: A.benCoin }),
    invalid: () =>
      badBodies(post("/api/v1/coins/validate", { serial: A.benCoin }), {
        strings: ["serial"],
        more: [{ serial: "12345" }, { serial: "abcdefghijklmnop" }, { serial: Number(A.benCoin) }],
      }),
    foreign: () => [
      { as: () => B.roles.administrator, req: post("/api/v1/coins/validate", { serial: A.annaCoin }) },
      { as: () => B.anna, req: post("/api/v1/coins/validate", { serial: A.annaCoin }) },
    ],
  },

  // ——— top-ups ———
  "POST /api/v1/bank-top-ups/calculate": calculateRoute("/api/v1/bank-top-ups/calculate"),
  "POST /api/v1/card-top-ups/calculate": calculateRoute("/api/v1/card-top-ups/calculate"),
  "POST /api/v1/bank-withdrawals/calculate": calculateRoute("/api/v1/bank-withdrawals/calculate"),
  "POST /api/v1/card-withdrawals/calculate": calculateRoute("/api/v1/card-withdrawals/calculate"),
  "POST /api/v1/bank-top-ups/create-request/with-bank": {
    permission: "own",
    valid: () =>
      post("/api/v1/bank-top-ups/create-request/with-bank", {
        coinSerial: A.annaCoin,
        amount: "5.00",
        bankId: A.bankId,
        description: "route test",
      }),
    invalid: () =>
      badBodies(
        post("/api/v1/bank-top-ups/create-request/with-bank", {
          coinSerial: A.annaCoin,
          amount: "5.00",
          bankId: A.bankId,
          description: "route test",
        }),
        {
          strings: ["coinSerial", "description"],
          amounts: ["amount"],
          idempotent: true,
          more: [{ coinSerial: A.annaCoin, amount: "5.00", bankId: "not-a-uuid" }],
        },
      ),
    money: true,
    foreign: () => [
      {
        as: () => B.anna,
        req: post("/api/v1/bank-top-ups/create-request/with-bank", {
          coinSerial: A.annaCoin,
          amount: "5.00",
        }),
      },
      {
        as: () => B.anna,
        req: post("/api/v1/bank-top-ups/create-request/with-bank", {
          coinSerial: B.annaCoin,
          amount: "5.00",
          bankId: A.bankId,
        }),
      },
    ],
  },
  "POST /api/v1/bank-top-ups/with-bank": {
    permission: "money.record",
    valid: () =>
      post("/api/v1/bank-top-ups/with-bank", {
        coinSerial: A.annaCoin,
        amount: "5.00",
        bankId: A.bankId,
        iban: "DE89370400440532013000",
        fullName: "Ada Lovelace",
      }),
    invalid: () => {
      const good = {
        coinSerial: A.annaCoin,
        amount: "5.00",
        bankId: A.bankId,
        iban: "DE89370400440532013000",
        bankAccountNumber: "0532013000",
        fullName: "Ada Lovelace",
        description: "arrived",
      };
      return badBodies(post("/api/v1/bank-top-ups/with-bank", good), {
        strings: ["coinSerial", "iban", "bankAccountNumber", "fullName", "description"],
        amounts: ["amount"],
        idempotent: true,
        more: [
          { coinSerial: A.annaCoin, amount: "5.00", bankId: A.bankId, fullName: "No account" },
          { ...good, bankId: "not-a-uuid" },
          { ...good, fullName: "   " },
        ],
      });
    },
    money: true,
    foreign: () => [
      {
        as: () => B.roles.accountant,
        req: post("/api/v1/bank-top-ups/with-bank", {
          coinSerial: A.annaCoin,
          amount: "5.00",
          bankId: B.bankId,
          iban: "DE89370400440532013000",
          fullName: "Ada Lovelace",
        }),
      },
      {
        as: () => B.roles.accountant,
        req: post("/api/v1/bank-top-ups/with-bank", {
          coinSerial: B.annaCoin,
          amount: "5.00",
          bankId: A.bankId,
          iban: "DE89370400440532013000",
          fullName: "Ada Lovelace",
        }),
      },
    ],
  },
  "POST /api/v1/bank-top-ups/:requestIdentifier/accept": decideRoute("bank-top-ups", "accept"),
  "POST /api/v1/bank-top-ups/:requestIdentifier/decline": decideRoute("bank-top-ups", "decline"),
  "POST /api/v1/card-top-ups": {
    permission: "own",
    valid: () => post("/api/v1/card-top-ups", { coinSerial: A.annaCoin, amount: "5.00", card }),
    invalid: () =>
      badBodies(post("/api/v1/card-top-ups", { coinSerial: A.annaCoin, amount: "5.00", card }), {
        strings: ["coinSerial", "card.cardNumber", "card.cvv", "card.cardHolder"],
        amounts: ["amount"],
        idempotent: true,
        more: [
          { coinSerial: A.annaCoin, amount: "5.00", card: { ...card, expirationMonth: 13 } },
          { coinSerial: A.annaCoin, amount: "5.00", card: { ...card, expirationYear: 1999 } },
          { coinSerial: A.annaCoin, amount: "5.00", card: { ...card, cardNumber: "4242" } },
          { coinSerial: A.annaCoin, amount: "5.00", card: { ...card, cvv: "12" } },
          { coinSerial: A.annaCoin, amount: "5.00", card: { ...card, cardHolder: " " } },
        ],
      }),
    money: true,
    foreign: () => [
      {
        as: () => B.anna,
        req: post("/api/v1/card-top-ups", { coinSerial: A.annaCoin, amount: "5.00", card }),
      },
    ],
  },

  // ——— withdrawals ———
  "POST /api/v1/bank-withdrawals/with-bank": {
    permission: "own",
    valid: () =>
      post("/api/v1/bank-withdrawals/with-bank", {
        coinSerial: A.annaCoin,
        amount: "1.00",
        bankDetails: bankDetailsOf(A.anna),
      }),
    invalid: () =>
      badBodies(
        post("/api/v1/bank-withdrawals/with-bank", {
          coinSerial: A.annaCoin,
          amount: "1.00",
          bankDetails: { ...bankDetailsOf(A.anna), bankAccountNumber: "0532013000", bankId: A.bankId },
          description: "rent",
        }),
        {
          strings: [
            "coinSerial",
            "bankDetails.fullName",
            "bankDetails.iban",
            "bankDetails.bankAccountNumber",
            "bankDetails.bic",
            "description",
          ],
          amounts: ["amount"],
          idempotent: true,
          more: [
            {
              coinSerial: A.annaCoin,
              amount: "1.00",
              bankDetails: { fullName: "No account", bic: "COBADEFFXXX" },
            },
            {
              coinSerial: A.annaCoin,
              amount: "1.00",
              bankDetails: { ...bankDetailsOf(A.anna), bic: "nope" },
            },
            {
              coinSerial: A.annaCoin,
              amount: "1.00",
              bankDetails: { ...bankDetailsOf(A.anna), bankId: "not-a-uuid" },
            },
            // An IBAN whose check digits are wrong.
            {
              coinSerial: A.annaCoin,
              amount: "1.00",
              bankDetails: { ...bankDetailsOf(A.anna), iban: "DE00370400440532013000" },
            },
          ],
        },
      ),
    money: true,
    foreign: () => [
      {
        as: () => B.anna,
        req: post("/api/v1/bank-withdrawals/with-bank", {
          coinSerial: A.annaCoin,
          amount: "1.00",
          bankDetails: bankDetailsOf(B.anna),
        }),
      },
      {
        as: () => B.anna,
        req: post("/api/v1/bank-withdrawals/with-bank", {
          coinSerial: B.annaCoin,
          amount: "1.00",
          bankDetails: { ...bankDetailsOf(B.anna), bankId: A.bankId },
        }),
      },
    ],
  },
  "POST /api/v1/card-withdrawals": {
    permission: "own",
    valid: () =>
      post("/api/v1/card-withdrawals", { coinSerial: A.annaCoin, amount: "1.00", card: payoutCard }),
    invalid: () =>
      badBodies(
        post("/api/v1/card-withdrawals", {
          coinSerial: A.annaCoin,
          amount: "1.00",
          card: payoutCard,
          description: "to my card",
        }),
        {
          strings: ["coinSerial", "card.cardNumber", "card.cardHolder", "description"],
          amounts: ["amount"],
          idempotent: true,
          more: [
            { coinSerial: A.annaCoin, amount: "1.00", card: { ...payoutCard, cvv: "123" } },
            { coinSerial: A.annaCoin, amount: "1.00", card: { ...payoutCard, expirationMonth: 0 } },
            { coinSerial: A.annaCoin, amount: "1.00", card: { ...payoutCard, expirationYear: 1999 } },
            // Not a card number (Luhn), and a card that expired.
            {
              coinSerial: A.annaCoin,
              amount: "1.00",
              card: { ...payoutCard, cardNumber: "5555555555554445" },
            },
            { coinSerial: A.annaCoin, amount: "1.00", card: { ...payoutCard, expirationYear: 2020 } },
          ],
        },
      ),
    money: true,
    foreign: () => [
      {
        as: () => B.anna,
        req: post("/api/v1/card-withdrawals", { coinSerial: A.annaCoin, amount: "1.00", card: payoutCard }),
      },
    ],
  },
  "POST /api/v1/bank-withdrawals/:requestIdentifier/accept": decideRoute("bank-withdrawals", "accept"),
  "POST /api/v1/bank-withdrawals/:requestIdentifier/decline": decideRoute("bank-withdrawals", "decline"),
  "POST /api/v1/card-withdrawals/:requestIdentifier/accept": decideRoute("card-withdrawals", "accept"),
  "POST /api/v1/card-withdrawals/:requestIdentifier/decline": decideRoute("card-withdrawals", "decline"),
  "POST /api/v1/aml-reviews/:requestIdentifier/clear": amlRoute("clear"),
  "POST /api/v1/aml-reviews/:requestIdentifier/reject": amlRoute("reject"),

  // ——— business processes ———
  "GET /api/v1/business-processes": {
    permission: "processes.read",
    valid: () => ({ method: "GET", url: "/api/v1/business-processes?pageSize=5" }),
    invalid: () => pageCases("/api/v1/business-processes"),
  },
  "GET /api/v1/business-processes/:processId": {
    permission: "processes.read",
    valid: () => ({ method: "GET", url: `/api/v1/business-processes/${A.transferId}` }),
    invalid: () => badParams((id) => `/api/v1/business-processes/${id}`, BAD_PROCESS_IDS, "GET").slice(0, -1),
    foreign: () => [
      {
        as: () => B.roles.administrator,
        req: { method: "GET", url: `/api/v1/business-processes/${A.transferId}` },
      },
      { as: () => B.anna, req: { method: "GET", url: `/api/v1/business-processes/${A.transferId}` } },
    ],
  },

  // ——— transfers, templates, smart cards ———
  "POST /api/v1/transfers": {
    permission: "own",
    valid: () =>
      post("/api/v1/transfers", {
        paymentTool: { type: "COIN", srcValue: A.annaCoin, destValue: A.benCoin },
        amount: "1.00",
        description: "route test",
      }),
    invalid: () => {
      const good = {
        paymentTool: { type: "COIN", srcValue: A.annaCoin, destValue: A.benCoin },
        amount: "1.00",
        description: "route test",
      };
      return badBodies(post("/api/v1/transfers", good), {
        strings: ["paymentTool.srcValue", "paymentTool.destValue", "description"],
        amounts: ["amount"],
        idempotent: true,
        more: [
          { ...good, paymentTool: { ...good.paymentTool, type: "CASH" } },
          { ...good, paymentTool: { ...good.paymentTool, srcValue: "abc" } },
          { ...good, paymentTool: { ...good.paymentTool, destValue: "abc" } },
          { ...good, paymentTool: { ...good.paymentTool, destValue: A.annaCoin } },
          { ...good, paymentTool: { type: "COIN", srcValue: A.annaCoin } },
        ],
      });
    },
    money: true,
    foreign: () => [
      {
        as: () => B.anna,
        req: post("/api/v1/transfers", {
          paymentTool: { type: "COIN", srcValue: B.annaCoin, destValue: A.annaCoin },
          amount: "1.00",
        }),
      },
      {
        as: () => B.anna,
        req: post("/api/v1/transfers", {
          paymentTool: { type: "SMART_CARD", srcValue: B.annaCoin, destValue: A.cardNumber },
          amount: "1.00",
        }),
      },
      {
        as: () => B.anna,
        req: post("/api/v1/transfers", {
          paymentTool: { type: "COIN", srcValue: A.annaCoin, destValue: B.benCoin },
          amount: "1.00",
        }),
      },
    ],
  },
  "POST /api/v1/templates/transfer/operation/:businessProcessId": {
    permission: "own",
    valid: () => post(`/api/v1/templates/transfer/operation/${A.transferId}`, { name: `Template ${next()}` }),
    invalid: () => [
      ...badBodies(
        post(`/api/v1/templates/transfer/operation/${A.transferId}`, { name: "Again", description: "x" }),
        { strings: ["name", "description"], more: [{ name: "   " }] },
      ),
      ...BAD_PROCESS_IDS.map((id) => post(`/api/v1/templates/transfer/operation/${id}`, { name: "x" })),
    ],
    foreign: () => [
      {
        as: () => B.anna,
        req: post(`/api/v1/templates/transfer/operation/${A.transferId}`, { name: "Theirs" }),
      },
    ],
  },
  "POST /api/v1/templates/transfer/view": {
    permission: "own",
    valid: () => post("/api/v1/templates/transfer/view", { filter: { paymentToolType: "COIN" } }),
    invalid: () =>
      badBodies(
        post("/api/v1/templates/transfer/view", {
          pageNumber: 0,
          pageSize: 5,
          filter: { paymentToolType: "COIN" },
        }),
        {
          allOptional: true,
          more: [{ filter: { paymentToolType: "CASH" } }, { pageSize: 0 }, { pageNumber: -1 }],
        },
      ),
    foreign: () => [
      {
        as: () => B.anna,
        req: post("/api/v1/templates/transfer/view", {}),
        check: (body) => {
          expect(body.records?.map((r) => r.id)).not.toContain(A.templateId);
        },
      },
    ],
  },
  "POST /api/v1/templates/transfer/:transferTemplateId/calculate": {
    permission: "own",
    valid: () => post(`/api/v1/templates/transfer/${A.templateId}/calculate`, { amount: "2.00" }),
    invalid: () => [
      ...badBodies(post(`/api/v1/templates/transfer/${A.templateId}/calculate`, { amount: "2.00" }), {
        amounts: ["amount"],
      }),
      ...BAD_UUIDS.map((id) => post(`/api/v1/templates/transfer/${id}/calculate`, { amount: "2.00" })),
    ],
    money: true,
    foreign: () => [
      {
        as: () => B.anna,
        req: post(`/api/v1/templates/transfer/${A.templateId}/calculate`, { amount: "2.00" }),
      },
    ],
  },
  "POST /api/v1/templates/transfer/:transferTemplateId/execute": {
    permission: "own",
    valid: () => post(`/api/v1/templates/transfer/${A.templateId}/execute`, { amount: "1.00" }),
    invalid: () => [
      ...badBodies(post(`/api/v1/templates/transfer/${A.templateId}/execute`, { amount: "1.00" }), {
        amounts: ["amount"],
        idempotent: true,
      }),
      ...BAD_UUIDS.map((id) => post(`/api/v1/templates/transfer/${id}/execute`, { amount: "1.00" })),
    ],
    money: true,
    foreign: () => [
      {
        as: () => B.anna,
        req: post(`/api/v1/templates/transfer/${A.templateId}/execute`, { amount: "1.00" }),
      },
    ],
  },
  "GET /api/v1/smart-cards/my": {
    permission: "own",
    valid: () => ({ method: "GET", url: "/api/v1/smart-cards/my" }),
    invalid: () => [],
  },
  "POST /api/v1/smart-cards/my": {
    permission: "own",
    valid: () => post("/api/v1/smart-cards/my", { name: `Card ${next()}`, associatedCoinSerial: A.annaCoin }),
    invalid: () =>
      badBodies(post("/api/v1/smart-cards/my", { name: "Card", associatedCoinSerial: A.annaCoin }), {
        strings: ["name", "associatedCoinSerial"],
        more: [
          { name: "Card", associatedCoinSerial: "12345" },
          { name: " ", associatedCoinSerial: A.annaCoin },
        ],
      }),
    foreign: () => [
      {
        as: () => B.anna,
        req: post("/api/v1/smart-cards/my", { name: "Theirs", associatedCoinSerial: A.annaCoin }),
      },
    ],
  },
};

// ——— checks ———

function expectEnvelope(response: LightMyRequestResponse, type: string, code: number, what: string) {
  expect(response.headers["content-type"], what).toMatch(/^application\/json/);
  const body = response.json();
  expect(body, what).toMatchObject({
    type,
    code,
    message: expect.any(String),
    traceId: expect.any(String),
  });
  return body;
}

const isStatus = (response: LightMyRequestResponse, expected: number | undefined) =>
  expected === undefined
    ? response.statusCode >= 200 && response.statusCode < 300
    : response.statusCode === expected;

/** Row counts and ledger sums: bad input must leave every one as it was. */
const COUNTED = [
  "bank_catalog",
  "coins",
  "currency_usd_rates",
  "commission_profiles",
  "issuers",
  "ledger_accounts",
  "ledger_currencies",
  "ledger_transfers",
  "login_codes",
  "login_sessions",
  "logins",
  "organizations",
  "smart_cards",
  "transactions",
  "transfer_templates",
  "sandbox_notifier_messages",
  "sandbox_acquirer_charges",
  "idempotency_keys",
];
async function fingerprint(): Promise<Record<string, string>> {
  const db = t.database.db;
  const out: Record<string, string> = {};
  for (const table of COUNTED) {
    const { rows } = await sql<{ n: string }>`SELECT count(*)::text AS n FROM ${sql.table(table)}`.execute(
      db,
    );
    out[table] = rows[0]?.n ?? "";
  }
  const { rows } = await sql<{ sums: string; logins: string; transactions: string; codes: string }>`
    SELECT (SELECT concat_ws('/', sum(debits_posted), sum(credits_posted), sum(debits_pending), sum(credits_pending))
              FROM ledger_accounts) AS sums,
           (SELECT concat_ws('/', max(updated_at), count(*) FILTER (WHERE active), count(*) FILTER (WHERE two_factor))
              FROM logins) AS logins,
           (SELECT concat_ws('/', max(updated_at), string_agg(status, ',' ORDER BY number)) FROM transactions) AS transactions,
           (SELECT concat_ws('/', max(updated_at), sum(sends)) FROM login_codes) AS codes`.execute(db);
  return { ...out, ...rows[0] };
}

async function moneyState() {
  return {
    anna: await balances(A.anna, A.annaCoin),
    ben: await balances(A.ben, A.benCoin),
    risky: await balances(A.risky, A.riskyCoin),
    bea: await balances(B.anna, B.annaCoin),
  };
}

/** The caller of `role` in client A (a fresh login when the route ends its token). */
async function callerOf(c: RouteCases, role: Role): Promise<WalletCaller> {
  const who = A.roles[role];
  return c.fresh ? logIn(t, A.clientId, who.login) : who;
}

const GUARD_REFUSAL = /^the role (\w+) may not do this \(needs one of: ([a-z_, ]+)\)$/;

describe("every /api/v1 route", () => {
  it("has cases here, and every route here exists", () => {
    expect(served.length).toBeGreaterThan(0);
    expect([...served].sort()).toEqual(Object.keys(routes).sort());
  });

  it("agrees with the OpenAPI document: token routes need walletToken; routes with input have bad-input cases", async () => {
    const doc = (await t.app.inject({ method: "GET", url: "/openapi.json" })).json();
    for (const [name, c] of Object.entries(routes)) {
      const [method = "", path = ""] = name.split(" ");
      const operation = doc.paths[path.replace(/:(\w+)/g, "{$1}")]?.[method.toLowerCase()];
      expect(operation, name).toBeDefined();
      const security = (operation.security ?? []) as Record<string, unknown>[];
      expect(
        security.some((s) => "walletToken" in s),
        `${name}: documented with a token`,
      ).toBe(c.permission !== null);
      const inputs = (operation.parameters ?? []).filter(
        (p: { in: string }) => p.in === "path" || p.in === "query",
      );
      if (operation.requestBody || inputs.length > 0)
        expect((await c.invalid()).length, `${name}: bad-input cases`).toBeGreaterThan(0);
    }
  });

  it("the holder of each permission in this table holds it in PERMISSIONS", () => {
    for (const [permission, role] of Object.entries(HOLDER))
      expect(PERMISSIONS[permission as Permission] as readonly string[], permission).toContain(role);
    for (const c of Object.values(routes))
      if (c.permission !== null) expect(Object.keys(PERMISSIONS)).toContain(c.permission);
  });

  for (const [name, c] of Object.entries(routes)) {
    const permission = c.permission;
    if (permission === null) {
      it(`${name}: the client is named by X-Client-Id (unknown → 404, malformed → 400, none → 400)`, async () => {
        const request = await c.valid();
        const unknown = await send({ ...request, headers: { "x-client-id": "no-such-client" } });
        expect(unknown.statusCode, unknown.body).toBe(404);
        expectEnvelope(unknown, "NOT_FOUND", 4004, name);
        const malformed = await send({ ...request, headers: { "x-client-id": "bad id!" } });
        expect(malformed.statusCode, malformed.body).toBe(400);
        expectEnvelope(malformed, "INVALID_REQUEST", 1000, name);
        // This installation has no default client.
        const none = await send({ ...request, headers: {} });
        expect(none.statusCode, none.body).toBe(400);
        expectEnvelope(none, "INVALID_REQUEST", 1000, name);
      });
    } else {
      it(`${name}: 401 without a token, with garbage, with a revoked token; TOKEN <token> is accepted like Bearer`, async () => {
        const request = await c.valid();
        const role = HOLDER[permission];
        const attempts: (string | undefined)[] = [
          undefined,
          "Bearer garbage-garbage-garbage-garbage",
          "Bearer x",
          `Bearer ${"a".repeat(300)}`,
          `Bearer ${revoked[role]}`,
          `TOKEN ${revoked[role]}`,
          `Basic ${Buffer.from(`${A.roles[role].login}:${PASSWORD}`).toString("base64")}`,
          A.roles[role].token,
          "",
        ];
        for (const authorization of attempts) {
          const response = await send(request, authorization);
          const what = `${name} with ${String(authorization).slice(0, 40)}: ${response.body}`;
          expect(response.statusCode, what).toBe(401);
          expect(response.headers["www-authenticate"], what).toMatch(/^Bearer realm="ferry-wallet"/);
          expectEnvelope(response, "UNAUTHORIZED", 2001, what);
        }
        const holder = await callerOf(c, role);
        const accepted = await send(await c.valid(), `TOKEN ${holder.token}`);
        expect(
          isStatus(accepted, c.validStatus),
          `${name} with TOKEN: ${accepted.statusCode} ${accepted.body}`,
        ).toBe(true);
        const lower = await send(await c.valid(), `token ${(await callerOf(c, role)).token}`);
        expect(isStatus(lower, c.validStatus), `${name} with token: ${lower.statusCode} ${lower.body}`).toBe(
          true,
        );
      });

      it(`${name}: a role without "${permission}" → 403; a role with it passes the guard`, async () => {
        const roles = PERMISSIONS[permission] as readonly Role[];
        for (const role of ROLES) {
          const who = await callerOf(c, role);
          const response = await send(await c.valid(), `Bearer ${who.token}`);
          const what = `${name} as ${role}: ${response.statusCode} ${response.body}`;
          expect(response.statusCode, what).not.toBe(401);
          expect(response.statusCode, what).not.toBe(500);
          const refusal = response.statusCode === 403 ? GUARD_REFUSAL.exec(response.json().message) : null;
          if (roles.includes(role)) {
            expect(refusal, what).toBeNull();
          } else {
            expect(response.statusCode, what).toBe(403);
            expectEnvelope(response, "FORBIDDEN", 4001, what);
            expect(refusal?.[1], what).toBe(role);
            expect(refusal?.[2], what).toBe(roles.join(", "));
          }
        }
      });
    }

    it(`${name}: a valid request → ${c.validStatus ?? "2xx"}`, async () => {
      const request = await c.valid();
      const authorization =
        permission === null ? undefined : `Bearer ${(await callerOf(c, HOLDER[permission])).token}`;
      const response = await send(request, authorization);
      expect(
        isStatus(response, c.validStatus),
        `${describeReq(request)}: ${response.statusCode} ${response.body}`,
      ).toBe(true);
    });

    it(`${name}: bad input → 400 in the envelope, nothing changed`, async () => {
      const requests = await c.invalid();
      const authorization =
        permission === null ? undefined : `Bearer ${(await callerOf(c, HOLDER[permission])).token}`;
      const before = await fingerprint();
      const money = c.money ? await moneyState() : undefined;
      const failures: string[] = [];
      for (const request of requests) {
        const response = await send(request, authorization);
        const body = response.headers["content-type"]?.toString().startsWith("application/json")
          ? response.json()
          : {};
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
      if (money) expect(await moneyState()).toEqual(money);
    });
  }
});

describe("tenancy: client B never reaches client A's data", () => {
  let before: Record<string, string>;
  let money: Awaited<ReturnType<typeof moneyState>>;
  beforeAll(async () => {
    before = await fingerprint();
    money = await moneyState();
  });

  for (const [name, c] of Object.entries(routes)) {
    if (!c.foreign) continue;
    it(`${name}: client B with client A's ids → 404 (lists: none of A's)`, async () => {
      for (const f of c.foreign?.() ?? []) {
        const response = await send(f.req, `Bearer ${f.as().token}`);
        const what = `${describeReq(f.req)}: ${response.statusCode} ${response.body}`;
        if (f.check) {
          expect(response.statusCode, what).toBe(200);
          f.check(response.json());
        } else {
          expect(response.statusCode, what).toBe(404);
          expectEnvelope(response, "NOT_FOUND", 4004, what);
        }
        expect(response.body, what).not.toContain(A.anna.login);
      }
    });
  }

  it("client B's lists hold none of client A's processes, users, accounts, templates or cards", async () => {
    const admin = B.roles.administrator;
    const processes = (await admin.call("GET", "/api/v1/business-processes?pageSize=100")).json();
    const mine = new Set(processes.records.map((r: { id: string }) => r.id));
    expect(mine.has(A.transferId)).toBe(false);
    const users = (await admin.call("POST", "/api/v1/users/view", { pageSize: 100 })).json();
    const ids = users.records.map((u: { id: string }) => u.id);
    for (const who of [...Object.values(A.roles), A.ben, A.risky, A.spare])
      expect(ids).not.toContain(who.userId);
    const organizations = (await admin.call("POST", "/api/v1/organizations", { pageSize: 100 })).json();
    expect(organizations.records.map((o: { id: string }) => o.id)).not.toContain(A.systemOrganizationId);
    const issuers = (await admin.call("GET", "/api/v1/issuers")).json();
    expect(issuers.records.map((i: { id: string }) => i.id)).not.toContain(A.issuerId);
    const banks = (await admin.call("GET", "/api/v1/bank-catalog?pageSize=100")).json();
    expect(banks.records.map((b: { bankId: string }) => b.bankId)).not.toContain(A.bankId);
    const coins = (await B.anna.call("GET", "/api/v1/coins")).json();
    expect(coins.coins.map((c: { serial: string }) => c.serial)).toEqual([B.annaCoin]);
    expect((await B.anna.call("GET", "/api/v1/smart-cards/my")).json().records).toEqual([]);
    expect((await B.anna.call("POST", "/api/v1/templates/transfer/view", {})).json().records).toEqual([]);
  });

  it("client A's people cannot log in at client B, nor B's at A", async () => {
    for (const [who, clientId] of [
      [A.anna, B.clientId],
      [B.roles.administrator, A.clientId],
    ] as const) {
      const response = await send({
        method: "POST",
        url: "/api/v1/authorization",
        headers: { "x-client-id": clientId },
        body: { login: who.login, password: PASSWORD },
      });
      expect(response.statusCode, response.body).toBe(401);
      expectEnvelope(response, "UNAUTHORIZED", 2001, response.body);
    }
  });

  it("nothing of client A's changed: its requests wait, its balances stand, its people are as they were", async () => {
    expect(await fingerprint()).toEqual(before);
    expect(await moneyState()).toEqual(money);
    for (const rid of [A.topUpRid, A.withdrawalRid, A.heldRid]) {
      const found = await t.services.transactions.findByNumber(A.clientId, String(rid));
      expect(found?.clientId).toBe(A.clientId);
    }
    const anna = await A.roles.administrator.call("POST", "/api/v1/users/view", {
      filter: { ids: [A.anna.userId] },
    });
    expect(anna.json().records).toMatchObject([{ id: A.anna.userId, active: true }]);
  });
});
