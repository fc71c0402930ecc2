import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../src/db/database.ts";
import { postgresUrl } from "./database.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { lastOtp, logIn, PASSWORD, registerCustomer, staff, uniqueLogin, walletClient } from "./wallet.ts";

/** Wallet API access: the first administrator, logins, tokens, lockout, registration, 2FA, recovery, users. */

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ settings: { accessTokenTtlSeconds: 2 } });
});
afterAll(() => t.close());

const post = (url: string, clientId: string | undefined, payload: unknown) =>
  t.app.inject({
    method: "POST",
    url,
    headers: clientId ? { "x-client-id": clientId } : {},
    payload: payload as object,
  });

describe("the first administrator and logging in", () => {
  it("the platform admin makes a client's first administrator; a generated password is shown once and works", async () => {
    const { clientId } = await walletClient(t);
    const login = uniqueLogin("first");
    const made = await t.app.inject({
      method: "POST",
      url: `/admin/clients/${clientId}/staff`,
      headers: t.adminAuth,
      payload: { login: login.toUpperCase(), role: "administrator" },
    });
    expect(made.statusCode, made.body).toBe(201);
    const { password, userId, role } = made.json();
    expect(role).toBe("administrator");
    expect(password).toMatch(/.{20,}/);
    const admin = await logIn(t, clientId, login, password);
    expect(admin.userId).toBe(userId);
    // The same login again (any case) is a 409; no platform admin credentials is a 401; unknown client 404.
    const again = await t.app.inject({
      method: "POST",
      url: `/admin/clients/${clientId}/staff`,
      headers: t.adminAuth,
      payload: { login, role: "administrator" },
    });
    expect(again.statusCode).toBe(409);
    const anonymous = await t.app.inject({
      method: "POST",
      url: `/admin/clients/${clientId}/staff`,
      payload: { login: uniqueLogin(), role: "support" },
    });
    expect(anonymous.statusCode).toBe(401);
    const nowhere = await t.app.inject({
      method: "POST",
      url: "/admin/clients/no-such-client/staff",
      headers: t.adminAuth,
      payload: { login: uniqueLogin(), role: "support" },
    });
    expect(nowhere.statusCode).toBe(404);
    // The password was never logged.
    expect(t.logs.join("\n")).not.toContain(password);
  });

  it("tokens: Bearer and TOKEN accepted, DELETE ends one, an expired one is a 401", async () => {
    const { admin } = await walletClient(t);
    const viaToken = await t.app.inject({
      method: "GET",
      url: "/api/v1/currencies",
      headers: { authorization: `TOKEN ${admin.token}` },
    });
    expect(viaToken.statusCode, viaToken.body).toBe(200);
    expect((await admin.call("GET", "/api/v1/currencies")).statusCode).toBe(200);
    expect((await t.app.inject({ method: "GET", url: "/api/v1/currencies" })).statusCode).toBe(401);

    const other = await logIn(t, admin.clientId, admin.login);
    expect((await other.call("DELETE", "/api/v1/authorization")).statusCode).toBe(200);
    expect((await other.call("GET", "/api/v1/currencies")).statusCode).toBe(401);
    expect((await admin.call("GET", "/api/v1/currencies")).statusCode).toBe(200);

    await new Promise((r) => setTimeout(r, 2200));
    const expired = await admin.call("GET", "/api/v1/currencies");
    expect(expired.statusCode).toBe(401);
    expect(expired.json().message).toMatch(/expired/);
  });

  it("wrong passwords: 401 saying so, the fifth locks the login (429 with Retry-After), even for the right password", async () => {
    const { clientId, admin } = await walletClient(t);
    for (let i = 1; i <= 4; i++) {
      const wrong = await post("/api/v1/authorization", clientId, {
        login: admin.login,
        password: "Wrong#Pass1",
      });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.json().message).toMatch(/locked for 15 minutes/);
    }
    const fifth = await post("/api/v1/authorization", clientId, {
      login: admin.login,
      password: "Wrong#Pass1",
    });
    expect(fifth.statusCode).toBe(429);
    expect(Number(fifth.headers["retry-after"])).toBeGreaterThan(800);
    const right = await post("/api/v1/authorization", clientId, { login: admin.login, password: PASSWORD });
    expect(right.statusCode).toBe(429);
    expect(right.json().message).toMatch(/locked until/);
    // An unknown login is the same 401 (no lock to reveal it).
    const unknown = await post("/api/v1/authorization", clientId, {
      login: uniqueLogin(),
      password: PASSWORD,
    });
    expect(unknown.statusCode).toBe(401);
  });

  it("X-Client-Id names the client; a login of one client does not exist in another", async () => {
    const a = await walletClient(t);
    const b = await walletClient(t);
    const wrongClient = await post("/api/v1/authorization", b.clientId, {
      login: a.admin.login,
      password: PASSWORD,
    });
    expect(wrongClient.statusCode).toBe(401);
    const noClient = await post("/api/v1/authorization", undefined, {
      login: a.admin.login,
      password: PASSWORD,
    });
    expect(noClient.statusCode).toBe(400);
    const unknownClient = await post("/api/v1/authorization", "no-such-client", {
      login: a.admin.login,
      password: PASSWORD,
    });
    expect(unknownClient.statusCode).toBe(404);
  });

  it("two-factor: OTP_SENT, then the code gives the token; a wrong code is a 400", async () => {
    const { clientId, admin } = await walletClient(t);
    const login = uniqueLogin("twofactor");
    expect(
      (
        await admin.call("POST", "/api/v1/users", {
          login,
          role: "support",
          password: PASSWORD,
          twoFactor: true,
        })
      ).statusCode,
    ).toBe(201);
    const first = await post("/api/v1/authorization", clientId, { login, password: PASSWORD });
    expect(first.json()).toEqual({ action: "OTP_SENT" });
    const otp = await lastOtp(t, clientId, login);
    const wrong = await post("/api/v1/authorization/confirm", clientId, {
      login,
      otp: otp === "000000" ? "111111" : "000000",
    });
    expect(wrong.statusCode).toBe(400);
    const confirmed = await post("/api/v1/authorization/confirm", clientId, { login, otp });
    expect(confirmed.statusCode, confirmed.body).toBe(200);
    expect(confirmed.json().members[0].role).toBe("support");
    // The code is single-use.
    expect((await post("/api/v1/authorization/confirm", clientId, { login, otp })).statusCode).toBe(404);
  });
});

describe("registration", () => {
  it("registration: OTP to the outbox, password rules named, the customer logged in with an organization of their own", async () => {
    const { clientId, admin } = await walletClient(t);
    const login = uniqueLogin("reg");
    expect(
      (
        await post("/api/v1/registration", clientId, { login, role: "merchant", legalType: "corporation" })
      ).json(),
    ).toEqual({
      status: "ok",
      action: "OTP_SENT",
    });
    const otp = await lastOtp(t, clientId, login);
    for (const [password, rule] of [
      ["Sh0rt#", /at least 8/],
      ["nouppercase1#", /upper-case/],
      ["NOLOWERCASE1#", /lower-case/],
      ["NoDigits#here", /digit/],
      ["NoSpecial123", /one of/],
    ] as const) {
      const weak = await post("/api/v1/registration/confirm", clientId, { login, otp, password });
      expect(weak.statusCode).toBe(400);
      expect(weak.json().errors[0]).toMatchObject({
        field: "password",
        message: expect.stringMatching(rule),
      });
    }
    const done = await post("/api/v1/registration/confirm", clientId, { login, otp, password: PASSWORD });
    expect(done.statusCode, done.body).toBe(200);
    const member = done.json().members[0];
    expect(member.role).toBe("merchant");
    expect(member.organization.type).toBe("merchant");
    // Registered once: again is a 409; the customer is a core user (one person across faces).
    expect((await post("/api/v1/registration", clientId, { login, role: "individual" })).statusCode).toBe(
      409,
    );
    const user = await t.services.users.get(t.database.db, clientId, member.user.id);
    expect(user.type).toBe("BUSINESS");
    const found = await admin.call("POST", "/api/v1/users/view", { filter: { email: login } });
    expect(found.json().records).toHaveLength(1);
    // Neither the login (an e-mail), nor the code, nor the password reached a log line.
    const logs = t.logs.join("\n");
    expect(logs).not.toContain(login);
    expect(logs).not.toContain(`"${otp}"`);
    expect(logs).not.toContain(PASSWORD);
  });

  it("five wrong codes lock the registration (403), and a new start does not unlock it", async () => {
    const { clientId } = await walletClient(t);
    const login = uniqueLogin("locked");
    await post("/api/v1/registration", clientId, { login, role: "individual" });
    const otp = await lastOtp(t, clientId, login);
    const wrongCode = otp === "999999" ? "999998" : "999999";
    for (let i = 1; i <= 4; i++) {
      const wrong = await post("/api/v1/registration/confirm", clientId, {
        login,
        otp: wrongCode,
        password: PASSWORD,
      });
      expect(wrong.statusCode).toBe(400);
      expect(wrong.json().message).toMatch(new RegExp(`${5 - i} attempts? left`));
    }
    expect(
      (await post("/api/v1/registration/confirm", clientId, { login, otp: wrongCode, password: PASSWORD }))
        .statusCode,
    ).toBe(403);
    expect(
      (await post("/api/v1/registration/confirm", clientId, { login, otp, password: PASSWORD })).statusCode,
    ).toBe(403);
    expect((await post("/api/v1/registration", clientId, { login, role: "individual" })).statusCode).toBe(
      403,
    );
    expect((await post("/api/v1/registration/resend-otp", clientId, { login })).statusCode).toBe(403);
  });

  it("resend-otp replaces the code; the old one no longer works", async () => {
    const { clientId } = await walletClient(t);
    const login = uniqueLogin("resend");
    await post("/api/v1/registration", clientId, { login, role: "individual" });
    const first = await lastOtp(t, clientId, login);
    expect((await post("/api/v1/registration/resend-otp", clientId, { login })).statusCode).toBe(200);
    const second = await lastOtp(t, clientId, login);
    if (first !== second)
      expect(
        (await post("/api/v1/registration/confirm", clientId, { login, otp: first, password: PASSWORD }))
          .statusCode,
      ).toBe(400);
    expect(
      (await post("/api/v1/registration/confirm", clientId, { login, otp: second, password: PASSWORD }))
        .statusCode,
    ).toBe(200);
  });
});

describe("password recovery", () => {
  it("a reset code to the login; the new password works, the old tokens end; an unknown login gets the same answer", async () => {
    const { clientId } = await walletClient(t);
    const customer = await registerCustomer(t, clientId);
    expect((await post("/api/v1/password/recovery", clientId, { login: customer.login })).json()).toEqual({
      status: "ok",
    });
    expect((await post("/api/v1/password/recovery", clientId, { login: uniqueLogin() })).json()).toEqual({
      status: "ok",
    });
    const otp = await lastOtp(t, clientId, customer.login);
    const reset = await post("/api/v1/password/recovery/confirm", clientId, {
      login: customer.login,
      otp,
      password: "N3w#Password",
    });
    expect(reset.statusCode, reset.body).toBe(200);
    expect((await customer.call("GET", "/api/v1/coins")).statusCode).toBe(401);
    expect(
      (await post("/api/v1/authorization", clientId, { login: customer.login, password: PASSWORD }))
        .statusCode,
    ).toBe(401);
    await logIn(t, clientId, customer.login, "N3w#Password");
  });

  it("the login lock holds here too: locked, even the right old password is a 429 and nothing changes", async () => {
    const { clientId } = await walletClient(t);
    const customer = await registerCustomer(t, clientId);
    const attempts = [];
    for (let i = 0; i < 5; i++)
      attempts.push(
        (
          await customer.call("POST", "/api/v1/password/change", {
            oldPassword: "Wrong#Pass1",
            newPassword: "N3w#Password",
          })
        ).statusCode,
      );
    expect(attempts).toEqual([400, 400, 400, 400, 429]);
    const right = await customer.call("POST", "/api/v1/password/change", {
      oldPassword: PASSWORD,
      newPassword: "N3w#Password",
    });
    expect(right.statusCode).toBe(429);
    expect(
      (await post("/api/v1/authorization", clientId, { login: customer.login, password: "N3w#Password" }))
        .statusCode,
    ).toBe(429);
  });
});

describe("changing a password", () => {
  it("needs the old one (a 400 counted like a wrong login); the new one works; other tokens end, this one stays", async () => {
    const { clientId } = await walletClient(t);
    const customer = await registerCustomer(t, clientId);
    const other = await logIn(t, clientId, customer.login);
    const wrong = await customer.call("POST", "/api/v1/password/change", {
      oldPassword: "Wrong#Pass1",
      newPassword: "N3w#Password",
    });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().errors[0].field).toBe("oldPassword");
    const weak = await customer.call("POST", "/api/v1/password/change", {
      oldPassword: PASSWORD,
      newPassword: "weakpass",
    });
    expect(weak.statusCode).toBe(400);
    expect(weak.json().errors[0].field).toBe("newPassword");
    const changed = await customer.call("POST", "/api/v1/password/change", {
      oldPassword: PASSWORD,
      newPassword: "N3w#Password",
    });
    expect(changed.statusCode, changed.body).toBe(200);
    expect((await customer.call("GET", "/api/v1/coins")).statusCode).toBe(200);
    expect((await other.call("GET", "/api/v1/coins")).statusCode).toBe(401);
    await logIn(t, clientId, customer.login, "N3w#Password");
  });
});

describe("one-time codes are not a flood", () => {
  it("starting a registration again counts as a send: the sixth code is a 429; recovery codes too (silently)", async () => {
    const { clientId } = await walletClient(t);
    const login = uniqueLogin("flood");
    for (let i = 1; i <= 5; i++)
      expect((await post("/api/v1/registration", clientId, { login, role: "individual" })).statusCode).toBe(
        200,
      );
    const sixth = await post("/api/v1/registration", clientId, { login, role: "individual" });
    expect(sixth.statusCode).toBe(429);
    expect(Number(sixth.headers["retry-after"])).toBeGreaterThan(0);
    expect((await post("/api/v1/registration/resend-otp", clientId, { login })).statusCode).toBe(429);
    const customer = await registerCustomer(t, clientId);
    for (let i = 1; i <= 8; i++)
      expect((await post("/api/v1/password/recovery", clientId, { login: customer.login })).statusCode).toBe(
        200,
      );
    const outbox = await t.app.inject({
      method: "GET",
      url: `/sandbox/outbox?to=${encodeURIComponent(customer.login)}&clientId=${clientId}`,
      headers: t.adminAuth,
    });
    expect(outbox.json().records.filter((r: { kind: string }) => r.kind === "PASSWORD_RESET")).toHaveLength(
      5,
    );
  });
});

describe("organizations, users and roles", () => {
  it("one system organization per client; staff join it, customers get their own; users/view filters", async () => {
    const { clientId, admin } = await walletClient(t);
    const support = await staff(t, admin, "support");
    const anna = await registerCustomer(t, clientId);
    const orgs = await admin.call("POST", "/api/v1/organizations", {
      pageNumber: 0,
      pageSize: 10,
      filter: { types: ["system"] },
    });
    expect(orgs.statusCode, orgs.body).toBe(200);
    expect(orgs.json().totalRecords).toBe(1);
    const systemId = orgs.json().records[0].id;
    const all = await support.call("POST", "/api/v1/organizations", {});
    expect(all.json().totalRecords).toBe(2);
    // Staff never join a customer's organization.
    const annasOrg = all.json().records.find((o: { type: string }) => o.type === "individual").id;
    const intoCustomer = await admin.call("POST", "/api/v1/users", {
      login: uniqueLogin("misplaced"),
      role: "accountant",
      organizationId: annasOrg,
      password: PASSWORD,
    });
    expect(intoCustomer.statusCode).toBe(400);

    const staffView = await admin.call("POST", "/api/v1/users/view", {
      filter: { organizationIds: [systemId] },
    });
    expect(
      staffView
        .json()
        .records.map((r: { members: { role: string }[] }) => r.members[0]?.role)
        .sort(),
    ).toEqual(["administrator", "support"]);
    const byRole = await support.call("POST", "/api/v1/users/view", { filter: { roles: ["individual"] } });
    expect(byRole.json().records.map((r: { id: string }) => r.id)).toEqual([anna.userId]);
    const byText = await admin.call("POST", "/api/v1/users/view", {
      filter: { text: anna.login.slice(0, 12) },
    });
    expect(byText.json().records.map((r: { id: string }) => r.id)).toContain(anna.userId);
    const byIds = await admin.call("POST", "/api/v1/users/view", {
      filter: { ids: [anna.userId], active: true },
    });
    expect(byIds.json().totalRecords).toBe(1);

    // Switched off: logged out and unable to log in.
    const off = await admin.call("PATCH", `/api/v1/users/${anna.userId}`, { active: false });
    expect(off.statusCode, off.body).toBe(200);
    expect((await anna.call("GET", "/api/v1/coins")).statusCode).toBe(401);
    expect(
      (await post("/api/v1/authorization", clientId, { login: anna.login, password: PASSWORD })).statusCode,
    ).toBe(403);
  });

  it("roles: support reads but cannot create; an accountant cannot set up; customers cannot see users", async () => {
    const { clientId, admin } = await walletClient(t);
    const support = await staff(t, admin, "support");
    const accountant = await staff(t, admin, "accountant");
    const anna = await registerCustomer(t, clientId);
    expect(
      (await support.call("POST", "/api/v1/users", { login: uniqueLogin(), role: "support" })).statusCode,
    ).toBe(403);
    expect(
      (await accountant.call("POST", "/api/v1/currencies", { code: "USD", name: "US dollar", fraction: 2 }))
        .statusCode,
    ).toBe(403);
    expect((await anna.call("POST", "/api/v1/users/view", {})).statusCode).toBe(403);
    expect((await anna.call("POST", "/api/v1/organizations", {})).statusCode).toBe(403);
    expect((await support.call("GET", "/api/v1/coins")).statusCode).toBe(403);
    // Credentials sent to a login made without a password.
    const login = uniqueLogin("nopassword");
    expect((await admin.call("POST", "/api/v1/users", { login, role: "individual" })).statusCode).toBe(201);
    const outbox = await t.app.inject({
      method: "GET",
      url: `/sandbox/outbox?to=${encodeURIComponent(login)}`,
      headers: t.adminAuth,
    });
    expect(outbox.json().records[0]).toMatchObject({ kind: "CREDENTIALS", to: login });
  });
});

describe.runIf(postgresUrl)("tokens across two Ferry processes on one database (PostgreSQL)", () => {
  it("a logout or a login switched off in one process ends the token in the other at once", async () => {
    const { clientId, admin } = await walletClient(t);
    const second = await openDatabase({ databaseUrl: (t.database as { url?: string }).url, poolSize: 4 });
    const other = await startTestApp({ database: second, settings: { accessTokenTtlSeconds: 3600 } });
    try {
      const customer = await registerCustomer(t, clientId);
      const viaOther = (token: string) =>
        other.app.inject({
          method: "GET",
          url: "/api/v1/coins",
          headers: { authorization: `Bearer ${token}` },
        });
      expect((await viaOther(customer.token)).statusCode).toBe(200); // cached in the other process now
      expect((await customer.call("DELETE", "/api/v1/authorization")).statusCode).toBe(200);
      await expect.poll(async () => (await viaOther(customer.token)).statusCode, { timeout: 5000 }).toBe(401);

      const again = await logIn(t, clientId, customer.login);
      expect((await viaOther(again.token)).statusCode).toBe(200);
      expect(
        (await admin.call("PATCH", `/api/v1/users/${customer.userId}`, { active: false })).statusCode,
      ).toBe(200);
      await expect.poll(async () => (await viaOther(again.token)).statusCode, { timeout: 5000 }).toBe(401);
    } finally {
      await other.close();
    }
  });
});
