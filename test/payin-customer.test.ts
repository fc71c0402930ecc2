import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxKycRoutes } from "../src/faces/sandbox/kyc-verification.ts";
import { ALPHA3_TO_ALPHA2, toAlpha2, toAlpha3 } from "../src/lib/countries.ts";
import type { Services } from "../src/services.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { tokenFor } from "./page-forms.ts";
import { registerCustomer, staff, type WalletCaller, walletClient } from "./wallet.ts";

/**
 * The Pay-in API's customer routes (`/v2/customer`) through HTTP: the profile (character rules,
 * alpha-2 or alpha-3 country stored as alpha-2, a complete profile gives KYC_0), the KYC_1 check
 * through the sandbox provider's hosted page (Submit documents → the sandbox decides by last name),
 * the KYC data, names locked at KYC_1, and the gates (401, 403, 422, 400 with nothing changed).
 */

let t: TestApp;
let clientId: string;
let admin: WalletCaller;

beforeAll(async () => {
  t = await startTestApp({
    workers: true,
    settings: { sandboxKycDelayMs: 50 },
    // Until src/app.ts registers the sandbox KYC page with the other sandbox routes.
    extend: async (app, database) => {
      if (app.hasRoute({ method: "GET", url: "/sandbox/kyc/verification/:id" })) return;
      // The services exist once startTestApp returns; the page reads them per request.
      const services = {
        database,
        get users() {
          return t.services.users;
        },
        get kyc() {
          return t.services.kyc;
        },
      } as unknown as Services;
      await app.register(sandboxKycRoutes, { prefix: "/sandbox", services });
    },
  });
  ({ clientId, admin } = await walletClient(t));
});
afterAll(() => t.close());

const PROFILE = {
  firstName: "Marie",
  lastName: "Curie",
  primaryCurrency: "EUR",
  residenceCountry: "FRA",
  residenceCity: "Paris",
  residenceStreet: "12 Rue de Rivoli",
  residenceZipCode: "75001",
  dateOfBirth: "1990-01-01",
};

const info = (customer: WalletCaller) =>
  t.services.users.info(t.database.db, customer.clientId, customer.userId);
const tier = async (customer: WalletCaller) =>
  (await t.services.users.get(t.database.db, customer.clientId, customer.userId)).tier;

/** The KYC data: Vault's members checked here, the level and KYC_1's status and reason returned. */
async function kycData(customer: WalletCaller) {
  const response = await customer.call("GET", "/v2/customer/kyc/data");
  expect(response.statusCode, response.body).toBe(200);
  const { kycLevel, kyc1ClientData, ...rest } = response.json() as {
    kycLevel: "KYC_0" | "KYC_1" | null;
    kyc1ClientData: { status: string; reason: string | null; rejectFormattedMessage: string | null };
  };
  const notStarted = { status: "UNDEFINED", reason: null, rejectFormattedMessage: null };
  expect(rest).toEqual({ kyc2ClientData: notStarted, kyc3ClientData: notStarted });
  // Words to show exactly when the check was refused or failed.
  expect(kyc1ClientData.rejectFormattedMessage === null).toBe(
    kyc1ClientData.status !== "DENIED" && kyc1ClientData.reason === null,
  );
  const { rejectFormattedMessage: _, ...kyc1 } = kyc1ClientData;
  return { kycLevel, kyc1ClientData: kyc1 };
}

async function profile(customer: WalletCaller) {
  const response = await customer.call("GET", "/v2/customer/profile");
  expect(response.statusCode, response.body).toBe(200);
  const body = response.json() as Record<string, unknown>;
  expect(Object.values(body)).not.toContain(null); // Vault's rule: a field not set is left out
  return body;
}

/** What the profile takes from an e-mail login. */
const fromLogin = (customer: WalletCaller) => ({
  email: customer.login,
  confirmedEmail: true,
  pushEnabled: false,
  enabled2FA: false,
});
const AS_ANSWERED = { ...PROFILE, dateOfBirth: "1990-01-01T00:00:00.000Z" };

async function patch(customer: WalletCaller, body: unknown) {
  return customer.call("PATCH", "/v2/customer/profile", body);
}

/** A registered customer who completed the profile and reached KYC_0 (after the sandbox delay). */
async function kyc0Customer(overrides: Record<string, string> = {}, caller?: WalletCaller) {
  const customer = caller ?? (await registerCustomer(t, clientId));
  const saved = await patch(customer, { ...PROFILE, ...overrides });
  expect(saved.statusCode, saved.body).toBe(204);
  await expect.poll(async () => (await kycData(customer)).kycLevel, { timeout: 5000 }).toBe("KYC_0");
  return customer;
}

/** POST /v2/customer/kyc/start → the verification page's path. */
async function startKyc1(customer: WalletCaller): Promise<string> {
  const started = await customer.call("POST", "/v2/customer/kyc/start");
  expect(started.statusCode, started.body).toBe(200);
  const body = started.json();
  expect(body.status).toBe("UNDER_REVIEW");
  expect(body.verificationUrl).toMatch(
    /^http:\/\/localhost:3000\/sandbox\/kyc\/verification\/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
  );
  return new URL(body.verificationUrl).pathname;
}

/** The page as a browser opens it: no credentials. */
const openPage = (path: string) =>
  t.app.inject({ method: "GET", url: path, headers: { accept: "text/html" } });

/** A button of the page, posted as its form does. */
const press = (path: string, decision: string) =>
  t.app.inject({
    method: "POST",
    url: path,
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "text/html" },
    payload: `decision=${decision}&csrf=${tokenFor(t, path)}`,
  });

describe("countries", () => {
  it("maps every ISO 3166-1 alpha-3 code to its alpha-2 code, both ways", () => {
    expect(Object.keys(ALPHA3_TO_ALPHA2)).toHaveLength(249);
    expect(new Set(Object.values(ALPHA3_TO_ALPHA2)).size).toBe(249);
    expect(toAlpha2("FRA")).toBe("FR");
    expect(toAlpha2("deu")).toBe("DE");
    expect(toAlpha2("GBR")).toBe("GB");
    expect(toAlpha2("ALA")).toBe("AX");
    expect(toAlpha2("us")).toBe("US");
    expect(toAlpha3("NL")).toBe("NLD");
    for (const unknown of ["ZZ", "ZZZ", "XK", "UK", "EU", "F", "FRAN", "constructor", "__proto__"])
      expect(toAlpha2(unknown)).toBeUndefined();
  });
});

describe("PATCH /v2/customer/profile and GET /v2/customer/kyc/data", () => {
  it("stores the profile in the core user (alpha-3 country as alpha-2); a complete profile gives KYC_0", async () => {
    const customer = await registerCustomer(t, clientId);
    expect(await kycData(customer)).toEqual({
      kycLevel: null,
      kyc1ClientData: { status: "UNDEFINED", reason: null },
    });
    expect(await profile(customer)).toEqual(fromLogin(customer));

    const saved = await patch(customer, PROFILE);
    expect(saved.statusCode, saved.body).toBe(204);
    expect(saved.body).toBe("");

    const stored = await info(customer);
    expect(stored.name).toEqual({ firstName: "Marie", lastName: "Curie" });
    expect(stored.dateOfBirth).toBe("1990-01-01");
    expect(stored.countryOfResidence).toBe("FR");
    expect(stored.addresses).toEqual([
      { type: "HOME", street: "12 Rue de Rivoli", city: "Paris", postalCode: "75001", country: "FR" },
    ]);
    expect(stored.emails).toEqual([customer.login]); // from the registration, kept by the merge
    expect(await profile(customer)).toEqual({
      ...fromLogin(customer),
      ...AS_ANSWERED,
      residenceCountry: "FR",
    });

    // The sandbox accepts the KYC refresh after its delay: tier 1, KYC_0, on every face.
    await expect.poll(async () => (await kycData(customer)).kycLevel, { timeout: 5000 }).toBe("KYC_0");
    expect(await tier(customer)).toBe(1);
    expect((await kycData(customer)).kyc1ClientData).toEqual({ status: "UNDEFINED", reason: null });

    // A partial PATCH merges: the rest of the address stays; alpha-2 in lower case is accepted.
    expect((await patch(customer, { residenceCity: "Lyon", residenceZipCode: "69001" })).statusCode).toBe(
      204,
    );
    expect((await patch(customer, { residenceCountry: "be" })).statusCode).toBe(204);
    expect(await profile(customer)).toEqual({
      ...fromLogin(customer),
      ...AS_ANSWERED,
      residenceCountry: "BE",
      residenceCity: "Lyon",
      residenceZipCode: "69001",
    });
    expect((await info(customer)).addresses).toEqual([
      { type: "HOME", street: "12 Rue de Rivoli", city: "Lyon", postalCode: "69001", country: "BE" },
    ]);
  });

  it("accepts names in any script with spaces, apostrophes and hyphens, and addresses with - / . , #", async () => {
    const customer = await registerCustomer(t, clientId);
    for (const [firstName, lastName] of [
      ["Zoë", "O'Brien"],
      ["José María", "García-López"],
      ["Thị", "Nguyễn"],
      ["Łukasz", "d’Artagnan"],
      ["  Ada  ", " Lovelace "],
    ]) {
      const saved = await patch(customer, { firstName, lastName });
      expect(saved.statusCode, `${firstName} ${lastName}: ${saved.body}`).toBe(204);
    }
    expect((await info(customer)).name).toEqual({ firstName: "Ada", lastName: "Lovelace" }); // trimmed
    const saved = await patch(customer, {
      residenceStreet: "Flat 4/B, 221-B Baker St. #2",
      residenceCity: "St. Albans",
      residenceCountry: "gbr",
      residenceZipCode: "AL1 1AA",
    });
    expect(saved.statusCode, saved.body).toBe(204);
    expect((await info(customer)).addresses?.[0]).toEqual({
      type: "HOME",
      street: "Flat 4/B, 221-B Baker St. #2",
      city: "St. Albans",
      postalCode: "AL1 1AA",
      country: "GB",
    });
  });

  it("refuses bad input with a 400 naming the field, and changes nothing", async () => {
    const customer = await registerCustomer(t, clientId);
    expect((await patch(customer, PROFILE)).statusCode).toBe(204);
    await expect.poll(async () => (await kycData(customer)).kycLevel, { timeout: 5000 }).toBe("KYC_0");
    const before = { profile: await profile(customer), info: await info(customer) };
    const latestBefore = await t.services.kyc.latest(clientId, customer.userId);

    const today = new Date();
    const iso = (d: Date) => d.toISOString().slice(0, 10);
    const yearsAgo = (d: Date, years: number) => {
      const shifted = new Date(d);
      shifted.setUTCFullYear(d.getUTCFullYear() - years);
      return iso(shifted);
    };
    const tomorrow = new Date(today.getTime() + 86_400_000);

    const cases: [unknown, string][] = [
      [{ firstName: "R2D2" }, "firstName"],
      [{ firstName: "" }, "firstName"],
      [{ firstName: "   " }, "firstName"],
      [{ firstName: "'-" }, "firstName"],
      [{ firstName: "a".repeat(101) }, "firstName"],
      [{ lastName: "<script>" }, "lastName"],
      [{ lastName: "Curie_" }, "lastName"],
      [{ lastName: 42 }, "lastName"],
      [{ residenceCountry: "F1" }, "residenceCountry"],
      [{ residenceCountry: "FRAN" }, "residenceCountry"],
      [{ residenceCountry: "F" }, "residenceCountry"],
      [{ residenceCountry: "ZZ" }, "residenceCountry"],
      [{ residenceCountry: "ZZZ" }, "residenceCountry"],
      [{ residenceCountry: "XK" }, "residenceCountry"],
      [{ residenceCity: "Paris!" }, "residenceCity"],
      [{ residenceCity: "São Paulo" }, "residenceCity"],
      [{ residenceCity: "" }, "residenceCity"],
      [{ residenceCity: "x".repeat(101) }, "residenceCity"],
      [{ residenceStreet: "12 Rue; DROP TABLE" }, "residenceStreet"],
      [{ residenceStreet: "Rue\nde Rivoli" }, "residenceStreet"],
      [{ residenceStreet: "..." }, "residenceStreet"],
      [{ residenceZipCode: "75001_" }, "residenceZipCode"],
      [{ residenceZipCode: "1".repeat(21) }, "residenceZipCode"],
      [{ residenceZipCode: "" }, "residenceZipCode"],
      [{ dateOfBirth: "2999-01-01" }, "dateOfBirth"],
      [{ dateOfBirth: iso(tomorrow) }, "dateOfBirth"],
      [{ dateOfBirth: yearsAgo(tomorrow, 18) }, "dateOfBirth"], // 18 tomorrow: still 17 today
      [{ dateOfBirth: "1850-01-01" }, "dateOfBirth"],
      [{ dateOfBirth: "1990-02-30" }, "dateOfBirth"],
      [{ dateOfBirth: "01/02/1990" }, "dateOfBirth"],
      [{ primaryCurrency: "eur" }, "primaryCurrency"],
      [{ primaryCurrency: "EURO12" }, "primaryCurrency"],
      [{ primaryCurrency: "EU" }, "primaryCurrency"],
      // One bad field spoils the whole request: the good ones are not saved either.
      [{ ...PROFILE, firstName: "Pierre", residenceCity: "Paris%" }, "residenceCity"],
    ];
    for (const [body, field] of cases) {
      const response = await patch(customer, body);
      expect(response.statusCode, `${JSON.stringify(body)}: ${response.body}`).toBe(400);
      const error = response.json();
      expect(error.type).toBe("INVALID_REQUEST");
      expect(error.code).toBe(1000);
      expect(
        error.errors.map((e: { field: string }) => e.field),
        JSON.stringify(body),
      ).toContain(field);
    }

    // An unknown field (strict body), broken JSON, a body that is not an object.
    const unknown = await patch(customer, { ...PROFILE, firstName: "Pierre", nickname: "Mimi" });
    expect(unknown.statusCode, unknown.body).toBe(400);
    expect(unknown.body).toContain("nickname");
    const broken = await customer.call("PATCH", "/v2/customer/profile", '{"firstName": "Pierre",', {
      "content-type": "application/json",
    });
    expect(broken.statusCode, broken.body).toBe(400);
    expect(broken.json().type).toBe("INVALID_REQUEST");
    const list = await customer.call("PATCH", "/v2/customer/profile", '["Pierre"]', {
      "content-type": "application/json",
    });
    expect(list.statusCode, list.body).toBe(400);

    expect(await profile(customer)).toEqual(before.profile);
    expect(await info(customer)).toEqual(before.info);
    expect(await t.services.kyc.latest(clientId, customer.userId)).toEqual(latestBefore); // no KYC check
    expect(await tier(customer)).toBe(1);

    // The boundary: 18 today is old enough.
    const adult = await patch(customer, { dateOfBirth: yearsAgo(today, 18) });
    expect(adult.statusCode, adult.body).toBe(204);
  });

  it("keeps addresses whole: a street, city or zip code without the rest of an address is a 400", async () => {
    const customer = await registerCustomer(t, clientId);
    const city = await patch(customer, { residenceCity: "Paris" });
    expect(city.statusCode, city.body).toBe(400);
    expect(
      city
        .json()
        .errors.map((e: { field: string }) => e.field)
        .sort(),
    ).toEqual(["residenceCountry", "residenceStreet"]);
    // The country alone is the country of residence; street and city then make the address.
    expect((await patch(customer, { residenceCountry: "NLD" })).statusCode).toBe(204);
    const street = await patch(customer, { residenceStreet: "Damrak 1" });
    expect(street.statusCode, street.body).toBe(400);
    expect(street.json().errors.map((e: { field: string }) => e.field)).toEqual(["residenceCity"]);
    expect((await info(customer)).addresses).toBeUndefined();
    expect(
      (await patch(customer, { residenceStreet: "Damrak 1", residenceCity: "Amsterdam" })).statusCode,
    ).toBe(204);
    expect((await info(customer)).addresses).toEqual([
      { type: "HOME", street: "Damrak 1", city: "Amsterdam", country: "NL" },
    ]);
  });

  it("keeps the primary currency with the login: no KYC check for it", async () => {
    const customer = await registerCustomer(t, clientId);
    expect((await patch(customer, { primaryCurrency: "USDC" })).statusCode).toBe(204);
    expect((await profile(customer)).primaryCurrency).toBe("USDC");
    expect(await t.services.kyc.latest(clientId, customer.userId)).toBeUndefined();
    expect((await info(customer)).name).toBeUndefined();
  });
});

describe("POST /v2/customer/kyc/start and the sandbox verification page", () => {
  it("needs KYC_0 first: 422 with the missing fields, or the missing assessment", async () => {
    const fresh = await registerCustomer(t, clientId);
    const missing = await fresh.call("POST", "/v2/customer/kyc/start");
    expect(missing.statusCode, missing.body).toBe(422);
    expect(missing.json().type).toBe("MIN_INFO_MISSING");
    expect(missing.json().fields).toEqual(["FULL_NAME", "PHYSICAL_ADDRESS", "BIRTH_DATE"]);

    // A complete profile the sandbox holds for review ("Review"): no KYC_0 yet.
    const held = await registerCustomer(t, clientId);
    expect((await patch(held, { ...PROFILE, lastName: "Review" })).statusCode).toBe(204);
    await expect
      .poll(async () => (await t.services.kyc.latest(clientId, held.userId))?.status, { timeout: 5000 })
      .toBe("UNDER_REVIEW");
    const notYet = await held.call("POST", "/v2/customer/kyc/start");
    expect(notYet.statusCode, notYet.body).toBe(422);
    expect(notYet.json().type).toBe("MIN_ASSESSMENT_MISSING");
    expect(notYet.json().assessment).toEqual({ requiredTier: 1, currentTier: 0 });
    expect((await kycData(held)).kycLevel).toBeNull();
  });

  it("KYC_1: start → the hosted page → Submit documents → APPROVED after the sandbox delay; names then locked", async () => {
    const customer = await kyc0Customer();
    const path = await startKyc1(customer);
    expect(await kycData(customer)).toEqual({
      kycLevel: "KYC_0",
      kyc1ClientData: { status: "UNDER_REVIEW", reason: null },
    });
    expect(await startKyc1(customer)).toBe(path); // the page still open: the same page

    const page = await openPage(path);
    expect(page.statusCode, page.body).toBe(200);
    expect(page.headers["content-type"]).toMatch(/^text\/html/);
    expect(page.headers["cache-control"]).toBe("no-store");
    expect(page.body).toContain(`<form method="post" action="${path}">`);
    expect(page.body).toMatch(/<button id="submit">Submit documents<\/button>/);
    expect(page.body).toMatch(/<button id="cancel">Cancel<\/button>/);

    const submitted = await press(path, "submit");
    expect(submitted.statusCode, submitted.body).toBe(200);
    expect(submitted.headers["content-type"]).toMatch(/^text\/html/);
    expect(submitted.body).toContain("Documents submitted");
    const document = (await info(customer)).idDocument;
    expect(document).toMatchObject({ type: "PASSPORT", country: "FR" });
    expect(document?.number).toMatch(/^SBX-[0-9A-F]{12}$/);

    await expect
      .poll(async () => kycData(customer), { timeout: 5000 })
      .toEqual({ kycLevel: "KYC_1", kyc1ClientData: { status: "APPROVED", reason: null } });
    expect(await tier(customer)).toBe(2);

    // The page is done: the same button again shows the same result, the other one is a 409.
    const again = await press(path, "submit");
    expect(again.statusCode).toBe(200);
    expect(again.body).toContain("Documents submitted");
    expect((await press(path, "cancel")).statusCode).toBe(409);
    expect((await openPage(path)).body).not.toContain("<button");
    // Nothing left to verify.
    expect((await customer.call("POST", "/v2/customer/kyc/start")).statusCode).toBe(409);

    // Names are locked at KYC_1; the same value again (even with spaces around) is fine.
    const renamed = await patch(customer, { lastName: "Dupont" });
    expect(renamed.statusCode, renamed.body).toBe(400);
    expect(renamed.json().errors).toEqual([{ field: "lastName", message: expect.stringContaining("KYC_1") }]);
    const firstRenamed = await patch(customer, { ...PROFILE, firstName: "Maria", residenceCity: "Lyon" });
    expect(firstRenamed.statusCode, firstRenamed.body).toBe(400);
    expect(firstRenamed.json().errors[0].field).toBe("firstName");
    expect((await profile(customer)).residenceCity).toBe("Paris"); // nothing changed
    const same = await patch(customer, { firstName: " Marie ", lastName: "Curie", residenceCity: "Lyon" });
    expect(same.statusCode, same.body).toBe(204);
    expect(await profile(customer)).toMatchObject({
      firstName: "Marie",
      lastName: "Curie",
      residenceCity: "Lyon",
    });
    // The refresh that change started keeps KYC_1 (the ID document is still there).
    await expect
      .poll(async () => (await t.services.kyc.latest(clientId, customer.userId))?.status, { timeout: 5000 })
      .toBe("ACCEPTED");
    expect((await kycData(customer)).kycLevel).toBe("KYC_1");
  });

  it('last name "Refuse" → DENIED with the refusal reason; the customer may start again', async () => {
    const customer = await kyc0Customer({ lastName: "Tester" });
    // Before KYC_1 the names may change; the sandbox decides on the new one.
    expect((await patch(customer, { lastName: "Refuse" })).statusCode).toBe(204);
    const path = await startKyc1(customer);
    expect((await press(path, "submit")).statusCode).toBe(200);
    await expect
      .poll(async () => (await kycData(customer)).kyc1ClientData, { timeout: 5000 })
      .toEqual({ status: "DENIED", reason: "DOCUMENT_INVALID" });
    expect((await kycData(customer)).kycLevel).toBe("KYC_0");
    expect(await tier(customer)).toBe(1);

    const retry = await startKyc1(customer);
    expect(retry).not.toBe(path);
    expect((await kycData(customer)).kyc1ClientData.status).toBe("UNDER_REVIEW");
  });

  it('last name "Review" → UNDER_REVIEW until staff decide; a second start meanwhile is a 409', async () => {
    const customer = await kyc0Customer({ lastName: "Tester" });
    expect((await patch(customer, { lastName: "Review" })).statusCode).toBe(204);
    const path = await startKyc1(customer);
    expect((await press(path, "submit")).statusCode).toBe(200);
    await expect
      .poll(async () => (await t.services.kyc.latest(clientId, customer.userId))?.status, { timeout: 5000 })
      .toBe("UNDER_REVIEW");
    expect(await kycData(customer)).toEqual({
      kycLevel: "KYC_0",
      kyc1ClientData: { status: "UNDER_REVIEW", reason: null },
    });
    expect((await customer.call("POST", "/v2/customer/kyc/start")).statusCode).toBe(409);
  });

  it("Cancel abandons the page: UNDEFINED, nothing recorded; submitting it later is a 409", async () => {
    const customer = await kyc0Customer();
    const path = await startKyc1(customer);
    const cancelled = await press(path, "cancel");
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect(cancelled.body).toContain("Verification cancelled");
    expect(await kycData(customer)).toEqual({
      kycLevel: "KYC_0",
      kyc1ClientData: { status: "UNDEFINED", reason: null },
    });
    expect((await info(customer)).idDocument).toBeUndefined();
    expect((await press(path, "submit")).statusCode).toBe(409);
    expect((await info(customer)).idDocument).toBeUndefined();
    expect(await startKyc1(customer)).not.toBe(path);
  });

  it("the page: an unknown id is a 404, a malformed one a 400, a bad decision a 400", async () => {
    const unknown = await openPage("/sandbox/kyc/verification/00000000-0000-4000-8000-000000000000");
    expect(unknown.statusCode).toBe(404);
    expect(
      (await press("/sandbox/kyc/verification/00000000-0000-4000-8000-000000000000", "submit")).statusCode,
    ).toBe(404);
    expect((await openPage("/sandbox/kyc/verification/not-a-uuid")).statusCode).toBe(400);
    const customer = await kyc0Customer();
    const path = await startKyc1(customer);
    expect((await press(path, "approve")).statusCode).toBe(400);
    expect((await openPage(path)).body).toContain("Submit documents"); // still open
  });

  it("serves sandbox clients only: a live client's page is a 404, and kyc/start a 409", async () => {
    const other = await walletClient(t);
    const customer = await kyc0Customer({}, await registerCustomer(t, other.clientId));
    const path = await startKyc1(customer);
    const live = await t.app.inject({
      method: "PATCH",
      url: `/admin/clients/${other.clientId}`,
      headers: t.adminAuth,
      payload: { mode: "live" },
    });
    expect(live.statusCode, live.body).toBe(200);
    expect((await openPage(path)).statusCode).toBe(404);
    expect((await press(path, "submit")).statusCode).toBe(404);
    expect((await info(customer)).idDocument).toBeUndefined();
    const start = await customer.call("POST", "/v2/customer/kyc/start");
    expect(start.statusCode, start.body).toBe(409);
  });
});

describe("access", () => {
  const routes: [string, string, unknown?][] = [
    ["GET", "/v2/customer/profile"],
    ["PATCH", "/v2/customer/profile", { firstName: "Eve" }],
    ["GET", "/v2/customer/kyc/data"],
    ["POST", "/v2/customer/kyc/start"],
  ];

  it("401 without a token or with an unknown one", async () => {
    for (const [method, url, body] of routes) {
      const none = await t.app.inject({
        method: method as "GET",
        url,
        ...(body ? { payload: body as object } : {}),
      });
      expect(none.statusCode, `${method} ${url}`).toBe(401);
      expect(none.json().type).toBe("UNAUTHORIZED");
      const unknown = await t.app.inject({
        method: method as "GET",
        url,
        headers: { authorization: "Bearer not-a-real-token-at-all" },
        ...(body ? { payload: body as object } : {}),
      });
      expect(unknown.statusCode, `${method} ${url}`).toBe(401);
    }
  });

  it("403 for staff roles: the Pay-in API is the customers'", async () => {
    const support = await staff(t, admin, "support");
    for (const caller of [admin, support]) {
      for (const [method, url, body] of routes) {
        const response = await caller.call(method, url, body);
        expect(response.statusCode, `${method} ${url}: ${response.body}`).toBe(403);
        expect(response.json().type).toBe("FORBIDDEN");
      }
    }
  });

  it("a merchant customer may use it too, and each customer sees only their own profile", async () => {
    const merchant = await registerCustomer(t, clientId, "merchant");
    const individual = await registerCustomer(t, clientId);
    expect((await patch(merchant, { firstName: "Mona", lastName: "Merchant" })).statusCode).toBe(204);
    expect((await profile(merchant)).firstName).toBe("Mona");
    expect((await profile(individual)).firstName).toBeUndefined();
  });

  it("the routes are in the OpenAPI document", async () => {
    const doc = await t.app.inject({ method: "GET", url: "/openapi.json" });
    expect(doc.statusCode).toBe(200);
    const paths = doc.json().paths;
    expect(Object.keys(paths)).toEqual(
      expect.arrayContaining(["/v2/customer/profile", "/v2/customer/kyc/data", "/v2/customer/kyc/start"]),
    );
    expect(
      paths["/v2/customer/profile"].patch.requestBody.content["application/json"].schema.additionalProperties,
    ).toBe(false);
  });
});
