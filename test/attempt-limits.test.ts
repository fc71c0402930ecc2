import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { openDatabase } from "../src/db/database.ts";
import { Sealer } from "../src/lib/sealer.ts";
import { MAX_CODE_ATTEMPTS } from "../src/modules/logins/codes.ts";
import { postgresUrl } from "./database.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { lastOtp, logIn, PASSWORD, registerCustomer, uniqueLogin, walletClient } from "./wallet.ts";

/**
 * Issue 23.2: attempt counters under a burst. N simultaneous guesses for one login (N−1 wrong, the
 * right one last or anywhere): at most the limit of them are weighed, a right one weighed after the
 * lock is refused, and the lock stands after the burst. Run on PGlite and, with DATABASE_URL, on
 * PostgreSQL (where the pool runs the requests really at once).
 */

// Every password comparison goes through verifyPassword: count the calls to count the guesses weighed.
const weighed = vi.hoisted(() => ({ passwords: 0 }));
vi.mock("../src/modules/admins/service.ts", async (importOriginal) => {
  const original = await importOriginal<typeof import("../src/modules/admins/service.ts")>();
  return {
    ...original,
    verifyPassword: async (password: string, stored: string) => {
      weighed.passwords++;
      return original.verifyPassword(password, stored);
    },
  };
});

const MAX_FAILURES = 5; // the default of LoginsOptions.maxFailures

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

const post = (url: string, clientId: string, payload: object) =>
  t.app.inject({ method: "POST", url, headers: { "x-client-id": clientId }, payload });

/** `n` requests at once: `n − 1` wrong, the right one at `rightAt`. Statuses by position. */
async function burst(n: number, rightAt: number, send: (right: boolean) => Promise<{ statusCode: number }>) {
  const responses = await Promise.all(Array.from({ length: n }, (_, i) => send(i === rightAt)));
  const statuses = responses.map((r) => r.statusCode);
  const count = (status: number) => statuses.filter((s) => s === status).length;
  return { statuses, right: statuses[rightAt], count };
}

/** The code comparisons of `purpose` made while `run` runs (each weighs the code's keyed hash). */
async function codeComparisons<T>(
  purpose: string,
  run: () => Promise<T>,
): Promise<{ result: T; weighed: number }> {
  const spy = vi.spyOn(Sealer.prototype, "fingerprint");
  try {
    const result = await run();
    const weighedCodes = spy.mock.calls.filter(
      ([value]) => value.startsWith("otp\u0000") && value.includes(`\u0000${purpose}\u0000`),
    );
    return { result, weighed: weighedCodes.length };
  } finally {
    spy.mockRestore();
  }
}

const cases = [
  { n: 50, where: "last" },
  { n: 150, where: "last" },
  { n: 50, where: "at a random place" },
  { n: 150, where: "at a random place" },
] as const;

describe("passwords: a burst of logins for one login", () => {
  for (const { n, where } of cases)
    it(`${n} at once, the right one ${where}: at most ${MAX_FAILURES} weighed, and the lock stands`, async () => {
      const { clientId, admin } = await walletClient(t);
      const rightAt = where === "last" ? n - 1 : Math.floor(Math.random() * n);
      weighed.passwords = 0;
      const { statuses, right, count } = await burst(n, rightAt, (isRight) =>
        post("/api/v1/authorization", clientId, {
          login: admin.login,
          password: isRight ? PASSWORD : "Wrong#Pass1",
        }),
      );
      const compared = weighed.passwords;
      expect(
        statuses.every((s) => s === 401 || s === 429 || s === 200),
        String(statuses),
      ).toBe(true);
      expect(compared, `scrypt comparisons for ${n} guesses`).toBeLessThanOrEqual(MAX_FAILURES);
      expect(count(401) + count(200), String(statuses)).toBeLessThanOrEqual(MAX_FAILURES);
      expect(count(200)).toBeLessThanOrEqual(1);
      if (where === "last") expect(right, "the right password, last of the burst").toBe(429);
      // The burst locked the login; no success cleared the lock: both passwords are a 429 now.
      const after = await post("/api/v1/authorization", clientId, { login: admin.login, password: PASSWORD });
      expect(after.statusCode, after.body).toBe(429);
      expect(Number(after.headers["retry-after"])).toBeGreaterThan(800);
      const wrong = await post("/api/v1/authorization", clientId, {
        login: admin.login,
        password: "Wrong#Pass1",
      });
      expect(wrong.statusCode).toBe(429);
      // Nothing is left in flight: once the lock ends, the right password logs in (and the count restarts).
      await t.database.db
        .updateTable("logins")
        .set({ locked_until: new Date(Date.now() - 1000) })
        .where("client_id", "=", clientId)
        .where("login", "=", admin.login)
        .execute();
      await logIn(t, clientId, admin.login);
      const row = await t.database.db
        .selectFrom("logins")
        .select(["failed_attempts", "locked_until"])
        .where("client_id", "=", clientId)
        .where("login", "=", admin.login)
        .executeTakeFirstOrThrow();
      expect(row).toEqual({ failed_attempts: 0, locked_until: null });
    });

  it("a login with no guess in flight behaves as before: four wrong, then the right one resets the count", async () => {
    const { clientId, admin } = await walletClient(t);
    for (let i = 0; i < 4; i++)
      expect(
        (await post("/api/v1/authorization", clientId, { login: admin.login, password: "Wrong#Pass1" }))
          .statusCode,
      ).toBe(401);
    await logIn(t, clientId, admin.login);
    for (let i = 0; i < 4; i++)
      expect(
        (await post("/api/v1/authorization", clientId, { login: admin.login, password: "Wrong#Pass1" }))
          .statusCode,
      ).toBe(401);
    await logIn(t, clientId, admin.login);
  });

  it("a few right passwords at once (a double click) all log in", async () => {
    const { clientId, admin } = await walletClient(t);
    const { count } = await burst(4, 0, () =>
      post("/api/v1/authorization", clientId, { login: admin.login, password: PASSWORD }),
    );
    expect(count(200)).toBe(4);
    await logIn(t, clientId, admin.login);
  });

  it("changing the password: 50 at once with a stolen token, the right old password at a random place", async () => {
    const { clientId } = await walletClient(t);
    const customer = await registerCustomer(t, clientId);
    weighed.passwords = 0;
    const { statuses, count } = await burst(50, Math.floor(Math.random() * 50), (isRight) =>
      customer.call("POST", "/api/v1/password/change", {
        oldPassword: isRight ? PASSWORD : "Wrong#Pass1",
        newPassword: "N3w#Password",
      }),
    );
    // Each weighed guess that changed the password hashed the new one too: count the old-password checks.
    expect(
      statuses.every((s) => s === 400 || s === 429 || s === 200),
      String(statuses),
    ).toBe(true);
    expect(count(400) + count(200), String(statuses)).toBeLessThanOrEqual(MAX_FAILURES);
    expect(weighed.passwords).toBeLessThanOrEqual(MAX_FAILURES);
    const changed = count(200) === 1;
    for (const password of [PASSWORD, "N3w#Password"]) {
      const after = await post("/api/v1/authorization", clientId, { login: customer.login, password });
      expect(after.statusCode, `${password} after the burst (changed: ${changed})`).toBe(429);
    }
  });
});

describe("one-time codes: a burst of codes for one login", () => {
  for (const { n, where } of cases)
    it(`two-factor login, ${n} codes at once, the right one ${where}: at most ${MAX_CODE_ATTEMPTS} weighed`, async () => {
      const { clientId, admin } = await walletClient(t);
      const login = uniqueLogin("twofactor");
      const made = await admin.call("POST", "/api/v1/users", {
        login,
        role: "support",
        password: PASSWORD,
        twoFactor: true,
      });
      expect(made.statusCode, made.body).toBe(201);
      expect((await post("/api/v1/authorization", clientId, { login, password: PASSWORD })).json()).toEqual({
        action: "OTP_SENT",
      });
      const otp = await lastOtp(t, clientId, login);
      const wrongCode = otp === "000000" ? "111111" : "000000";
      const rightAt = where === "last" ? n - 1 : Math.floor(Math.random() * n);
      const { result, weighed: compared } = await codeComparisons("LOGIN", () =>
        burst(n, rightAt, (isRight) =>
          post("/api/v1/authorization/confirm", clientId, { login, otp: isRight ? otp : wrongCode }),
        ),
      );
      const { statuses, right, count } = result;
      // 400 a wrong code, 403 locked, 200 the right one, 404 once it is used up; never 409 "used
      // already" for a code locked meanwhile (it would tell that code was the right one).
      expect(
        statuses.every((s) => [400, 403, 404, 200].includes(s)),
        String(statuses),
      ).toBe(true);
      expect(compared, `code comparisons for ${n} codes`).toBeLessThanOrEqual(MAX_CODE_ATTEMPTS);
      expect(count(400), String(statuses)).toBeLessThanOrEqual(MAX_CODE_ATTEMPTS - 1);
      expect(count(200)).toBeLessThanOrEqual(1);
      if (where === "last") expect(right, "the right code, last of the burst").toBe(403);
      if (count(200) === 0) {
        // Locked: the right code is refused now too, and a new login cannot replace the code.
        expect((await post("/api/v1/authorization/confirm", clientId, { login, otp })).statusCode).toBe(403);
        expect(
          (await post("/api/v1/authorization", clientId, { login, password: PASSWORD })).statusCode,
        ).toBe(403);
      }
    });

  it("registration: 50 codes at once, the right one last, is locked and stays locked", async () => {
    const { clientId } = await walletClient(t);
    const login = uniqueLogin("reg");
    expect((await post("/api/v1/registration", clientId, { login, role: "individual" })).statusCode).toBe(
      200,
    );
    const otp = await lastOtp(t, clientId, login);
    const wrongCode = otp === "000000" ? "111111" : "000000";
    const { result, weighed: compared } = await codeComparisons("REGISTRATION", () =>
      burst(50, 49, (isRight) =>
        post("/api/v1/registration/confirm", clientId, {
          login,
          otp: isRight ? otp : wrongCode,
          password: PASSWORD,
        }),
      ),
    );
    expect(compared).toBeLessThanOrEqual(MAX_CODE_ATTEMPTS);
    expect(result.count(400)).toBeLessThanOrEqual(MAX_CODE_ATTEMPTS - 1);
    expect(result.right).toBe(403);
    expect(
      (await post("/api/v1/registration/confirm", clientId, { login, otp, password: PASSWORD })).statusCode,
    ).toBe(403);
  });

  it("password recovery: 50 codes at once, the right one at a random place: at most five weighed", async () => {
    const { clientId } = await walletClient(t);
    const customer = await registerCustomer(t, clientId);
    expect((await post("/api/v1/password/recovery", clientId, { login: customer.login })).statusCode).toBe(
      200,
    );
    const otp = await lastOtp(t, clientId, customer.login);
    const wrongCode = otp === "000000" ? "111111" : "000000";
    const { result, weighed: compared } = await codeComparisons("PASSWORD_RESET", () =>
      burst(50, Math.floor(Math.random() * 50), (isRight) =>
        post("/api/v1/password/recovery/confirm", clientId, {
          login: customer.login,
          otp: isRight ? otp : wrongCode,
          password: "N3w#Password",
        }),
      ),
    );
    expect(
      result.statuses.every((s) => [400, 403, 404, 200].includes(s)),
      String(result.statuses),
    ).toBe(true);
    expect(compared).toBeLessThanOrEqual(MAX_CODE_ATTEMPTS);
    expect(result.count(400)).toBeLessThanOrEqual(MAX_CODE_ATTEMPTS - 1);
    if (result.count(200) === 0)
      expect(
        (
          await post("/api/v1/password/recovery/confirm", clientId, {
            login: customer.login,
            otp,
            password: "N3w#Password",
          })
        ).statusCode,
      ).toBe(403);
  });
});

describe.runIf(postgresUrl)("two Ferry processes on one PostgreSQL", () => {
  it("100 logins at once, split between them, the right one last: at most 5 weighed in all", async () => {
    const { clientId, admin } = await walletClient(t);
    const second = await openDatabase({ databaseUrl: (t.database as { url?: string }).url, poolSize: 4 });
    const other = await startTestApp({ database: second });
    try {
      const n = 100;
      weighed.passwords = 0;
      const { statuses, right, count } = await burst(n, n - 1, (isRight) => {
        const app = Math.random() < 0.5 ? t.app : other.app;
        return app.inject({
          method: "POST",
          url: "/api/v1/authorization",
          headers: { "x-client-id": clientId },
          payload: { login: admin.login, password: isRight ? PASSWORD : "Wrong#Pass1" },
        });
      });
      expect(weighed.passwords, String(statuses)).toBeLessThanOrEqual(MAX_FAILURES);
      expect(count(401) + count(200), String(statuses)).toBeLessThanOrEqual(MAX_FAILURES);
      expect(right).toBe(429);
      for (const app of [t.app, other.app]) {
        const after = await app.inject({
          method: "POST",
          url: "/api/v1/authorization",
          headers: { "x-client-id": clientId },
          payload: { login: admin.login, password: PASSWORD },
        });
        expect(after.statusCode).toBe(429);
      }
    } finally {
      await other.close();
    }
  });
});
